#!/usr/bin/env bash
# Nsight Compute on the KDA chunk preps (v5, tc, tc2, tc3, v6) of the harness's 32k case, one launch each after a warm-up
# (kda_bench preps): occupancy, throughput, warp states, instruction mix, shared-memory bank conflicts, local memory.
# Usage (on a GPU machine): cuda/bench/kda/ncu-preps.sh KDA_BENCH_BINARY [LOG_DIR]   (the binary: run.sh's nvcc line)
set -uo pipefail
bin=$1
log=${2:-.}
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
# the preps run v5, tc, tc2, tc3, v6 twice: skip the warm-up round
"$ncu" --kernel-name regex:kda_chunk_prep --launch-skip 5 --launch-count 5 \
  --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section SchedulerStats \
  --section InstructionStats --section MemoryWorkloadAnalysis_Tables \
  --metrics smsp__inst_executed_op_local_ld.sum,smsp__inst_executed_op_local_st.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_st.sum,smsp__inst_executed_pipe_tensor.sum,sm__cycles_elapsed.avg,smsp__inst_executed.sum \
  "$bin" preps > "$log/ncu-preps.txt" 2>&1
rc=$?
grep -E 'kda_chunk_prep|Duration|Registers Per|Achieved Occupancy|L1/TEX Cache|Compute \(SM\) Throughput|DRAM Throughput|Warp Cycles Per Issued|Eligible Warps|bank_conflicts|local_ld|local_st|pipe_tensor|inst_executed.sum' \
  "$log/ncu-preps.txt" | sed -E 's/ +/ /g'
exit $rc
