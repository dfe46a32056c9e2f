#!/usr/bin/env bash
# Builds and runs, on a GPU machine with nvcc, the one-read softmax check and timing (softmax_bench.cu) and the fused
# flash-attention check and timing (flash_bench.cu), both against the backend's kernels in mla.cu; flash_bench also
# checks and times the wgmma kernels of mla_flash_sm90a.cu (built for sm_90a: -DFLASH_WGMMA).
# Usage: cuda/bench/softmax/run.sh   (the log goes to stdout)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../../src/main/cuda
[ -f "$here/mla.cu" ] && src=$here   # a copy carried to the GPU machine holds mla.cu, mla_flash.cuh and mla_flash_sm90a.cu beside this script
tmp=$(mktemp -d)
nvcc -arch=sm_90 -O3 -std=c++17 -I "$src" -o "$tmp/softmax_bench" "$here/softmax_bench.cu"
nvcc -gencode=arch=compute_90a,code=sm_90a -DFLASH_WGMMA -O3 -std=c++17 -I "$src" -o "$tmp/flash_bench" "$here/flash_bench.cu"
rc=0
"$tmp/softmax_bench" || rc=1
"$tmp/flash_bench" || rc=1
exit $rc
