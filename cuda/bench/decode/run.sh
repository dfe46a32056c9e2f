#!/usr/bin/env bash
# one device call: the decode GEMV harness (binary built here with `make`, copied with this script into a carried
# folder of the checkout the device tool sends), full log and the step table to $OUT
set -o pipefail
cd "$(dirname "$0")"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee $OUT/gpu.txt
STEP_TABLE=$OUT/step-table.txt ./decode-gemv 2>&1 > $OUT/harness.log; rc=$?
tail -3 $OUT/harness.log; grep -A200 "==== summary" $OUT/harness.log
exit $rc
