#!/usr/bin/env bash
# The bf16 prefill's host flow (branch gaps5) checked and timed in one device call: the 32k bf16 prefill with
# -Dkimimesh.cuda.moeReadback=sync (the earlier flow), =overlap and =early, alternating twice, the second round with
# the launch timeline (--timeline); the bf16-mode kernel checks of groups moe and operands and the goldens with the
# overlapped read-back, the bf16 goldens with =early (figures must equal sync's: 14/26, T64 0.299, T200 0.474);
# the exact-mode kernels and goldens (must stay all-pass, 26/26); then, if time is left, =early with 20 untimed
# warm-up prefills (--prefill-warmup 20) and its timeline. Each step under its own timeout, the whole under
# CALL_SECONDS; logs under $OUT/logs, tarred into $OUT/host-flow-logs.tgz after each step.
# Usage, on the GPU machine from the repository root, the bundle of `cuda/gpu-check.sh pack` (its tiny fixture
# unpacked into its fixtures/ folder) in a carried folder:
#   BUNDLE=.gpu-bundle CALL_SECONDS=232 bash cuda/bench/prefill/run-host-flow.sh
set -u
B=${BUNDLE:-.gpu-bundle}
OUT=${OUT:-$PWD/host-flow-out}
LIMIT=${CALL_SECONDS:-232}
L=$OUT/logs
mkdir -p "$L"
pack() { tar czf "$OUT/host-flow-logs.tgz" -C "$OUT" logs; }
T0=$(date +%s)
step() { # name timeout env-and-command...
  local name=$1 to=$2; shift 2
  local left=$(( LIMIT - ($(date +%s) - T0) ))
  [ "$left" -lt "$to" ] && to=$left
  [ "$to" -lt 5 ] && { echo "=== $name skipped: no time left" | tee -a "$L/steps.txt"; return; }
  echo "=== $name (t=$(( $(date +%s) - T0 )) s)" | tee -a "$L/steps.txt"
  timeout "$to" env OUT="$L" "$@" > "$L/$name.txt" 2>&1
  echo "=== $name rc=$? (t=$(( $(date +%s) - T0 )) s)" | tee -a "$L/steps.txt"
  grep -E "^prefill|checks,|passed|FAIL|timeline: (GPU|host|[0-9]+ ops)" "$L/$name.txt" | head -12
  pack
}
BF="-Dkimimesh.cuda.gemm=bf16"
RB="-Dkimimesh.cuda.moeReadback"
BA="--prefill 32768 --batch none --no-kda --no-graph-check --work /tmp/kimi-bench-ckpt"
step bench-sync-1 55 KIMIMESH_JOPTS="$BF $RB=sync" bash "$B/gpu-check.sh" run bench -- $BA
step bench-overlap-1 22 KIMIMESH_JOPTS="$BF $RB=overlap" bash "$B/gpu-check.sh" run bench -- $BA
step bench-early-1 22 KIMIMESH_JOPTS="$BF $RB=early" bash "$B/gpu-check.sh" run bench -- $BA
step bf16-checks-overlap 45 KIMIMESH_JOPTS="$BF $RB=overlap" KERNEL_GROUP=moe,operands bash "$B/gpu-check.sh" run kernels goldens
step bf16-goldens-early 25 KIMIMESH_JOPTS="$BF $RB=early" bash "$B/gpu-check.sh" run goldens
step bench-sync-2-timeline 22 KIMIMESH_JOPTS="$BF $RB=sync" bash "$B/gpu-check.sh" run bench -- $BA --timeline
step bench-overlap-2-timeline 22 KIMIMESH_JOPTS="$BF $RB=overlap" bash "$B/gpu-check.sh" run bench -- $BA --timeline
step bench-early-2-timeline 22 KIMIMESH_JOPTS="$BF $RB=early" bash "$B/gpu-check.sh" run bench -- $BA --timeline
step exact-checks 100 bash "$B/gpu-check.sh" run kernels goldens
step bench-early-warm20-timeline 25 KIMIMESH_JOPTS="$BF $RB=early" bash "$B/gpu-check.sh" run bench -- $BA --timeline --prefill-warmup 20
pack
echo "total $(( $(date +%s) - T0 )) s"
