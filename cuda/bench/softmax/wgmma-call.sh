#!/usr/bin/env bash
# One GPU-machine call for the wgmma flash kernels (mla_flash_sm90a.cu), run from the directory holding the bundle:
#   bash BUNDLE/wgmma-call.sh BUNDLE
# where BUNDLE is a `cuda/gpu-check.sh pack` bundle with flash_bench (flash_bench.cu built here:
# nvcc -gencode=arch=compute_90a,code=sm_90a -DFLASH_WGMMA -O3 -std=c++17 -I cuda/src/main/cuda) and this script in it.
# Steps, each under its own timeout so that a hang costs only its step:
#   1. flash_bench, one process per variant (each wgmma variant and the backend's mr2s1): checks against the fp32
#      reference on fresh random inputs and times at 4k and 32k;
#   2. the fastest wgmma variant that passed every check (or WGMMA_VARIANT): KernelCheck group mla and the tiny
#      goldens in the bf16-compute mode with -Dkimimesh.cuda.flashVariant=<it>;
#   3. the bench's 32k prefill in the bf16-compute mode with m2s1 (before) and with that variant.
# Logs go to /tmp/flash3-logs, tarred into $OUT/flash3-logs.tgz after every step (a call cut short keeps what ran);
# a short table is printed last.
set -uo pipefail
b=${1:?bundle folder}
out=${OUT:-$b/out}
logs=/tmp/flash3-logs
mkdir -p "$logs" "$out"
save() { tar czf "$out/flash3-logs.tgz" -C "$logs" .; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > "$logs/gpu.txt" 2>&1
for v in wgmma_n128s2 wgmma_n128s2pp wgmma_n64s3 wgmma_n64s3pp mr2s1; do
  timeout ${HARNESS_TIMEOUT:-20} "$b/flash_bench" $v > "$logs/harness-$v.txt" 2>&1
  echo "harness $v exit $?" | tee -a "$logs/summary.txt"
  save
done
best=${WGMMA_VARIANT:-}
if [ -z "$best" ]; then
  # lines: "flash NAME heads=32 len=32768 ... ok  | X ms median ..."; only variants whose log ends "all checks pass"
  best=$(for v in wgmma_n128s2 wgmma_n128s2pp wgmma_n64s3 wgmma_n64s3pp; do
           f=$logs/harness-$v.txt
           grep -q "all checks pass" "$f" || continue
           grep "len=32768" "$f" | sed -n 's/.*| \([0-9.]*\) ms median.*/\1/p' | head -1 | sed "s/\$/ $v/"
         done | sort -n | head -1 | cut -d' ' -f2)
fi
echo "chosen wgmma variant: ${best:-none}" | tee -a "$logs/summary.txt"
if [ -n "$best" ]; then
  KERNEL_GROUP=mla KIMIMESH_JOPTS="-Dkimimesh.cuda.gemm=bf16 -Dkimimesh.cuda.flashVariant=$best" OUT=$logs/checks \
    timeout ${CHECK_TIMEOUT:-70} bash "$b/gpu-check.sh" run kernels goldens > "$logs/checks-$best.txt" 2>&1
  echo "checks exit $?" | tee -a "$logs/summary.txt"
  save
  for f in m2s1 $best; do
    KIMIMESH_JOPTS="-Dkimimesh.cuda.gemm=bf16 -Dkimimesh.cuda.flashVariant=$f" BENCH_LOG=bench-$f OUT=$logs \
      timeout ${BENCH_TIMEOUT:-45} bash "$b/gpu-check.sh" run bench -- --no-kda --no-graph-check --prefill 32768 --batch none \
      > /dev/null 2>&1
    echo "bench $f exit $?" | tee -a "$logs/summary.txt"
    save
  done
fi
save
echo "=================== summary"
cat "$logs/gpu.txt"
grep -h "len=32768\|len=4096\|FAIL\|all checks\|CHECK FAILED" "$logs"/harness-*.txt | sed 's/rows checked=[0-9]*: //' | cut -c1-190
echo "kernels: $(grep -h "checks, " "$logs/checks/kernels.log" 2>/dev/null)"; grep -h "^FAIL" "$logs/checks/kernels.log" 2>/dev/null | cut -c1-160
grep -h "mla bf16 prefill" "$logs/checks/kernels.log" 2>/dev/null | cut -c1-160
echo "goldens: $(grep -c "^PASS" "$logs/checks/goldens.log" 2>/dev/null) PASS, $(grep -c "^FAIL" "$logs/checks/goldens.log" 2>/dev/null) FAIL; $(grep -h "checks, " "$logs/checks/goldens.log" 2>/dev/null)"
for f in m2s1 $best; do echo "bench $f:"; grep -h "prefill 32768" "$logs/bench-$f.log" 2>/dev/null | cut -c1-120; done
cat "$logs/summary.txt"
