#!/usr/bin/env bash
# One device call for the decode fusions (branch fuse): the new kernels against the CPU backend, the goldens, the
# decode bench of this build (graph vs eager checks on) and of a baseline build (BASE_LIB: main's engine + cuda
# jars), then Nsight kernel lists of one batch-1 decode step. Each part has its own time limit so that the logs come
# back inside the device call's limit; a summary goes to $OUT/summary.txt as it runs, all logs to $OUT/logs.tgz.
#   bash .gpu-bundle-fuse/device-run.sh [LIMIT_S] [BATCHES] [KERNEL_GROUPS] [PROFILE_MAIN]   (from the bundle's parent)
set -u
B=$(cd "$(dirname "$0")" && pwd)
limit=${1:-190}
batches=${2:-1,8,64}
groups=${3:-fused,moe,mla}
profileMain=${4:-yes}
final=${OUT:-$B/out}
mkdir -p "$final"
work=/tmp/fuse-logs
mkdir -p "$work"
# the baseline folder holds only main's engine and cuda jars: the shared dependencies come from this bundle's lib
base=$B/lib-main
cp -n "$B"/lib/jackson* "$B"/lib/slf4j* "$base"/ 2>/dev/null
t0=$(date +%s)
left() { echo $(( limit - ($(date +%s) - t0) )); }
note() { echo "[$(( $(date +%s) - t0 ))s] $*" | tee -a "$final/summary.txt"; }
part() { # part NAME SECONDS command...: runs it if time is left, logs to $work/NAME.txt
  local name=$1 want=$2; shift 2
  local l=$(left); [ "$l" -lt 15 ] && { note "$name skipped (${l}s left)"; return; }
  [ "$want" -gt $((l - 5)) ] && want=$((l - 5))
  timeout -k 3 "$want" "$@" > "$work/$name.txt" 2>&1
  note "$name exit $? (limit ${want}s)"
  grep -E "^(FAIL|PASS decode graph)|checks, .* failed|CUDA graph \(production|device time of the step|^decode batch|kernels, .* us of kernel" "$work/$name.txt" | tee -a "$final/summary.txt"
}
note "start on $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
export OUT=$work/new
mkdir -p "$OUT"
part kernels 50 env KERNEL_GROUP="$groups" bash "$B/gpu-check.sh" run kernels
part goldens 40 bash "$B/gpu-check.sh" run goldens
part bench-new 55 bash "$B/gpu-check.sh" run bench -- --no-kda --prefill none --context 4096 --batch "$batches" --work /tmp/kimi-bench-ckpt
export OUT=$work/main
mkdir -p "$OUT"
part bench-main 40 env KIMIMESH_LIB="$base" bash "$B/gpu-check.sh" run bench -- --no-graph-check --no-kda --prefill none --context 4096 --batch "$batches" --work /tmp/kimi-bench-ckpt
[ "$profileMain" = yes ] && part profile-main 40 env KIMIMESH_LIB="$base" PROFILE_BATCHES=1 bash "$B/gpu-check.sh" run profile
export OUT=$work/new
part profile-new 40 env PROFILE_BATCHES=1 bash "$B/gpu-check.sh" run profile
for f in "$work"/main/profile-b1.txt "$work"/new/profile-b1.txt; do [ -f "$f" ] && { echo "== $f"; head -40 "$f"; } >> "$final/summary.txt"; done
tar czf "$final/logs.tgz" -C "$work" .
note done
