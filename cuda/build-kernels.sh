#!/usr/bin/env bash
# Compiles every CUDA source to an sm_90 cubin and to PTX (the driver JIT-compiles PTX on other GPUs).
# Usage: build-kernels.sh SRC_DIR OUT_DIR. Without nvcc it prints a note and succeeds: the backend then needs
# kernels built elsewhere (see docs/gpu.md).
set -euo pipefail
src=$1
out=$2
nvcc=${NVCC:-}
if [ -z "$nvcc" ]; then
  if command -v nvcc >/dev/null 2>&1; then nvcc=nvcc
  elif [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ]; then nvcc=$CUDA_HOME/bin/nvcc
  fi
fi
if [ -z "$nvcc" ]; then
  echo "[cuda] nvcc not found: kernels not compiled (the CUDA backend will report itself unavailable)"
  exit 0
fi
mkdir -p "$out"
for f in "$src"/*.cu; do
  name=$(basename "$f" .cu)
  # up to date only if newer than the source and every shared header (gemv_tile.cuh is included by two sources)
  fresh=1
  for dep in "$f" "$src"/*.cuh; do
    [ -e "$dep" ] || continue
    if ! [ "$out/$name.cubin" -nt "$dep" ] || ! [ "$out/$name.ptx" -nt "$dep" ]; then fresh=0; fi
  done
  if [ $fresh = 1 ]; then continue; fi
  "$nvcc" -arch=sm_90 -O3 -std=c++17 -cubin -o "$out/$name.cubin" "$f"
  "$nvcc" -arch=compute_90 -O3 -std=c++17 -ptx -o "$out/$name.ptx" "$f"
done
echo "[cuda] kernels compiled to $out"
