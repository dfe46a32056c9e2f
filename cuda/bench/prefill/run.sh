#!/usr/bin/env bash
# The bf16-compute prefill in one device call: kernel checks of the changed groups, goldens (exact; bf16 with the
# earlier and the new operand paths, and with batched expert GEMMs), the 32k prefill with each variant, the flash
# variants alone, and an Nsight kernel list of one 32k prefill (batched experts; ncu time is per kernel, so the
# default path's ~2,800 kernels would not fit the call). Logs under $OUT (8 files at most come back from the device tool).
# Usage, on the GPU machine from the folder holding the bundle (cuda/gpu-check.sh pack, copied to a carried folder):
#   BUNDLE=.gpu-bundle FLASH_BENCH=path/to/flash_bench bash cuda/bench/prefill/run.sh
# (flash_bench: nvcc -arch=sm_90 -O3 -std=c++17 -I cuda/src/main/cuda -o flash_bench cuda/bench/softmax/flash_bench.cu)
set -uo pipefail
B=${BUNDLE:-.gpu-bundle}
OUT=${OUT:-$PWD/prefill-out}
mkdir -p "$OUT"
T=$(mktemp -d)
t0=$(date +%s)
step() { echo "[$(( $(date +%s) - t0 ))s] $*" | tee -a "$OUT/summary.txt"; }
gc() { OUT=$T/o timeout "$1" bash "$B/gpu-check.sh" run "${@:2}"; }
step "kernels matmul,moe (default mode)"
KERNEL_GROUP=matmul,moe gc 60 kernels > "$OUT/kernels.log" 2>&1
step "goldens exact / bf16 earlier path / bf16 / bf16 batched"
{ echo "##### exact"; gc 30 goldens
  echo "##### bf16 earlier path"; KIMIMESH_JOPTS="-Dkimimesh.cuda.gemm=bf16 -Dkimimesh.cuda.bf16Operands=false" gc 30 goldens
  echo "##### bf16"; KIMIMESH_JOPTS="-Dkimimesh.cuda.gemm=bf16" gc 30 goldens
  echo "##### bf16 batched"; KIMIMESH_JOPTS="-Dkimimesh.cuda.gemm=bf16 -Dkimimesh.cuda.expertGemm=batched" gc 30 goldens; } > "$OUT/goldens.log" 2>&1
bench() { echo "##### $1" >> "$OUT/bench.log"; step "bench $1"
  KIMIMESH_JOPTS="-Dkimimesh.cuda.gemm=bf16 $1" gc 45 bench -- --no-kda --prefill 32768 --batch none >> "$OUT/bench.log" 2>&1; }
bench "-Dkimimesh.cuda.bf16Operands=false"
bench ""
bench "-Dkimimesh.cuda.expertGemm=batched"
if [ -n "${FLASH_BENCH:-}" ]; then step "flash variants"; timeout 30 "$FLASH_BENCH" > "$OUT/flash.log" 2>&1; fi
bench "-Dkimimesh.cuda.expertGemm=batched -Dkimimesh.cuda.flashVariant=m2s1k32"
left=$(( ${CALL_SECONDS:-188} - ($(date +%s) - t0) ))
step "profile (batched experts), $left s left"
[ $left -gt 25 ] && PROFILE_BATCHES=none PROFILE_PREFILL=32768 \
  KIMIMESH_JOPTS="-Dkimimesh.cuda.gemm=bf16 -Dkimimesh.cuda.expertGemm=batched" OUT=$T/p timeout $left bash "$B/gpu-check.sh" run profile > "$OUT/profile.log" 2>&1
cp "$T/p/profile-prefill-32768.txt" "$OUT/" 2>/dev/null
step "done"
{ echo "== checks"; grep "checks,\|^FAIL\|bf16 glue\|x converted once" "$OUT/kernels.log"
  grep "#####\|checks,\|prefill T200 logits\|prefill T64 logits" "$OUT/goldens.log"
  echo "== bench"; grep "#####\|prefill 32768" "$OUT/bench.log"
  echo "== flash"; grep "32768\|all checks\|FAIL" "$OUT/flash.log" 2>/dev/null
  echo "== profile"; head -25 "$OUT/profile-prefill-32768.txt" 2>/dev/null; } >> "$OUT/summary.txt"
cat "$OUT/summary.txt"
