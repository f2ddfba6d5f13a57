#!/usr/bin/env bash
# run.sh BUILD_DIR - the conversion benchmark (`make bench-convert`): the
# per-pair throughput table (bench_convert, C) and the warm read_hwc table
# (bench_read_hwc.py), written together to bench/results/conversion.md with
# the figures from before the kernels beside them (BEFORE_PY, below).
# SMOKE=1: a few seconds of both, nothing written.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:?usage: run.sh BUILD_DIR}"
py="$here/.venv/bin/python"
[ -x "$py" ] || py=python3
# The read bench uses a tile-cache arena of its own, never the default one.
export RASTERLOADER_TILE_CACHE_NAME="${RASTERLOADER_TILE_CACHE_NAME:-rl-bench-convert-$$}"
if [ -n "${SMOKE:-}" ]; then
  "$build/bench/bench_convert" --smoke >/dev/null
  "$py" "$here/bench/convert/bench_read_hwc.py" --smoke >/dev/null
  echo "bench-convert smoke: OK"
  exit 0
fi
out="$here/bench/results/conversion.md"
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
{
  echo "# Conversion at memory speed (issue 22, item 3)"
  echo
  echo "\`make bench-convert\` (bench/convert/run.sh). Throughput per dtype pair: the vectorised kernels"
  echo "(lib/common/convert.c) against the scalar path they replace (raster__place_scalar, the code before),"
  echo "GDALCopyWords for the same pair and memcpy of the same bytes written, in one run. \"M/s\" is values"
  echo "per second, GB/s bytes written per second."
  echo
  echo "Reading it: memcpy copies the bytes a pair writes (it also reads as many), so a widening pair, which reads"
  echo "fewer, can pass 100%. The kernels are SSE2 (the build's baseline; an AVX2 build of the same loops,"
  echo "tried with target_clones, was no faster for the plain pairs and 30% slower for mean/std on this CPU,"
  echo "so it is not used). What stands below memory speed: mean/std is bounded by double division (the"
  echo "expression must stay NumPy's, in double; a reciprocal product with an exactness check was slower"
  echo "than the division here), scale/offset by two-lane double arithmetic, float into integer by the"
  echo "selects of GDAL's rules (lib/common/dtype.c: the +-0.5f in float, NaN, saturation), pixels to planes from"
  echo "1-byte sources by the generic deinterleave, and float16, which has no kernels (the scalar path)."
  echo
  "$build/bench/bench_convert"
  echo
  echo "## Warm reads, after"
  echo
  "$py" "$here/bench/convert/bench_read_hwc.py" --label ", this build"
  # The same build with the lookup tables off (lib/common/convert.h): the direct
  # kernels, run just after on the same windows.
  echo "## Warm reads, lookup tables off (RASTERLOADER_CONVERT_TABLES=0, the same build, run just after)"
  echo
  RASTERLOADER_CONVERT_TABLES=0 "$py" "$here/bench/convert/bench_read_hwc.py" \
    --label ", RASTERLOADER_CONVERT_TABLES=0"
  # BEFORE_PY: a Python whose rasterloader is the build before the kernels
  # (e.g. another checkout's .venv/bin/python), run now, on the same windows;
  # otherwise the figures recorded with it (bench/convert/before.md).
  if [ -n "${BEFORE_PY:-}" ]; then
    echo "## Warm reads, before (the same script with $BEFORE_PY, run just after)"
    echo
    "$BEFORE_PY" "$here/bench/convert/bench_read_hwc.py" --label ", before: $BEFORE_PY"
  else
    echo "## Warm reads, before (recorded: bench/convert/before.md)"
    echo
    cat "$here/bench/convert/before.md"
  fi
} >"$tmp"
mkdir -p "$here/bench/results"
mv "$tmp" "$out"
trap - EXIT
cat "$out"
