#!/usr/bin/env bash
# Builds and runs the one-read softmax check and timing (softmax_bench.cu) on a GPU machine with nvcc.
# Usage: cuda/bench/softmax/run.sh   (the log goes to stdout)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../../src/main/cuda
[ -f "$here/mla.cu" ] && src=$here   # a copy carried to the GPU machine holds mla.cu beside this script
tmp=$(mktemp -d)
nvcc -arch=sm_90 -O3 -std=c++17 -I "$src" -o "$tmp/softmax_bench" "$here/softmax_bench.cu"
"$tmp/softmax_bench"
