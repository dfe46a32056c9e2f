#!/usr/bin/env bash
# One device call for a KDA prep of the bf16-compute mode (kdaPrep=$PREP, default tc3) against prep v5: the harness's
# checks and timings, the SASS instruction mix of the preps, the Java kernel checks and goldens in the bf16 mode with
# the new prep, the bench's KDA section (preps interleaved) and a 32k bf16 prefill with the new prep, v5, the new prep
# again, the exact mode's KDA checks, then Nsight Compute on the preps. Each step under its own timeout and only while
# the call's BUDGET (seconds, default 170) lasts; logs tarred into $OUT/kda-prep-logs.tar.xz, a summary printed last.
# Usage, from the repository root of the device machine's copy:
#   DEV=.dev-NAME BUNDLE=.gpu-bundle-NAME bash $DEV/prep-call.sh
# with $DEV holding kda_bench.xz (cuda/bench/kda/run.sh's nvcc line, built where nvcc is), this script, ncu-preps.sh,
# and $BUNDLE the bundle of `cuda/gpu-check.sh pack` (fixtures/family dropped to fit the carry).
# (An fp32 prep of every mode that must give v5's bits, such as v6: prep-exact-call.sh.)
set -u
D=${DEV:-.dev-kda4}
B=${BUNDLE:-.gpu-bundle-kda4}
P=${PREP:-tc3}
L=/tmp/kda-prep-logs
mkdir -p "$L"
T0=$SECONDS
BUDGET=${BUDGET:-170}
summary() { echo "$*" | tee -a "$L/summary.txt"; }
step() {   # name timeout command...
  local n=$1 t=$2
  shift 2
  local left=$((BUDGET - (SECONDS - T0)))
  if [ "$left" -lt 20 ]; then summary "SKIP $n (no time left)"; return; fi
  [ "$t" -gt "$left" ] && t=$left
  summary "== $n (timeout $t s) starts at $((SECONDS - T0)) s"
  mkdir -p "$L/$n"
  OUT="$L/$n" timeout "$t" "$@" > "$L/$n.txt" 2>&1
  summary "== $n exit $? at $((SECONDS - T0)) s"
}
sass() {   # the preps' instruction mix, from the bundle's cubin
  python3 -c "import zipfile, glob; zipfile.ZipFile(glob.glob('$B/lib/cuda-*.jar')[0]).extract('kernels/kda.cubin', '/tmp/kda-prep-cubin')"
  local cod
  cod=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -1)
  for f in kda_chunk_prep_v5 kda_chunk_prep_tc kda_chunk_prep_tc2 kda_chunk_prep_tc3; do
    "$cod" -sass -fun "$f" /tmp/kda-prep-cubin/kernels/kda.cubin > "$L/sass-$f.txt" 2>&1
    local s=$L/sass-$f.txt
    echo "$f: $(grep -cE '^\s+/\*[0-9a-f]{4,}\*/' "$s") instructions; HMMA $(grep -c 'HMMA' "$s"), LDL $(grep -c ' LDL' "$s"), STL $(grep -c ' STL' "$s"), LDS $(grep -c ' LDS' "$s"), BRA $(grep -c ' BRA' "$s")"
  done
}
[ -f "$D/kda_bench.xz" ] && xz -dkf "$D/kda_bench.xz"
chmod +x "$D/kda_bench"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > "$L/gpu.txt" 2>&1
BF="-Dkimimesh.cuda.gemm=bf16"
step harness 60 "$D/kda_bench" tc
export L B
export -f sass
step sass 15 bash -c sass
step bf16-checks 60 env KIMIMESH_JOPTS="$BF -Dkimimesh.cuda.kdaPrep=$P" KERNEL_GROUP=kda bash "$B/gpu-check.sh" run kernels goldens
step bench-bf16-new 75 env KIMIMESH_JOPTS="$BF -Dkimimesh.cuda.kdaPrep=$P" BENCH_LOG=bench bash "$B/gpu-check.sh" run bench -- --prefill 32768 --batch none --no-graph-check
step bench-bf16-v5 35 env KIMIMESH_JOPTS="$BF -Dkimimesh.cuda.kdaPrep=v5" BENCH_LOG=bench bash "$B/gpu-check.sh" run bench -- --prefill 32768 --batch none --no-graph-check --no-kda
step bench-bf16-new-again 30 env KIMIMESH_JOPTS="$BF -Dkimimesh.cuda.kdaPrep=$P" BENCH_LOG=bench bash "$B/gpu-check.sh" run bench -- --prefill 32768 --batch none --no-graph-check --no-kda
step exact-checks 40 env KERNEL_GROUP=kda bash "$B/gpu-check.sh" run kernels goldens
step ncu 40 bash "$D/ncu-preps.sh" "$D/kda_bench" "$L"
tar cJf "$OUT/kda-prep-logs.tar.xz" -C /tmp kda-prep-logs
cp "$L/summary.txt" "$OUT/"
echo
echo "################ summary (kdaPrep=$P)"
cat "$L/gpu.txt" "$L/summary.txt"
echo "--- harness"
grep -E 'FAIL|^checks' "$L/harness.txt" | head -20
grep -E "prep $P .*(vs v5|vs fp32)" "$L/harness.txt" | grep -E '^  (32k|d32)' | cut -c1-120 | head -24
sed -n '/^ms, median/,$p' "$L/harness.txt" | cut -c1-400
echo "--- sass"; cat "$L/sass.txt"
for n in bf16-checks exact-checks; do
  echo "--- $n"; grep -E 'checks, |FAIL' "$L/$n.txt" | cut -c1-110 | tail -16
done
for n in bench-bf16-new bench-bf16-v5 bench-bf16-new-again; do
  echo "--- $n"; grep -E '^kda chunked|^prefill|^ceiling' "$L/$n.txt"
done
echo "--- ncu"; cut -c1-120 "$L/ncu.txt" | head -60
