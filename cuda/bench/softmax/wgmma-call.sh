#!/usr/bin/env bash
# One GPU-machine call for the wgmma flash kernels (mla_flash_sm90a.cu), run from the directory holding the bundle:
#   bash BUNDLE/wgmma-call.sh BUNDLE
# where BUNDLE is a `cuda/gpu-check.sh pack` bundle with flash_bench or flash_bench.xz (flash_bench.cu built here:
# nvcc -gencode=arch=compute_90a,code=sm_90a -DFLASH_WGMMA -O3 -std=c++17 -I cuda/src/main/cuda) and this script in it.
# Steps, each under its own timeout so that a hang costs only its step (and skipped once the call nears its limit,
# CALL_BUDGET seconds):
#   1. flash_bench, one process per variant (VARIANTS: wgmma kernels, the TMA-producer ones first so that a hang of
#      the copy-engine producer is found once: when the first TMA variant times out, the other TMA variants are
#      skipped): checks against the fp32 reference on fresh random inputs, times at 4k and 32k;
#   2. the fastest variant at 32k other than BASELINE (the current default) that passed every check (or
#      WGMMA_VARIANT): KernelCheck group mla and the tiny goldens in the bf16-compute mode with
#      -Dkimimesh.cuda.flashVariant=wgmma_<it>;
#   3. the bench's 32k prefill in the bf16-compute mode, BASELINE (wgmma_n128s2pptmaf, or m2s1) and that variant,
#      alternating, twice;
#   4. Nsight Compute on that variant's 4k launch (speed of light, memory, warp states).
# Logs go to /tmp/flash-logs, tarred into $OUT/flash-logs.tgz after every step (a call cut short keeps what ran);
# a short table is printed last.
set -uo pipefail
b=${1:?bundle folder}
out=${OUT:-$b/out}
logs=/tmp/flash-logs
mkdir -p "$logs" "$out"
t0=$(date +%s)
budget=${CALL_BUDGET:-165}
left() { echo $(( budget - ($(date +%s) - t0) )); }
save() { tar czf "$out/flash-logs.tgz" -C "$logs" .; }
note() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a "$logs/summary.txt"; }
# the harness binary, or its xz-compressed copy (a smaller bundle: the device tool carries 64 MiB at most)
fb=$b/flash_bench
if [ ! -x "$fb" ] && [ -f "$b/flash_bench.xz" ]; then fb=/tmp/flash_bench; xz -dc "$b/flash_bench.xz" > "$fb" && chmod +x "$fb"; fi
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > "$logs/gpu.txt" 2>&1
variants=${VARIANTS:-n128s2pptmaf m192n64s3tma m192n64s3tmaf m192n64s3ovtmaf n64s4pptmaf n64s4ovtmaf n64s4ovpptmaf m192n64s3}
baseline=${BASELINE:-wgmma_n128s2pptmaf}
tma_hung=0
for v in $variants; do
  case "$v" in *tma*) [ $tma_hung = 1 ] && { note "harness $v skipped (a TMA variant hung)"; continue; } ;; esac
  [ "$(left)" -gt 60 ] || { note "harness $v skipped (time)"; continue; }
  timeout ${HARNESS_TIMEOUT:-20} "$fb" $v > "$logs/harness-$v.txt" 2>&1
  rc=$?
  note "harness $v exit $rc"
  case "$v" in *tma*) [ $rc = 124 ] && tma_hung=1 ;; esac
  save
done
best=${WGMMA_VARIANT:-}
if [ -z "$best" ]; then
  # lines: "flash NAME heads=32 len=32768 ... ok  | X ms median ..."; only variants whose log ends "all checks pass"
  best=$(for v in $variants; do
           [ "$v" = mr2s1 ] || [ "wgmma_$v" = "$baseline" ] && continue
           [ -f "$logs/harness-$v.txt" ] || continue
           f=$logs/harness-$v.txt
           grep -q "all checks pass" "$f" || continue
           grep "len=32768" "$f" | sed -n 's/.*| \([0-9.]*\) ms median.*/\1/p' | head -1 | sed "s/\$/ $v/"
         done | sort -n | head -1 | cut -d' ' -f2)
fi
note "chosen wgmma variant: ${best:-none}"
if [ -n "$best" ]; then
  KERNEL_GROUP=mla KIMIMESH_JOPTS="-Dkimimesh.cuda.gemm=bf16 -Dkimimesh.cuda.flashVariant=wgmma_$best" OUT=$logs/checks \
    timeout ${CHECK_TIMEOUT:-60} bash "$b/gpu-check.sh" run kernels goldens > "$logs/checks-$best.txt" 2>&1
  note "checks exit $?"
  save
  for round in 1 2; do
    for f in $baseline wgmma_$best; do
      [ "$(left)" -gt 25 ] || { note "bench $f round $round skipped (time)"; continue; }
      KIMIMESH_JOPTS="-Dkimimesh.cuda.gemm=bf16 -Dkimimesh.cuda.flashVariant=$f" BENCH_LOG=bench-$f-$round OUT=$logs \
        timeout $(( $(left) - 5 )) bash "$b/gpu-check.sh" run bench -- --no-kda --no-graph-check --prefill 32768 --batch none \
        > /dev/null 2>&1
      note "bench $f round $round exit $?"
      save
    done
  done
  ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
  if [ -n "$ncu" ] && [ "$(left)" -gt 15 ]; then
    FLASH_LEN=4096 timeout $(( $(left) - 3 )) "$ncu" --launch-count 1 --kernel-name "mla_flash_wgmma_$best" \
      --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section ComputeWorkloadAnalysis \
      "$fb" $best > "$logs/ncu-$best.txt" 2>&1
    note "ncu exit $?"
  fi
fi
save
echo "=================== summary"
cat "$logs/gpu.txt"
grep -h "len=32768\|len=4096\|FAIL\|CHECK FAILED" "$logs"/harness-*.txt | sed 's/rows checked=[0-9]*: //; s/ (max|ref| [0-9.e+-]*)//; s/median of 15 //' | cut -c1-175
echo "kernels: $(grep -h "checks, " "$logs/checks/kernels.log" 2>/dev/null)"; grep -h "^FAIL" "$logs/checks/kernels.log" 2>/dev/null | cut -c1-120
grep -h "mla bf16 prefill" "$logs/checks/kernels.log" 2>/dev/null | cut -c1-150
echo "goldens: $(grep -c "^PASS" "$logs/checks/goldens.log" 2>/dev/null) PASS, $(grep -c "^FAIL" "$logs/checks/goldens.log" 2>/dev/null) FAIL"
for f in "$logs"/bench-*.log; do echo "$(basename "$f"): $(grep -h "prefill 32768" "$f" | sed 's/ = .*//; s/prefill 32768 tokens//' | tr '\n' ' ')"; done
grep -h "Compute (SM) Throughput\|Memory Throughput\|L2 Hit\|Duration\|Registers Per\|Achieved Occupancy" "$logs"/ncu-*.txt 2>/dev/null | head -8
cat "$logs/summary.txt"
