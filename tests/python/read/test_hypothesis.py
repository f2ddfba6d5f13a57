"""Random windows, band lists and dtypes against rasterio (bounded example counts)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from rasterio.windows import Window

from conftest import GOOD, assert_same

NAMES = [e["name"] for e in GOOD]
DTYPES = [None, "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"]
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def requests(draw, boundless=False):
    e = GOOD[0]
    name = draw(st.sampled_from(NAMES))
    e = next(x for x in GOOD if x["name"] == name)
    h, w = e["height"], e["width"]
    lo_r, lo_c = (-h // 2, -w // 2) if boundless else (0, 0)
    r0 = draw(st.integers(lo_r, h - 1))
    c0 = draw(st.integers(lo_c, w - 1))
    hh = draw(st.integers(1, min(300, h + h // 2 - r0) if boundless else min(300, h - r0)))
    ww = draw(st.integers(1, min(300, w + w // 2 - c0) if boundless else min(300, w - c0)))
    n = e["count"]
    idx = draw(st.one_of(st.none(), st.integers(1, n),
                         st.lists(st.integers(1, n), min_size=1, max_size=5)))
    dt = draw(st.sampled_from(DTYPES))
    return name, Window(c0, r0, ww, hh), idx, dt


def _nan_int(rio_ds, window, idx, dt, boundless=False):
    return dt is not None and np.dtype(dt).kind in "iu" and rio_ds.dtypes[0].startswith("float")


@SETTINGS
@given(requests())
def test_random_reads_equal_rasterio(rio, rl, req):
    name, window, idx, dt = req
    want = rio(name).read(idx, window=window, out_dtype=dt)
    got = rl(name).read(idx, window=window, out_dtype=dt)
    if _nan_int(rio(name), window, idx, dt):
        src = rio(name).read(idx, window=window)
        nan = np.isnan(src)
        got, want = np.where(nan, 0, got), np.where(nan, 0, want)   # see test_read.py
    assert_same(got, want)


@SETTINGS
@given(requests(boundless=True))
def test_random_boundless_reads_equal_rasterio(rio, rl, req):
    name, window, idx, dt = req
    want = rio(name).read(idx, window=window, out_dtype=dt, boundless=True)
    got = rl(name).read(idx, window=window, out_dtype=dt, boundless=True)
    if _nan_int(rio(name), window, idx, dt):
        src = rio(name).read(idx, window=window, boundless=True)
        nan = np.isnan(src)
        got, want = np.where(nan, 0, got), np.where(nan, 0, want)
    assert_same(got, want)


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests())
def test_random_hwc_tiles_equal_rasterio(rio, rl, req):
    name, window, idx, dt = req
    want = rio(name).read(idx, window=window, out_dtype=dt)
    if want.ndim == 2:
        want = want[np.newaxis]
    want = np.moveaxis(want, 0, -1)
    with rl(name).read_hwc(window=window, indexes=idx, out_dtype=dt) as tile:
        got = tile.numpy()
        if _nan_int(rio(name), window, idx, dt):
            src = rio(name).read(idx, window=window)
            nan = np.moveaxis(np.isnan(src if src.ndim == 3 else src[np.newaxis]), 0, -1)
            got, want = np.where(nan, 0, got), np.where(nan, 0, want)
        assert_same(np.ascontiguousarray(got), np.ascontiguousarray(want))
