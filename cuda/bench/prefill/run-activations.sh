#!/usr/bin/env bash
# The bf16 linear outputs (-Dkimimesh.cuda.activations=bf16, branch act16) checked and timed in one device call: the
# 32k bf16 prefill with the flag off / on (the KDA section once), the bf16-mode goldens with each, the exact mode's
# kernels and goldens, every kernel group with the flag on, the prefill off / on again, the flag-off baseline of the
# groups it could move, then an Nsight kernel list of one 32k prefill with it on. Each step under its own timeout
# within BUDGET seconds; logs tarred into $OUT/act16-logs.tar.gz.
# Usage, on the GPU machine from the folder holding the bundle (cuda/gpu-check.sh pack, copied to a carried folder;
# the tiny fixture xz-compressed beside it as fixtures-tiny.tar.xz when the carry limit needs it):
#   BUNDLE=.gpu-bundle-act16 BUDGET=228 bash run-activations.sh
set -u
B=${BUNDLE:-.gpu-bundle}
T0=$(date +%s)
BUDGET=${BUDGET:-228}
[ -f $B/fixtures-tiny.tar.xz ] && mkdir -p $B/fixtures && tar xJf $B/fixtures-tiny.tar.xz -C $B/fixtures
L=/tmp/act16-logs; mkdir -p $L
FINAL=${OUT:-$PWD}
finish() { tar czf $FINAL/act16-logs.tar.gz -C /tmp act16-logs; }
trap finish EXIT
step() { # name timeout [VAR=val ...] -- gpu-check args...
  local name=$1 to=$2; shift 2
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  local el=$(( $(date +%s) - T0 )) left=$(( BUDGET - $(date +%s) + T0 ))
  if [ $left -lt 8 ]; then echo "=== $name SKIPPED (no time left at ${el}s)"; return; fi
  [ $to -gt $left ] && to=$left
  echo "=== $name start ${el}s timeout ${to}s"
  mkdir -p /tmp/o/$name
  timeout $to env OUT=/tmp/o/$name "${envs[@]}" bash $B/gpu-check.sh run "$@" > $L/$name.txt 2>&1
  echo "=== $name rc $? at $(( $(date +%s) - T0 ))s"
  grep -E "^FAIL|^(prefill|kda chunked)|checks, |exit" $L/$name.txt | tail -16
}
BF=-Dkimimesh.cuda.gemm=bf16
P=(--prefill 32768 --batch none --no-graph-check)
step bench-off-1 45 KIMIMESH_JOPTS="$BF -Dkimimesh.cuda.activations=fp32" BENCH_LOG=b -- bench -- "${P[@]}"
step bench-on-1  30 KIMIMESH_JOPTS="$BF -Dkimimesh.cuda.activations=bf16" BENCH_LOG=b -- bench -- "${P[@]}"
step goldens-bf16-on  25 KIMIMESH_JOPTS="$BF -Dkimimesh.cuda.activations=bf16" -- goldens
step goldens-bf16-off 25 KIMIMESH_JOPTS="$BF -Dkimimesh.cuda.activations=fp32" -- goldens
step exact-kernels-goldens 90 KIMIMESH_JOPTS="" -- kernels goldens
step kernels-bf16-on 90 KIMIMESH_JOPTS="$BF -Dkimimesh.cuda.activations=bf16" -- kernels
step bench-off-2 25 KIMIMESH_JOPTS="$BF -Dkimimesh.cuda.activations=fp32" BENCH_LOG=b -- bench -- "${P[@]}" --no-kda
step bench-on-2  25 KIMIMESH_JOPTS="$BF -Dkimimesh.cuda.activations=bf16" BENCH_LOG=b -- bench -- "${P[@]}" --no-kda
step kernels-bf16-off 45 KIMIMESH_JOPTS="$BF -Dkimimesh.cuda.activations=fp32" KERNEL_GROUP=fused,operands,norms,elementwise,conv -- kernels
step profile-on 60 KIMIMESH_JOPTS="$BF -Dkimimesh.cuda.activations=bf16" PROFILE_BATCHES=none PROFILE_PREFILL=32768 -- profile
cp /tmp/o/profile-on/profile-prefill-32768.txt $L/ 2>/dev/null
echo "=== done at $(( $(date +%s) - T0 ))s"
