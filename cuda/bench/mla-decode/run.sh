#!/usr/bin/env bash
# Builds and runs the MLA decode kernel check and timing (harness.cu: mla_decode.cu, mla_decode_v2.cu and
# mla_decode_v3.cu from cuda/src/main/cuda, each against a float64 CPU reference) on a GPU machine with nvcc.
# Usage: cuda/bench/mla-decode/run.sh   (the table goes to stdout)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../../src/main/cuda
[ -f "$here/mla_decode.cu" ] && src=$here   # a copy carried to the GPU machine holds the kernel sources (mla_decode*.cu, mla_combine.cuh) beside this script
tmp=$(mktemp -d)
nvcc -arch=sm_90 -O3 -std=c++17 -I "$src" -I "$here" -o "$tmp/mla_decode_bench" "$here/harness.cu"
"$tmp/mla_decode_bench"
