#!/usr/bin/env bash
# The full 27-layer Kimi-Linear-48B-A3B (real config, 98 GB of bf16 weights) on one GPU of >= 120 GB (an H200):
# decode ms/step at batch 1 and 32, context 4096, random weights. On the GPU machine, from the directory holding
# .gpu-bundle (made here by `cuda/gpu-check.sh pack`):
#   bash .gpu-bundle/full-model.sh                 (BATCHES=1,32 CONTEXT=4096 FULL_MODEL_WORK=/tmp/kimi-full-27)
# The GPU machines have a 64 GiB disk, too small for the checkpoint, so the random checkpoint is a sparse file: every
# tensor but the routed experts is written (about 4 GB), the routed experts (94 GB) are holes, and the bench fills
# them with random bf16 on the device after loading (same distribution as the written tensors; GpuCheck
# --experts-on-device). Logs go to $OUT/full-model.log (or .gpu-bundle/out).
# EXPERT_SETS=N: on a smaller card (an 80 GB H100), the routed experts of layers L and L + N share device memory
# (GpuCheck --expert-sets; N=16 puts 16 of the 26 MoE layers' expert sets, 58 GB, on the card): every layer still reads
# its experts from device memory, so a step moves the real model's bytes, but the figure is a stand-in for the H200 run.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${FULL_MODEL_WORK:-/tmp/kimi-full-27}
mem=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
need=120000
[ -n "${EXPERT_SETS:-}" ] && need=$((6000 + EXPERT_SETS * 3700))
if [ -z "$mem" ] || [ "$mem" -lt "$need" ]; then
  echo "full-model: the 27-layer model needs a GPU of >= $((need / 1000)) GB (98 GB of weights; EXPERT_SETS=16 fits 80 GB); this one has ${mem:-no} MiB"
  exit 4
fi
mkdir -p "$work"
avail=$(df -P -k "$work" | awk 'NR==2 {print $4}')
echo "free disk at $work: $((avail / 1024 / 1024)) GiB (needs about 5 GiB: the non-expert tensors)"
if [ "$avail" -lt $((6 * 1024 * 1024)) ]; then
  echo "full-model: not enough free disk at $work"
  exit 4
fi
BENCH_CONFIG=$here/kimi-linear-48b-a3b-instruct.config.json BENCH_WORK=$work BENCH_LOG=full-model${EXPERT_SETS:+-sets$EXPERT_SETS} \
  bash "$here/gpu-check.sh" run bench -- --no-kda --prefill none --context "${CONTEXT:-4096}" \
  --batch "${BATCHES:-1,32}" --experts-on-device ${EXPERT_SETS:+--expert-sets $EXPERT_SETS}
