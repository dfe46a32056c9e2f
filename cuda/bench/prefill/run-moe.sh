#!/usr/bin/env bash
# The prefill's MoE and glue (branch moe3) checked and timed in one device call: kernel checks of groups moe and conv,
# goldens (exact; bf16 with the defaults, the opt-in paths and the earlier paths), the 32k bf16 prefill with the
# earlier paths and the defaults twice each plus the opt-in variants, then an Nsight kernel list of one 32k prefill
# with the defaults if time is left. Logs under $OUT, tarred into one file. (The first call of 2026-12-06 ran this
# script at commit 1f16097, when the new paths were opt-in.)
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
# the earlier paths (before branch moe3's defaults) and the opt-in ones
OLD="-Dkimimesh.cuda.moeRouting=host -Dkimimesh.cuda.convPrefill=v1 -Dkimimesh.cuda.expertGemm=each"
ROWS=-Dkimimesh.cuda.prefillRoute=rows
MID=-Dkimimesh.cuda.moeIntermediate=bf16
step "kernels moe,conv (default mode; the opt-in prefill routing on, so the device grouping cases run it too)"
KIMIMESH_JOPTS="$ROWS" KERNEL_GROUP=moe,conv gc 75 kernels > "$L/kernels.log" 2>&1
step "goldens: exact / bf16 / bf16 with the opt-in routing and bf16 intermediates / bf16 earlier paths"
{ echo "##### exact"; gc 30 goldens
  echo "##### bf16"; KIMIMESH_JOPTS="$BF" gc 30 goldens
  echo "##### bf16 $ROWS $MID"; KIMIMESH_JOPTS="$BF $ROWS $MID" gc 30 goldens
  echo "##### bf16 earlier paths"; KIMIMESH_JOPTS="$BF $OLD" gc 30 goldens; } > "$L/goldens.log" 2>&1
bench() { echo "##### $1" >> "$L/bench.log"; step "bench $1"
  KIMIMESH_JOPTS="$BF $2" gc 45 bench -- --no-kda --prefill 32768 --batch none >> "$L/bench.log" 2>&1; }
bench "earlier paths ($OLD)" "$OLD"
bench "defaults" ""
bench "earlier paths ($OLD)" "$OLD"
bench "defaults" ""
bench "defaults + $ROWS" "$ROWS"
bench "defaults + $MID" "$MID"
bench "defaults + $ROWS + $MID" "$ROWS $MID"
left=$(( ${CALL_SECONDS:-170} - ($(date +%s) - t0) ))
step "profile (defaults), $left s left"
if [ $left -gt 30 ]; then
  PROFILE_BATCHES=none PROFILE_PREFILL=32768 KIMIMESH_JOPTS="$BF" OUT=$T/p timeout $((left - 5)) bash "$B/gpu-check.sh" run profile > "$L/profile.log" 2>&1
  cp "$T/p/profile-prefill-32768.txt" "$L/" 2>/dev/null
fi
step "done"
{ echo "== checks"; grep "checks,\|^FAIL\|grouped on the\|prefill v2\|warp a row" "$L/kernels.log" | grep -v "^PASS.*tail [0-9]\|vs CPU" | head -60
  grep "#####\|checks,\|prefill T200 logits\|prefill T64 logits" "$L/goldens.log"
  echo "== bench"; grep "#####\|prefill 32768\|Exception\|Error" "$L/bench.log"
  echo "== profile"; head -30 "$L/profile-prefill-32768.txt" 2>/dev/null; } >> "$L/summary.txt"
tar czf "$OUT/moe3-logs.tgz" -C "$OUT" logs
cat "$L/summary.txt"
