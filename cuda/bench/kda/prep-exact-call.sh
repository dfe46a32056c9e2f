#!/usr/bin/env bash
# One device call for an fp32 KDA prep of every mode (kdaPrep=$PREP, default v6) that must give prep v5's bits: the
# harness's bit-for-bit check against v5 and their timings alternating (`kda_bench v6`), the SASS instruction mix of
# the two, the exact mode's KDA kernel checks and goldens with the prep, the bf16-compute mode's goldens with it
# (where v5 gives 14/26: the same cases and figures are expected), the bench's KDA section in the bf16 mode (its
# interleaved prep line: v5, v6, tc2, tc3 with the tensor-core scan), then, while time lasts, the KDA section in the
# exact mode with the prep and with v5. Each step under its own timeout and only while the call's BUDGET (seconds,
# default 200) lasts; logs tarred into $OUT/kda-prep-exact-logs.tar.xz, a summary printed last.
# Usage, from the repository root of the device machine's copy:
#   DEV=.dev-NAME BUNDLE=.gpu-bundle-NAME bash $DEV/prep-exact-call.sh
# with $DEV holding kda_bench.xz (cuda/bench/kda/run.sh's nvcc line, built where nvcc is) and this script, and $BUNDLE
# the bundle of `cuda/gpu-check.sh pack` with its fixtures as fixtures-tiny.tar.xz (unpacked here into fixtures/).
set -u
D=${DEV:-.dev-kda5}
B=${BUNDLE:-.gpu-bundle-kda5}
P=${PREP:-v6}
L=/tmp/kda-prep-exact-logs
mkdir -p "$L"
T0=$SECONDS
BUDGET=${BUDGET:-200}
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
sass() {   # the two preps' instruction mix, from the bundle's cubin
  python3 -c "import zipfile, glob; zipfile.ZipFile(glob.glob('$B/lib/cuda-*.jar')[0]).extract('kernels/kda.cubin', '/tmp/kda-prep-cubin')"
  local cod
  cod=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -1)
  for f in kda_chunk_prep_v5 "kda_chunk_prep_$P"; do
    "$cod" -sass -fun "$f" /tmp/kda-prep-cubin/kernels/kda.cubin > "$L/sass-$f.txt" 2>&1
    local s=$L/sass-$f.txt
    echo "$f: $(grep -cE '^\s+/\*[0-9a-f]{4,}\*/' "$s") instructions; FFMA $(grep -c 'FFMA' "$s"), LDS $(grep -c ' LDS' "$s"), STS $(grep -c ' STS' "$s"), LDL $(grep -c ' LDL' "$s"), STL $(grep -c ' STL' "$s"), LDC $(grep -c ' LDC' "$s")"
  done
}
[ -d "$B/fixtures" ] || mkdir -p "$B/fixtures"
[ -f "$B/fixtures-tiny.tar.xz" ] && [ ! -d "$B/fixtures/tiny" ] && tar xJf "$B/fixtures-tiny.tar.xz" -C "$B/fixtures"
[ -f "$D/kda_bench.xz" ] && xz -dkf "$D/kda_bench.xz"
chmod +x "$D/kda_bench"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > "$L/gpu.txt" 2>&1
BF="-Dkimimesh.cuda.gemm=bf16"
step harness 60 "$D/kda_bench" v6
export L B P
export -f sass
step sass 15 bash -c sass
step exact-checks 60 env KIMIMESH_JOPTS="-Dkimimesh.cuda.kdaPrep=$P" KERNEL_GROUP=kda bash "$B/gpu-check.sh" run kernels goldens
step bf16-goldens 40 env KIMIMESH_JOPTS="$BF -Dkimimesh.cuda.kdaPrep=$P" bash "$B/gpu-check.sh" run goldens
step bench-bf16 60 env KIMIMESH_JOPTS="$BF" BENCH_LOG=bench bash "$B/gpu-check.sh" run bench -- --prefill none --batch none
step bench-exact-new 40 env KIMIMESH_JOPTS="-Dkimimesh.cuda.kdaPrep=$P" BENCH_LOG=bench bash "$B/gpu-check.sh" run bench -- --prefill none --batch none
step bench-exact-v5 40 env KIMIMESH_JOPTS="-Dkimimesh.cuda.kdaPrep=v5" BENCH_LOG=bench bash "$B/gpu-check.sh" run bench -- --prefill none --batch none
tar cJf "$OUT/kda-prep-exact-logs.tar.xz" -C /tmp kda-prep-exact-logs
cp "$L/summary.txt" "$OUT/"
echo
echo "################ summary (kdaPrep=$P)"
cat "$L/gpu.txt" "$L/summary.txt"
echo "--- harness"
grep -E 'FAIL|^checks' "$L/harness.txt" | head -20
grep -cE ' ok$' "$L/harness.txt" | sed 's/^/ok lines: /'
grep -E 'prep v6 = v5' "$L/harness.txt" | cut -c1-110
sed -n '/^prep v5 against/,$p' "$L/harness.txt" | cut -c1-200
echo "--- sass"; cat "$L/sass.txt"
for n in exact-checks bf16-goldens; do
  echo "--- $n"; grep -E 'checks, |FAIL|prep v6' "$L/$n.txt" | cut -c1-120 | tail -20
done
for n in bench-bf16 bench-exact-new bench-exact-v5; do
  echo "--- $n"; grep -E '^kda chunked|^ceiling' "$L/$n.txt" | cut -c1-220
done
