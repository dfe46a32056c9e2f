#!/usr/bin/env bash
# GPU checks and benchmarks of the CUDA backend in one command on a GPU machine that has no Java.
#   cuda/gpu-check.sh pack             (here, from the repo root) build, then fill .gpu-bundle/ with a Java runtime
#                                      (shared/tools/gpu-jre.sh), the engine + cuda jars, the tiny fixture, the bench
#                                      config and this script
#   bash .gpu-bundle/gpu-check.sh run [kernels] [goldens] [family] [bench] [-- bench options]
#                                      (there, from the directory holding .gpu-bundle) runs the chosen parts (all by
#                                      default): (a) every kernel vs the CPU backend, (b) the tiny goldens on the CUDA
#                                      backend, (c) the family fixtures
#                                      through `verify --backend cuda` (part `family`), (d) benchmarks. Logs go to $OUT (or .gpu-bundle/out) as well.
set -uo pipefail
mode=${1:-}
shift || true
case "$mode" in
pack)
  set -e
  top=$(git rev-parse --show-toplevel)
  cd "$top"
  shared=${KIMIMESH_SHARED:-$top/../shared}
  ./mvnw -B -q -pl engine,cuda -am package -DskipTests
  if [ -d .git ]; then
    "$shared/tools/gpu-jre.sh"
  else
    # a git worktree (.git is a file): let the tool write into a scratch repository, then take its runtime
    tmp=$(mktemp -d) && git init -q "$tmp" && (cd "$tmp" && "$shared/tools/gpu-jre.sh")
    mkdir -p .gpu-bundle && mv "$tmp/.gpu-bundle/jre.tar.xz" .gpu-bundle/ && rm -rf "$tmp"
  fi
  b=.gpu-bundle
  rm -rf "$b/lib" "$b/fixtures" && mkdir -p "$b/lib" "$b/fixtures"
  cp engine/target/engine-*.jar cuda/target/cuda-*.jar "$b/lib/"
  cp cuda/target/lib/*.jar "$b/lib/"
  rm -f "$b"/lib/*-tests.jar "$b/lib/junit"* "$b/lib/opentest4j"* "$b/lib/apiguardian"*
  # Jinjava (the chat template) and its dependencies: no GPU check renders a template, and the bundle must stay
  # under the device tool's 64 MiB
  for j in jinjava guava failureaccess listenablefuture javassist commons-lang3 commons-net big-math algebra derive4j \
           re2j java-ipv6 hubspot-style immutable encode checker-qual error_prone j2objc jsr305 annotations-3 snakeyaml \
           jackson-dataformat-yaml; do rm -f "$b/lib/$j"*; done
  mkdir -p "$b/fixtures/tiny"
  cp "$shared/fixtures/tiny/"*.json "$shared/fixtures/tiny/"*.safetensors "$b/fixtures/tiny/"
  cp -r "$shared/fixtures/tiny/goldens" "$b/fixtures/tiny/"
  # the small fixtures of other shapes of the family (engine test resources; FamilyFixturesTest on the CPU)
  cp -r engine/src/test/resources/family "$b/fixtures/"
  cp "$shared/reference/bench-48b-shape-4layers.config.json" "$shared/reference/kimi-linear-48b-a3b-instruct.config.json" "$b/"
  cp cuda/gpu-check.sh cuda/full-model.sh cuda/ncu-summary.py "$b/"
  du -sh "$b"
  ;;
run)
  here=$(cd "$(dirname "$0")" && pwd)
  out=${OUT:-$here/out}
  mkdir -p "$out"
  parts=()
  bench_opts=()
  while [ $# -gt 0 ]; do
    if [ "$1" = "--" ]; then shift; bench_opts=("$@"); break; fi
    parts+=("$1"); shift
  done
  [ ${#parts[@]} -gt 0 ] || parts=(kernels goldens family bench)
  # unpacked once per machine: several runs in one call (old and new, both modes) share it
  [ -x /tmp/kimi-jre/jre/bin/java ] || { mkdir -p /tmp/kimi-jre && tar xJf "$here/jre.tar.xz" -C /tmp/kimi-jre; }
  java=/tmp/kimi-jre/jre/bin/java
  # cuBLAS: the loader's path first, then the CUDA toolkit next to nvcc / CUDA_HOME, then a search
  if ! ldconfig -p 2>/dev/null | grep -q 'libcublas.so.13'; then
    for d in ${CUDA_HOME:+$CUDA_HOME/lib64} $(command -v nvcc >/dev/null && dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")/lib64; do
      [ -e "$d/libcublas.so.13" ] && export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-} && break
    done
    if [ -z "${LD_LIBRARY_PATH:-}" ] || ! ls ${LD_LIBRARY_PATH//:/ } 2>/dev/null | grep -q libcublas.so.13; then
      f=$(find / -name 'libcublas.so.13' -not -path '/proc/*' 2>/dev/null | head -1)
      [ -n "$f" ] && export LD_LIBRARY_PATH=$(dirname "$f"):${LD_LIBRARY_PATH:-}
    fi
  fi
  echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv 2>&1 | tee "$out/gpu.txt"
  # KIMIMESH_JOPTS: extra JVM options, e.g. -Dkimimesh.cuda.gemm=bf16 for the bf16-compute mode
  # KIMIMESH_LIB: another folder of jars (e.g. a baseline build's, timed beside the current one in the same call)
  # KERNEL_GROUP: groups of the kernels part, comma-separated (matmul, norms, elementwise, conv, kda, mla, moe, sampler, fused, operands, activations), default all
  jopts=(${KIMIMESH_JOPTS:-} --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector -Xss4m -Xmx24g -cp "${KIMIMESH_LIB:-$here/lib}/*")
  rc=0
  for p in "${parts[@]}"; do
    echo "===== $p"
    case "$p" in
      kernels) "$java" "${jopts[@]}" dev.kimimesh.cuda.check.GpuCheck kernels ${KERNEL_GROUP:-all} 2>&1 | tee "$out/kernels.log" ;;
      goldens) "$java" "${jopts[@]}" dev.kimimesh.cuda.check.GpuCheck goldens "$here/fixtures/tiny" 2>&1 | tee "$out/goldens.log" ;;
      # every goldens directory of the family fixtures through the verify verb on the CUDA backend
      family)
        for m in "$here"/fixtures/family/*/model; do
          for g in "$(dirname "$m")"/goldens*; do
            "$java" "${jopts[@]}" dev.kimimesh.engine.cli.Main verify "$m" "$g" --backend cuda > "$out/verify.tmp" 2>&1
            r=$?
            echo "$(basename "$(dirname "$m")")/$(basename "$g"): exit $r $(tail -1 "$out/verify.tmp")"
            [ "$r" = 0 ] || grep -m3 "FAIL:" "$out/verify.tmp"
          done
        done 2>&1 | tee "$out/family.log"
        if grep -q "exit [1-9]" "$out/family.log"; then false; else true; fi ;;
      # BENCH_CONFIG / BENCH_WORK: another config and checkpoint folder (cuda/full-model.sh: the 27-layer model)
      bench) "$java" "${jopts[@]}" dev.kimimesh.cuda.check.GpuCheck bench "${BENCH_CONFIG:-$here/bench-48b-shape-4layers.config.json}" \
               --work "${BENCH_WORK:-/tmp/kimi-bench-ckpt}" ${bench_opts[@]+"${bench_opts[@]}"} 2>&1 | tee "$out/${BENCH_LOG:-bench}.log" ;;
      profile)
        # one decode step's kernels under Nsight Compute (durations only), at batch 1 and 64, context 4096
        ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
        for b in ${PROFILE_BATCHES:-1 64}; do
          [ "$b" = none ] && continue
          "$ncu" --profile-from-start off --clock-control none --metrics gpu__time_duration.sum --csv \
            --log-file "$out/ncu-b$b.csv" "$java" "${jopts[@]}" dev.kimimesh.cuda.check.GpuCheck profile \
            "$here/bench-48b-shape-4layers.config.json" --work /tmp/kimi-bench-ckpt --context 4096 --batch $b 2>&1 | grep -v "^==PROF==" | tail -25
          python3 "$here/ncu-summary.py" "$out/ncu-b$b.csv" 2>&1 | tee "$out/profile-b$b.txt"
        done
        # PROFILE_PREFILL=N: also one prefill of N tokens (where a long prompt's device time goes)
        if [ -n "${PROFILE_PREFILL:-}" ]; then
          "$ncu" --profile-from-start off --clock-control none --metrics gpu__time_duration.sum --csv \
            --log-file "$out/ncu-prefill.csv" "$java" "${jopts[@]}" dev.kimimesh.cuda.check.GpuCheck profile \
            "$here/bench-48b-shape-4layers.config.json" --work /tmp/kimi-bench-ckpt --prefill "$PROFILE_PREFILL" 2>&1 | grep -v "^==PROF==" | tail -25
          python3 "$here/ncu-summary.py" "$out/ncu-prefill.csv" 2>&1 | tee "$out/profile-prefill-$PROFILE_PREFILL.txt"
        fi ;;
      *) echo "unknown part $p"; rc=2 ;;
    esac
    s=${PIPESTATUS[0]}
    [ "$s" = 0 ] || rc=$s
    echo "===== $p exit $s"
  done
  exit $rc
  ;;
*)
  sed -n '2,10p' "$0"
  exit 2
  ;;
esac
