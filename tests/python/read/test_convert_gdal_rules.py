"""Float -> integer conversion against rasterio's read(out_dtype=...) (GDAL's
GDALCopyWords rules), on one float32 and one float64 file that both readers
read: the edge values where GDAL's float arithmetic rounds (x + 0.5f in float:
0.49999997f gives 1, 8388609.0f gives 8388610), saturation bounds, NaN, +-inf,
subnormals.  The rules are listed in lib/common/dtype.c.

Each value fills a row of 64 columns: GDAL copies a row in chunks of 8 (its
SSE2 path) and its float32 -> int16 chunks differ from its scalar tail in two
values (lib/common/dtype.c); with 64 columns there is no tail, so every pair is
compared bit for bit, with no exception: float32 NaN into int32, INT32_MIN
in GDAL 3.6 and 0 from 3.7 on, follows the GDAL the process runs on, which is
rasterio's (lib/common/common.h; the C suite check_convert holds the C
library on Debian's 3.6 to 3.6's rule).
"""

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

import rasterloader

EDGES = [0.49999997, -0.49999997, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.25, -0.25, 0.75, -0.75,
         0.49999999999999994, -0.49999999999999994, 127.5, -128.5, 254.5, 255.5, 32767.5, -32768.5,
         65535.5, 8388609.0, -8388609.0, 8388611.0, 16777215.0, 16777217.0, 2147483520.0, -2147483520.0,
         2147483647.0, 2147483648.0, -2147483648.0, -2147483904.0, 4294967040.0, 4294967295.0,
         4294967296.0, 1e10, -1e10, 3.4e38, -3.4e38, 1e300, -1e300,
         np.nan, -np.nan, np.inf, -np.inf, 1e-40, -1e-40, 5e-324, 0.0, -0.0]
INT_DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32"]
WIDTH = 64


def _values(dtype):
    rng = np.random.default_rng(22)
    with np.errstate(over="ignore"):
        edges = np.array(EDGES, dtype=np.float64).astype(dtype)
    # Random halves and near-halves around every range, and random bits.
    near = (rng.integers(-70000, 70000, 64) / 2.0 + rng.choice([0.0, 1e-7, -1e-7], 64)).astype(dtype)
    nbytes = np.dtype(dtype).itemsize
    bits = rng.integers(0, 256, 64 * nbytes, dtype=np.uint8).view(dtype)
    return np.concatenate([edges, near, bits])


@pytest.fixture(scope="module", params=["float32", "float64"])
def float_file(request, tmp_path_factory):
    dtype = request.param
    values = _values(dtype)
    path = tmp_path_factory.mktemp("gdal_rules") / f"{dtype}.tif"
    data = np.repeat(values[:, None], WIDTH, axis=1)
    with rasterio.open(path, "w", driver="GTiff", width=WIDTH, height=len(values), count=1, dtype=dtype,
                       crs="EPSG:32631", transform=from_origin(500000, 0, 10, 10)) as ds:
        ds.write(data, 1)
    return str(path), dtype, values


def _first_difference(got, want, values):
    bad = np.argwhere(got != want)
    r, c = bad[0]
    return f"row {r} (value {values[r]!r}), column {c}: rasterloader {got[r, c]}, expected {want[r, c]}"


@pytest.mark.parametrize("out_dtype", INT_DTYPES)
def test_read_out_dtype_equals_rasterio(float_file, out_dtype):
    path, src_dtype, values = float_file
    with rasterio.open(path) as ds:
        want = ds.read(1, out_dtype=out_dtype)
    with rasterloader.open(path) as ds:
        got = ds.read(1, out_dtype=out_dtype)
    assert got.dtype == np.dtype(out_dtype)
    assert np.array_equal(got, want), _first_difference(got, want, values)


@pytest.mark.parametrize("out_dtype", INT_DTYPES)
def test_windowed_hwc_read_equals_rasterio(float_file, out_dtype):
    """A window whose rows start off the file's first column: the conversion
    rule does not depend on where a value sits in a run (GDAL's chunks of 8
    start at column 8 here, so rasterio still takes its chunked path)."""
    path, src_dtype, values = float_file
    window = rasterio.windows.Window(8, 3, 48, len(values) - 5)
    with rasterio.open(path) as ds:
        want = ds.read(1, window=window, out_dtype=out_dtype)
    with rasterloader.open(path) as ds, ds.read_hwc(window=window, out_dtype=out_dtype) as tile:
        got = tile.numpy()[:, :, 0].copy()
    assert np.array_equal(got, want), _first_difference(got, want, values[3:-2])


def test_the_named_gdal_rounding_cases_are_in_the_file():
    """The values that tell GDAL's float rounding from exact rounding half
    away from zero are in the fixture (so the tests above can fail)."""
    with np.errstate(invalid="ignore"):
        f = np.array(EDGES, dtype=np.float32)
        exact = np.where(f >= 0, np.floor(f.astype(np.float64) + 0.5), np.ceil(f.astype(np.float64) - 0.5))
        gdal = np.where(f >= 0, np.trunc(f + np.float32(0.5)), np.trunc(f - np.float32(0.5)))
    assert np.count_nonzero((exact != gdal) & np.isfinite(f) & (np.abs(f) < 2**31)) >= 4
