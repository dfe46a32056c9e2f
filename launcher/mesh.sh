# Local mesh verbs of the kimi-mesh launcher (sourced by ./kimi-mesh): up, down, chat.
# Every service runs as its own JVM on loopback ports; pids and logs live in the run directory.

mesh_usage() {
  cat <<'USAGE'
kimi-mesh up [--model DIR] [--shards N | --layers 0-4,4-8] [--experts N | --expert-sets '0-7;8-15'] [--topology FILE]
             [--port 8080] [--port-offset K] [--run-dir DIR] [--tokenizer DIR] [--detach] [--rebuild]
             [--no-chain] [--embedded] [--gateway-opt -Dkey=value]... [--service-threads N|auto]
    starts expert services, layer shards and the gateway (each its own JVM), prints the endpoints, waits for their
    health; Ctrl-C (or `kimi-mesh down`) stops them all. Without --model a random model fitting the tokenizer is
    created once under models/random-tiny (tokenizer: --tokenizer, $KIMI_TOKENIZER or ../shared/fixtures/tokenizer).
    --no-chain: the gateway sends to every shard itself (per-hop timing); --embedded: only the gateway, running the
    whole model in-process (the single-process mode).
    --service-threads N: compute threads (kimimesh.threads) and GC threads of each shard and expert service (default:
    the JVM's, one per core); `--service-threads auto` shares the host's cores out over those services (at least 1
    each). On the 2-core dev machine, auto (1 thread) measured no better than the default (docs/benchmarks-mesh.md).
kimi-mesh down [--run-dir DIR]                   stops every process of the local mesh
kimi-mesh chat [--gateway HOST:PORT] [--max-tokens N] [--temperature T] "message"   streams the reply (SDK)
kimi-mesh chat --ids 1,2,3 ...                   token ids to Generate (models without a tokenizer)
USAGE
}

mesh_run_dir() { echo "${KIMI_RUN_DIR:-$root/.kimi-mesh}"; }

mesh_build() {
  local force="$1" need=0 m
  for m in gateway layer-shard-service expert-service; do
    [ -f "$root/$m/target/quarkus-app/quarkus-run.jar" ] || need=1
  done
  [ -d "$root/client-sdk/target/lib" ] || need=1
  [ -f "$root/engine/target/classes/.built" ] || need=1
  if [ "$need" = 1 ] || [ "$force" = 1 ]; then
    echo "kimi-mesh: building the services (first run or --rebuild)..." >&2
    mvn_quiet -DskipTests -pl engine,gateway,layer-shard-service,expert-service,client-sdk -am package >&2
    touch "$root/engine/target/classes/.built"
  fi
}

# port_open PORT: true when something accepts connections on 127.0.0.1:PORT
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port NAME PID PORT LOG: waits until the port answers, the process dies, or 180 s pass
wait_port() {
  local name="$1" pid="$2" port="$3" log="$4" i
  for ((i = 0; i < 1800; i++)); do
    if port_open "$port"; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "kimi-mesh up: $name (pid $pid) exited before serving port $port; from $log:" >&2
      grep -E "ERROR|Caused by" "$log" | tail -n 4 >&2 || tail -n 10 "$log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "kimi-mesh up: $name did not open port $port within 180 s (log: $log)" >&2
  return 1
}

# http_get PORT PATH: the body of a GET on 127.0.0.1 (no curl needed)
http_get() {
  local port="$1" path="$2"
  exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&3
  cat <&3
  exec 3<&-
}

mesh_start() { # NAME LOG ARGS... : starts a JVM in the background, records its pid
  local name="$1" log="$2"; shift 2
  if [ "$detach" = 1 ]; then
    setsid nohup "$JAVA_HOME/bin/java" "${JAVA_OPTS[@]}" "$@" >"$log" 2>&1 </dev/null &
  else
    "$JAVA_HOME/bin/java" "${JAVA_OPTS[@]}" "$@" >"$log" 2>&1 </dev/null &
  fi
  started_pid=$!
  echo "$name $started_pid" >>"$run/pids"
}

mesh_random_model() {
  local dir="$root/models/random-tiny" tok="$1" cfg="$root/../shared/fixtures/tiny/config.json"
  if [ -f "$dir/config.json" ]; then echo "$dir"; return 0; fi
  [ -n "$tok" ] || tok="${KIMI_TOKENIZER:-$root/../shared/fixtures/tokenizer}"
  [ -f "$tok/tiktoken.model" ] || { echo "kimi-mesh up: no tokenizer at $tok (give --tokenizer DIR or KIMI_TOKENIZER)" >&2; return 1; }
  [ -f "$cfg" ] || { echo "kimi-mesh up: no model config at $cfg (give --model DIR)" >&2; return 1; }
  echo "kimi-mesh up: creating a random model fitting the tokenizer in $dir (once)..." >&2
  "$JAVA_HOME/bin/java" "${JAVA_OPTS[@]}" -cp "$(classpath)" dev.kimimesh.engine.cli.Main init-random "$dir" \
    --config "$cfg" --vocab-from-tokenizer "$tok" >&2 || return 1
  echo "$dir"
}

mesh_down() {
  local run; run="$(mesh_run_dir)"
  while [ $# -gt 0 ]; do case "$1" in --run-dir) run="$2"; shift 2 ;; *) echo "kimi-mesh down: unknown option $1" >&2; return 2 ;; esac; done
  if [ ! -f "$run/pids" ]; then echo "kimi-mesh down: nothing running (no $run/pids)"; return 0; fi
  local name pid
  # gateway first, then shards, then expert services: the reverse of the start order
  tac "$run/pids" | while read -r name pid; do
    if kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null && echo "stopping $name (pid $pid)"; fi
  done
  for _ in $(seq 1 100); do
    local alive=0
    while read -r name pid; do kill -0 "$pid" 2>/dev/null && alive=1; done <"$run/pids"
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  while read -r name pid; do kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null; done <"$run/pids"
  rm -f "$run/pids" "$run/endpoints" "$run/gateway"
  echo "kimi-mesh: local mesh stopped"
}

mesh_up() {
  local model="" plan_args=() port=8080 offset=0 tok="" rebuild=0 chain=1 embedded=0 gw_opts=() service_threads=""
  run="$(mesh_run_dir)"; detach=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --model) model="$2"; shift 2 ;;
      --shards|--layers|--experts|--expert-sets|--topology) plan_args+=("$1" "$2"); shift 2 ;;
      --port) port="$2"; shift 2 ;;
      --port-offset) offset="$2"; shift 2 ;;
      --run-dir) run="$2"; shift 2 ;;
      --tokenizer) tok="$2"; shift 2 ;;
      --detach) detach=1; shift ;;
      --rebuild) rebuild=1; shift ;;
      --no-chain) chain=0; shift ;;
      --embedded) embedded=1; shift ;;
      --gateway-opt) gw_opts+=("$2"); shift 2 ;;
      --service-threads) service_threads="$2"; shift 2 ;;
      -h|--help) mesh_usage; return 0 ;;
      *) echo "kimi-mesh up: unknown option $1" >&2; mesh_usage >&2; return 2 ;;
    esac
  done
  mkdir -p "$run"
  if [ -f "$run/pids" ]; then
    echo "kimi-mesh up: a mesh is already running from $run (kimi-mesh down first)" >&2; return 1
  fi
  ensure_built
  mesh_build "$rebuild"
  if [ -z "$model" ]; then model="$(mesh_random_model "$tok")" || return 1; fi
  model="$(cd "$model" && pwd)" || { echo "kimi-mesh up: no model directory $model" >&2; return 1; }
  local plan
  plan="$("$JAVA_HOME/bin/java" "${JAVA_OPTS[@]}" -cp "$(classpath)" dev.kimimesh.engine.cli.Main mesh-plan --model "$model" "${plan_args[@]}")" \
    || return 2
  local -a ranges=() sets=()
  local kind a b
  while read -r kind a b; do
    case "$kind" in shard) ranges+=("$a $b") ;; expert-service) sets+=("$a") ;; esac
  done <<<"$plan"
  if [ "$embedded" = 1 ]; then ranges=(); sets=(); fi
  local services=$((${#ranges[@]} + ${#sets[@]}))
  if [ "$service_threads" = auto ]; then
    service_threads=$(( $(nproc) / (services > 0 ? services : 1) )); [ "$service_threads" -ge 1 ] || service_threads=1
  fi
  if [ -n "$service_threads" ] && ! [[ "$service_threads" =~ ^[1-9][0-9]*$ ]]; then
    echo "kimi-mesh up: --service-threads wants a positive number or auto, got '$service_threads'" >&2; return 2
  fi
  # sizing of every shard and expert service JVM: matmul pool and GC threads (see --service-threads)
  local -a svc_opts=()
  [ -n "$service_threads" ] && svc_opts=(-Dkimimesh.threads="$service_threads" -XX:ParallelGCThreads="$service_threads")

  : >"$run/pids"
  local experts_csv="" i name log grpc http
  trap 'echo; mesh_down --run-dir "$run"; exit 130' INT TERM
  for i in "${!sets[@]}"; do
    grpc=$((9201 + offset + i)); http=$((18201 + offset + i)); name="experts-$i"; log="$run/$name.log"
    mesh_start "$name" "$log" "${svc_opts[@]}" -Dkimimesh.experts.model-dir="$model" -Dkimimesh.experts.experts="${sets[$i]}" \
      -Dquarkus.grpc.server.port=$grpc -Dquarkus.http.port=$http -jar "$root/expert-service/target/quarkus-app/quarkus-run.jar"
    wait_port "$name" "$started_pid" "$grpc" "$log" || { mesh_down --run-dir "$run" >/dev/null; return 1; }
    experts_csv="${experts_csv:+$experts_csv,}127.0.0.1:$grpc"
    echo "expert service $i  experts ${sets[$i]}  grpc 127.0.0.1:$grpc" | tee -a "$run/endpoints"
  done
  # the last shard first: a shard checks its next stage at start-up
  local next="" shards_csv=""
  for ((i = ${#ranges[@]} - 1; i >= 0; i--)); do
    read -r a b <<<"${ranges[$i]}"
    grpc=$((9101 + offset + i)); http=$((18101 + offset + i)); name="shard-$i"; log="$run/$name.log"
    local extra=()
    [ -n "$next" ] && extra+=(-Dkimimesh.shard.next="$next")
    [ -n "$experts_csv" ] && extra+=(-Dkimimesh.shard.expert-services="$experts_csv")
    mesh_start "$name" "$log" "${svc_opts[@]}" -Dkimimesh.shard.model-dir="$model" -Dkimimesh.shard.from="$a" -Dkimimesh.shard.to="$b" "${extra[@]}" \
      -Dquarkus.grpc.server.port=$grpc -Dquarkus.http.port=$http -jar "$root/layer-shard-service/target/quarkus-app/quarkus-run.jar"
    wait_port "$name" "$started_pid" "$grpc" "$log" || { mesh_down --run-dir "$run" >/dev/null; return 1; }
    [ "$chain" = 1 ] && next="127.0.0.1:$grpc"
    shards_csv="127.0.0.1:$grpc${shards_csv:+,$shards_csv}"
    echo "layer shard $i  layers [$a, $b)  grpc 127.0.0.1:$grpc" | tee -a "$run/endpoints"
  done
  # the gateway drives the first shard (the chain relays the rest) and releases sequences on every shard
  log="$run/gateway.log"
  local gw_mesh=()
  [ -n "$shards_csv" ] && gw_mesh+=("-Dkimimesh.mesh.shards=$shards_csv")
  mesh_start gateway "$log" -Dkimimesh.model.dir="$model" "${gw_mesh[@]}" "${gw_opts[@]}" \
    -Dquarkus.http.port=$((port + offset)) -jar "$root/gateway/target/quarkus-app/quarkus-run.jar"
  wait_port gateway "$started_pid" $((port + offset)) "$log" || { mesh_down --run-dir "$run" >/dev/null; return 1; }
  if ! http_get $((port + offset)) /health | grep -q '"UP"'; then
    echo "kimi-mesh up: the gateway is not healthy; see $log" >&2; mesh_down --run-dir "$run" >/dev/null; return 1
  fi
  echo "gateway  HTTP (OpenAI) http://127.0.0.1:$((port + offset))/v1  gRPC (KimiMesh) 127.0.0.1:$((port + offset))" | tee -a "$run/endpoints"
  echo "gateway 127.0.0.1:$((port + offset))" >"$run/gateway"
  echo "kimi-mesh: mesh of ${#ranges[@]} shards and ${#sets[@]} expert services is up (model $model; logs and pids in $run)"
  if [ "$detach" = 1 ]; then
    echo "kimi-mesh: detached; stop it with ./kimi-mesh down"
    return 0
  fi
  echo "kimi-mesh: Ctrl-C stops the mesh"
  wait
  mesh_down --run-dir "$run"
}

mesh_chat() {
  local run gw="" args=()
  run="$(mesh_run_dir)"
  [ -f "$run/gateway" ] && gw="$(awk '{print $2}' "$run/gateway")"
  [ -n "$gw" ] && args+=(--gateway "$gw")
  ensure_built
  mesh_build 0
  exec "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -cp "$root/client-sdk/target/classes:$root/client-sdk/target/lib/*" dev.kimimesh.client.ChatCommand "${args[@]}" "$@"
}
