#!/usr/bin/env bash
# Builds and runs the standalone KDA chunk-kernel check and timing (kda_bench.cu: kda.cu vs kda_v2.cuh) on a GPU
# machine with nvcc.
# Usage: cuda/bench/kda/run.sh [time|tc|v6|preps]   (from anywhere; copies nothing; the log goes to stdout)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../../src/main/cuda
[ -f "$here/kda.cu" ] && src=$here   # a copy carried to the GPU machine holds kda.cu and kda_tc.cuh beside this script
tmp=$(mktemp -d)
nvcc -arch=sm_90 -O3 -std=c++17 -I "$src" -o "$tmp/kda_bench" "$here/kda_bench.cu"
"$tmp/kda_bench" "$@"
