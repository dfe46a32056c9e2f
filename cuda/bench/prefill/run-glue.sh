#!/usr/bin/env bash
# The bf16-compute prefill's glue (branch glue4) checked and timed in one device call: the 32k bf16 prefill with the
# earlier glue (no bf16 copies, kda_gate), the defaults and the defaults + bf16 MoE intermediates, alternating twice;
# kernel checks (groups operands, norms, elementwise, matmul in the bf16 mode; the same and fused in the exact mode)
# and goldens in both modes, and the goldens with the bf16 intermediates; the bf16-mode decode graph vs eager at
# batch 1 and 64; an Nsight kernel list of one 32k prefill. Each step under its own timeout; logs tarred into
# $OUT/glue-logs.tgz after every step, so a call cut short still returns what ran. (Branch glue4's two calls of
# 2026-12-06 ran these steps split over .dev scripts: docs/gpu-logs/glue4-*.txt.)
# Usage, on the GPU machine from the folder holding the bundle (cuda/gpu-check.sh pack, then this script copied into
# it, the bundle copied to a carried folder):
#   BUNDLE=.gpu-bundle bash .gpu-bundle/run-glue.sh        (about 200 s once the bench checkpoint exists)
set -uo pipefail
B=${BUNDLE:-.gpu-bundle}
REAL_OUT=${OUT:-$PWD/glue-out}
L=$(mktemp -d)
mkdir -p "$REAL_OUT"
t0=$(date +%s)
step() {
  local name=$1 lim=$2; shift 2
  echo "[$(( $(date +%s) - t0 ))s] $name" | tee -a "$L/summary.txt"
  mkdir -p "$L/$name"
  OUT=$L/$name timeout "$lim" "$@" > "$L/$name/console.txt" 2>&1
  echo "  exit $? after $(( $(date +%s) - t0 ))s" | tee -a "$L/summary.txt"
  grep -h "^prefill\|checks, \|FAIL\|graph vs eager" "$L/$name/console.txt" 2>/dev/null | head -40 >> "$L/summary.txt"
  tar czf "$REAL_OUT/glue-logs.tgz" -C "$L" .
}
GC="bash $B/gpu-check.sh run"
OLD="-Dkimimesh.cuda.gemm=bf16 -Dkimimesh.cuda.fusedOperands=false -Dkimimesh.cuda.kdaGate=v1 -Dkimimesh.cuda.prefillRoute=block"
NEW="-Dkimimesh.cuda.gemm=bf16"
MID="-Dkimimesh.cuda.gemm=bf16 -Dkimimesh.cuda.moeIntermediate=bf16"
BO="--prefill 32768 --batch none --no-graph-check --no-kda"
step bench-old-1 60 env KIMIMESH_JOPTS="$OLD" $GC bench -- $BO
for i in 1 2; do
  [ $i = 1 ] || step bench-old-$i 25 env KIMIMESH_JOPTS="$OLD" $GC bench -- $BO
  step bench-new-$i 25 env KIMIMESH_JOPTS="$NEW" $GC bench -- $BO
  step bench-mid-$i 25 env KIMIMESH_JOPTS="$MID" $GC bench -- $BO
done
step checks-bf16 60 env KIMIMESH_JOPTS="$NEW" KERNEL_GROUP=operands,norms,elementwise,matmul $GC kernels goldens
step goldens-bf16-mid 20 env KIMIMESH_JOPTS="$MID" $GC goldens
step checks-exact 60 env KERNEL_GROUP=operands,norms,elementwise,matmul,fused $GC kernels goldens
step graph-bf16 40 env KIMIMESH_JOPTS="$NEW" $GC bench -- --prefill none --context 4096 --batch 1,64 --no-kda
step profile 45 env KIMIMESH_JOPTS="$NEW" PROFILE_BATCHES=none PROFILE_PREFILL=32768 $GC profile
cat "$L/summary.txt"
