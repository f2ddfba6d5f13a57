"""read() is rasterio's read(): same shapes, dtypes and bytes for the same call.

The matrix: every non-malformed fixture x windows (full, 1x1 at both corners, an
edge window through partial blocks, a tuple window, fractional offsets) x band
selections (all, int, one-element list, reversed, repeated) x out_dtype.
"""

import numpy as np
import pytest
from rasterio.windows import Window

from conftest import GOOD, assert_same

OUT_DTYPES = [None, "float32", "uint8", "int16"]


def windows_for(e):
    h, w = e["height"], e["width"]
    ew, eh = min(300, w), min(37, h)
    cw, ch = max(1, min(w // 2, 200)), max(1, min(h // 2, 150))
    c0, r0 = (w - cw) // 3, (h - ch) // 3
    out = {
        "full": None,
        "1x1-ul": Window(0, 0, 1, 1),
        "1x1-lr": Window(w - 1, h - 1, 1, 1),
        "edge": Window(w - ew, h - eh, ew, eh),
        "tuple": ((r0, r0 + ch), (c0, c0 + cw)),
    }
    if w > 2 and h > 2:
        out["frac"] = Window(0.4, 0.6, max(1, min(cw, w - 1)), max(1, min(ch, h - 1)))
    return out


def band_choices(e):
    n = e["count"]
    out = {"all": None, "int": 1, "list1": [n], "reversed": list(range(n, 0, -1))}
    out["repeat"] = [1, 1]
    return out


def cases():
    for e in GOOD:
        for wname, win in windows_for(e).items():
            for bname, idx in band_choices(e).items():
                dts = OUT_DTYPES if wname != "full" else [None, "float32"]
                for dt in dts:
                    yield pytest.param(e["name"], win, idx, dt,
                                       id=f"{e['name']}-{wname}-{bname}-{dt}")


CASES = list(cases())


@pytest.mark.parametrize("name,window,indexes,out_dtype", CASES)
def test_read_equals_rasterio(rio, rl, name, window, indexes, out_dtype):
    want = rio(name).read(indexes=indexes, window=window, out_dtype=out_dtype)
    got = rl(name).read(indexes=indexes, window=window, out_dtype=out_dtype)
    if out_dtype is not None and np.dtype(out_dtype).kind in "iu":
        src = rio(name).read(indexes=indexes, window=window)
        if src.dtype.kind == "f" and np.isnan(src).any():
            # NaN -> integer (lib/common/dtype.c): 0 (float32 into int32 too: the GDAL both
            # run on is 3.7+), except from float32 into int16 (-32768, GDAL's SSE2 rule; its
            # scalar tail, a row's last width % 8 columns, gives 0, so GDAL itself answers
            # by column there).  Everything else is bit-identical (tests/python/read/
            # test_convert_gdal_rules.py covers the rules value by value).
            nan = np.isnan(src)
            rule = {"int16": -32768} if src.dtype == np.float32 else {}
            assert (got[nan] == rule.get(np.dtype(out_dtype).name, 0)).all()
            got, want = got.copy(), want.copy()
            got[nan] = want[nan] = 0
    assert_same(got, want)


@pytest.mark.parametrize("name", [e["name"] for e in GOOD])
def test_read_out_in_place(rio, rl, name):
    ds = rl(name)
    want = rio(name).read()
    out = np.full((ds.count, ds.height, ds.width), 7, dtype=want.dtype)
    got = ds.read(out=out)
    assert got is out
    assert_same(out, want)


def test_read_out_other_dtype(rio, rl):
    name = GOOD[0]["name"]
    want = rio(name).read(out=np.empty((rio(name).count,) + rio(name).shape, np.float64))
    got = rl(name).read(out=np.empty((rl(name).count,) + rl(name).shape, np.float64))
    assert_same(got, want)


def test_read_out_2d_for_int_index(rio, rl):
    name = GOOD[0]["name"]
    ds = rl(name)
    out = np.empty(ds.shape, ds.dtypes[0])
    got = ds.read(1, out=out)
    assert_same(got, rio(name).read(1))


def test_read_strided_out_is_written_in_place(rio, rl):
    """A CHW view into a bigger array (non-compact strides) is written directly."""
    name = GOOD[0]["name"]
    ds = rl(name)
    big = np.zeros((ds.count, 40, 60), ds.dtypes[0])
    view = big[:, 5:25, 10:40]
    ds.read(window=Window(3, 4, 30, 20), out=view)
    assert_same(view.copy(), rio(name).read(window=Window(3, 4, 30, 20)))
    assert not big[:, :5].any() and not big[:, 25:].any()


def test_full_window_via_tuple_with_none(rio, rl):
    name = GOOD[0]["name"]
    w = ((None, None), (None, None))
    assert_same(rl(name).read(window=w), rio(name).read(window=w))


def test_negative_tuple_window(rio, rl):
    name = GOOD[0]["name"]
    w = ((-5, None), (-7, -2))
    assert_same(rl(name).read(window=w), rio(name).read(window=w))


def test_window_partly_outside_is_cropped(rio, rl):
    name = GOOD[0]["name"]
    ds = rio(name)
    w = Window(ds.width - 10, ds.height - 10, 50, 50)
    assert_same(rl(name).read(window=w), ds.read(window=w))


def test_out_shape_equal_to_window_is_accepted(rio, rl):
    name = GOOD[0]["name"]
    w = Window(0, 0, 20, 10)
    assert_same(rl(name).read(1, window=w, out_shape=(10, 20)),
                rio(name).read(1, window=w, out_shape=(10, 20)))


def test_resampled_hwc_is_not_implemented(rl):
    ds = rl(GOOD[0]["name"])
    with pytest.raises(NotImplementedError, match="only read"):
        ds.read_hwc(window=Window(0, 0, 10.5, 10), out=np.empty((10, 10, ds.count), ds.dtypes[0]))
