#!/usr/bin/env bash
# Fetches NVIDIA's NVRTC (libnvrtc.so.13 and its builtins library) from Maven Central, where bytedeco's CUDA
# redistribution carries it, into a folder outside the repository, and prints that folder. The run-time kernel
# compiler's test (cuda RuntimeKernelsTest) uses it on machines without a CUDA toolkit's libnvrtc, e.g. CI:
#   export LD_LIBRARY_PATH=$(tools/nvrtc/fetch.sh)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# Compiling needs no GPU. NVRTC_DIR picks the folder (default ~/.cache/kimi-mesh/nvrtc). Exits 1 (with a message on
# stderr) where the download fails; the test then skips with its reason.
set -euo pipefail
version=13.1-9.19-1.5.13
dir=${NVRTC_DIR:-$HOME/.cache/kimi-mesh/nvrtc}
if [ -f "$dir/libnvrtc.so.13" ]; then echo "$dir"; exit 0; fi
command -v unzip >/dev/null 2>&1 || { apt-get update -qq >&2 && apt-get install -y -qq unzip >&2; }
mkdir -p "$dir"
jar=$(mktemp "$dir/cuda-redist.XXXXXX.jar")
trap 'rm -f "$jar"' EXIT
url=https://repo.maven.apache.org/maven2/org/bytedeco/cuda-redist/$version/cuda-redist-$version-linux-x86_64.jar
if ! curl -fsS --max-time 300 -o "$jar" "$url"; then
  echo "nvrtc: could not download $url" >&2
  exit 1
fi
# unpacked beside, then renamed into place: an interrupted run never leaves a half library that a later run trusts
tmp=$(mktemp -d "$dir/unpack.XXXXXX")
unzip -o -q -j "$jar" 'org/bytedeco/cuda/linux-x86_64/libnvrtc*' -d "$tmp"
mv "$tmp"/libnvrtc-builtins* "$dir"/ && mv "$tmp/libnvrtc.so.13" "$dir/libnvrtc.so.13" && rmdir "$tmp"
echo "$dir"
