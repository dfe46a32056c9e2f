#!/usr/bin/env bash
# Compiles every CUDA source to an sm_90 cubin and to PTX (the driver JIT-compiles PTX on other GPUs). Sources named
# *_sm90a.cu use Hopper-only instructions (wgmma, setmaxnreg) and build for sm_90a / compute_90a instead: their module
# loads on Hopper GPUs only, and the backend falls back to an sm_90 kernel where it does not.
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
  case "$name" in
    # the -gencode form: the -arch=sm_90a shorthand also ran a plain sm_90 pass that rejects wgmma (nvcc 13.0)
    *_sm90a) cubin=(-gencode=arch=compute_90a,code=sm_90a); ptx=(-gencode=arch=compute_90a,code=compute_90a) ;;
    *) cubin=(-arch=sm_90); ptx=(-arch=compute_90) ;;
  esac
  "$nvcc" "${cubin[@]}" -O3 -std=c++17 -cubin -o "$out/$name.cubin" "$f"
  "$nvcc" "${ptx[@]}" -O3 -std=c++17 -ptx -o "$out/$name.ptx" "$f"
done
echo "[cuda] kernels compiled to $out"
