#!/usr/bin/env bash
# The prefill's MoE grouping on the device and the prefill convolution, checked and timed in one device call (branch
# moe3): kernel checks of groups moe and conv with the new paths on, goldens (exact mode with the new flags; bf16 mode
# with the earlier and the new paths), the 32k bf16 prefill old / new twice each plus single-change variants, then an
# Nsight kernel list of one 32k prefill on the new path if time is left. Logs under $OUT, tarred into one file.
# Usage, on the GPU machine from the folder holding the bundle (cuda/gpu-check.sh pack, copied to a carried folder):
#   BUNDLE=.gpu-bundle CALL_SECONDS=170 bash .gpu-bundle/run-moe.sh
set -uo pipefail
B=${BUNDLE:-.gpu-bundle}
OUT=${OUT:-$PWD/prefill-out}
L=$OUT/logs
mkdir -p "$L"
T=$(mktemp -d)
t0=$(date +%s)
step() { echo "[$(( $(date +%s) - t0 ))s] $*" | tee -a "$L/summary.txt"; }
gc() { OUT=$T/o timeout "$1" bash "$B/gpu-check.sh" run "${@:2}"; }
BF=-Dkimimesh.cuda.gemm=bf16
NEW="-Dkimimesh.cuda.moeRouting=device -Dkimimesh.cuda.convPrefill=v2"
step "kernels moe,conv (bf16 mode, new paths on)"
KIMIMESH_JOPTS="$BF $NEW" KERNEL_GROUP=moe,conv gc 75 kernels > "$L/kernels.log" 2>&1
step "goldens: exact with the new flags / bf16 earlier / bf16 new"
{ echo "##### exact (new flags)"; KIMIMESH_JOPTS="$NEW" gc 30 goldens
  echo "##### bf16 earlier"; KIMIMESH_JOPTS="$BF" gc 30 goldens
  echo "##### bf16 new"; KIMIMESH_JOPTS="$BF $NEW" gc 30 goldens; } > "$L/goldens.log" 2>&1
bench() { echo "##### $1" >> "$L/bench.log"; step "bench $1"
  KIMIMESH_JOPTS="$BF $2" gc 45 bench -- --no-kda --prefill 32768 --batch none >> "$L/bench.log" 2>&1; }
bench "old" ""
bench "new (device grouping + conv v2)" "$NEW"
bench "old" ""
bench "new (device grouping + conv v2)" "$NEW"
bench "device grouping only" "-Dkimimesh.cuda.moeRouting=device"
bench "conv v2 only" "-Dkimimesh.cuda.convPrefill=v2"
bench "new + batched expert GEMMs" "$NEW -Dkimimesh.cuda.expertGemm=batched"
left=$(( ${CALL_SECONDS:-170} - ($(date +%s) - t0) ))
step "profile (new path), $left s left"
if [ $left -gt 30 ]; then
  PROFILE_BATCHES=none PROFILE_PREFILL=32768 KIMIMESH_JOPTS="$BF $NEW" OUT=$T/p timeout $((left - 5)) bash "$B/gpu-check.sh" run profile > "$L/profile.log" 2>&1
  cp "$T/p/profile-prefill-32768.txt" "$L/" 2>/dev/null
fi
step "done"
{ echo "== checks"; grep "checks,\|^FAIL\|grouped on the\|prefill v2" "$L/kernels.log" | grep -v "^PASS.*tail [0-9]" | head -40
  grep "#####\|checks,\|prefill T200 logits\|prefill T64 logits" "$L/goldens.log"
  echo "== bench"; grep "#####\|prefill 32768\|Exception\|Error" "$L/bench.log"
  echo "== profile"; head -30 "$L/profile-prefill-32768.txt" 2>/dev/null; } >> "$L/summary.txt"
tar czf "$OUT/moe3-logs.tgz" -C "$OUT" logs
cat "$L/summary.txt"
