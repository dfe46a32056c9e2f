#!/usr/bin/env bash
# Benchmark of the local mesh against one process (docs/benchmarks-mesh.md): TPOT at batch 1 and 32 through the
# gateway (SDK, gRPC streams), and per-hop latency. Usage: launcher/bench-mesh.sh [MODEL_DIR] [TOKENS] [PROMPT_LEN]
# BENCH_PORT_OFFSET=K shifts every port (gateway 18080+K, shards 9101+K.., expert services 9201+K..), so that the
# benchmark does not meet another local mesh on a shared machine. BENCH_WARMUP_S (default 30): seconds of full-length
# warm-up rounds before each measured round (every JVM must have compiled its hot paths first).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model="${1:-$root/../shared/fixtures/tiny}"
tokens="${2:-64}"
prompt="${3:-16}"
offset="${BENCH_PORT_OFFSET:-0}"
warmup="${BENCH_WARMUP_S:-30}"
port=$((18080 + offset))
cp="$root/gateway/target/test-classes:$root/client-sdk/target/classes:$root/client-sdk/target/lib/*"
java="${JAVA_HOME:-/usr}/bin/java"

bench() { # LABEL
  for batch in 1 32; do
    echo "== $1 batch $batch"
    "$java" -cp "$cp" dev.kimimesh.gateway.bench.MeshBench "127.0.0.1:$port" "$batch" "$tokens" "$prompt" "$warmup"
  done
}

run() { # LABEL up-options...
  local label="$1"; shift
  "$root/kimi-mesh" up --model "$model" --port 18080 --port-offset "$offset" --detach "$@" >/dev/null
  trap '"$root/kimi-mesh" down >/dev/null' EXIT
  bench "$label"
  "$root/kimi-mesh" down >/dev/null
  trap - EXIT
}

echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
run "one process (gateway, embedded)" --embedded
run "mesh: 2 shards chained + 2 expert services" --shards 2 --experts 2
run "mesh: 2 shards driven by the gateway + 2 expert services" --shards 2 --experts 2 --no-chain
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
