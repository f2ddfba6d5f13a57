"""The read path's per-call work, counted (never timed).

A warm read costs a few us, so the Python around the C call matters (issue
22): read(), read_masks(), dataset_mask() and read_hwc() resolve their window
once (_windows.read_window), and the common windows (None, a Window of ints, a
slice tuple of ints) take a fast path that builds no Window objects.  These
tests count both, and prove the fast path gives exactly what the general path
gives for every window it takes (results, errors, and the box's int types,
which the general path's messages print), by running each read again with the
fast path switched off.  The rasterio comparisons of test_read.py,
test_boundless.py, test_masks.py, ... cover both paths against the oracle.
"""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from rasterio.windows import Window

from rasterloader import _windows
from conftest import assert_same

IMAGE = "u8_deflate_pred2_tile256_pixel_3b_700x531_mask_internal.tif"    # 3 bands, a mask
NODATA = "i16_zstd_pred2_tile256_pixel_1b_1000x777_nodata_m9999.tif"    # 1 band, nodata


def common_windows(h, w):
    """Windows the fast path takes: inside, across and outside the edges, empty."""
    return {
        "none": None,
        "inside": Window(5, 7, 30, 20),
        "across-lr": Window(w - 10, h - 5, 40, 40),
        "across-ul": Window(-3, -4, 10, 10),
        "outside": Window(w + 5, 0, 4, 4),
        "empty": Window(3, 3, 0, 0),
        "tuple": ((7, 27), (5, 35)),
        "lists": ([7, 27], [5, 35]),
        "slices": (slice(7, 27), slice(5, 35)),
        "negative": ((-20, -1), (-30, -2)),
        "tuple-across": ((h - 5, h + 10), (0, 4)),
    }


def general_windows(h, w):
    """Windows the fast path leaves to the general path (it must resolve them once too)."""
    return {
        "float": Window(5.0, 7.0, 30.0, 20.0),
        "frac-offsets": Window(5.4, 7.6, 30, 20),
        "numpy-ints": Window(np.int64(5), np.int64(7), np.int64(30), np.int64(20)),
        "open-slices": ((None, 20), (5, None)),
        "reversed": ((27, 7), (5, 35)),
        "float-tuple": ((7.0, 27.0), (5, 35)),
    }


def reads(ds, box):
    """(name, call(window, boundless)) of every read entry and variant; ``box`` is
    the window's (col, row, width, height), for the out= arrays."""
    _, _, w, h = box
    n = ds.count
    return {
        "read": lambda win, b: ds.read(window=win, boundless=b),
        "read-1": lambda win, b: ds.read(1, window=win, boundless=b),
        "read-f32": lambda win, b: ds.read(window=win, boundless=b, out_dtype="float32"),
        "read-masked": lambda win, b: ds.read(1, window=win, boundless=b, masked=True),
        "read-fill": lambda win, b: ds.read(window=win, boundless=b, fill_value=7),
        "read-out": lambda win, b: ds.read(window=win, boundless=b,
                                           out=np.zeros((n, h, w), ds.dtypes[0])),
        "read-out-2d": lambda win, b: ds.read(1, window=win, boundless=b,
                                              out=np.zeros((h, w), ds.dtypes[0])),
        "read_masks": lambda win, b: ds.read_masks(window=win, boundless=b),
        "read_masks-1": lambda win, b: ds.read_masks(1, window=win, boundless=b),
        "dataset_mask": lambda win, b: ds.dataset_mask(window=win, boundless=b),
        "read_hwc-out": lambda win, b: ds.read_hwc(window=win, boundless=b,
                                                   out=np.zeros((h, w, n), ds.dtypes[0])),
        "read_hwc-tile": lambda win, b: _tile_copy(ds.read_hwc(window=win, boundless=b)),
    }


def _tile_copy(tile):
    try:
        return tile.numpy().copy()
    finally:
        tile.release()


def outcome(call, win, boundless):
    """The result, or the exception's type and message (the same both ways too)."""
    try:
        return call(win, boundless)
    except Exception as e:          # noqa: BLE001 - compared, never swallowed
        return (type(e), str(e))


def assert_same_outcome(a, b):
    if isinstance(a, tuple) or isinstance(b, tuple):
        assert a == b
    else:
        assert_same(a, b)


class Counters:
    """Calls of the general resolver (_windows._float_box), of the fast path and
    of Window's constructor, while installed."""

    def __init__(self, monkeypatch, fast=True):
        self.general = self.fast = self.windows = 0
        float_box, whole_pixel_box, init = (_windows._float_box, _windows._whole_pixel_box,
                                            Window.__init__)

        def counted_float_box(*a):
            self.general += 1
            return float_box(*a)

        def counted_whole_pixel_box(*a):
            self.fast += 1
            return whole_pixel_box(*a) if fast else None

        def counted_init(w, *a, **k):
            self.windows += 1
            init(w, *a, **k)

        monkeypatch.setattr(_windows, "_float_box", counted_float_box)
        monkeypatch.setattr(_windows, "_whole_pixel_box", counted_whole_pixel_box)
        monkeypatch.setattr(Window, "__init__", counted_init)

    def reset(self):
        self.general = self.fast = self.windows = 0


def read_cases(windows_of):
    return [pytest.param(name, boundless, windows_of, id=f"{name[:20]}-b{int(boundless)}")
            for name in (IMAGE, NODATA) for boundless in (False, True)]


def box_of(ds, win, boundless):
    return _windows.read_window(win, ds.height, ds.width, boundless)[0]


@pytest.mark.parametrize("name,boundless,windows_of", read_cases(common_windows))
def test_common_windows_resolve_once_and_build_no_window(rl, monkeypatch, name, boundless,
                                                         windows_of):
    ds = rl(name)
    for wname, win in windows_of(ds.height, ds.width).items():
        for rname, call in reads(ds, box_of(ds, win, boundless)).items():
            where = f"{rname}(window={wname}, boundless={boundless})"
            with monkeypatch.context() as mp:
                c = Counters(mp)
                fast = outcome(call, win, boundless)
                assert (c.fast, c.general, c.windows) == (1, 0, 0), \
                    f"{where}: fast path {c.fast}x, general {c.general}x, {c.windows} Window(s)"
            with monkeypatch.context() as mp:
                c = Counters(mp, fast=False)
                general = outcome(call, win, boundless)
                assert c.general == 1, f"{where}: the general path resolved {c.general}x"
            assert_same_outcome(fast, general)


@pytest.mark.parametrize("name,boundless,windows_of", read_cases(general_windows))
def test_other_windows_resolve_once_on_the_general_path(rl, monkeypatch, name, boundless,
                                                        windows_of):
    ds = rl(name)
    for wname, win in windows_of(ds.height, ds.width).items():
        for rname, call in reads(ds, box_of(ds, win, boundless)).items():
            with monkeypatch.context() as mp:
                c = Counters(mp)
                outcome(call, win, boundless)
                assert (c.fast, c.general) == (1, 1), \
                    f"{rname}(window={wname}, boundless={boundless}): fast path {c.fast}x, " \
                    f"general {c.general}x"


def test_resampled_reads_resolve_once(rl, monkeypatch):
    """An out_shape of another size (GDAL resamples) needs the float window: still
    one resolution, on either path."""
    ds = rl(IMAGE)
    for win, general in ((Window(5, 7, 30, 20), 0), (Window(5.5, 7.25, 30.5, 20), 1)):
        for call in (lambda: ds.read(1, window=win, out_shape=(9, 11)),
                     lambda: ds.read(window=win, out_shape=(3, 9, 11), masked=True),
                     lambda: ds.read_masks(window=win, out_shape=(9, 11)),
                     lambda: ds.dataset_mask(window=win, out_shape=(9, 11))):
            with monkeypatch.context() as mp:
                c = Counters(mp)
                call()
                assert (c.fast, c.general) == (1, general), (win, c.fast, c.general)


def test_one_window_object_on_datasets_of_other_sizes(rio, rl):
    """Nothing derived from one dataset leaks into another's read: the same
    window objects cropped by each raster's own size, as rasterio does."""
    for win in (Window(650, 500, 400, 300), ((500, 800), (650, 1050))):
        for name in (IMAGE, NODATA, IMAGE):
            assert_same(rl(name).read(1, window=win), rio(name).read(1, window=win))
            assert_same(rl(name).dataset_mask(window=win), rio(name).dataset_mask(window=win))


ints = st.integers(-40, 140)


@settings(max_examples=400, deadline=None)
@given(col=ints, row=ints, w=st.integers(0, 150), h=st.integers(0, 150),
       height=st.integers(0, 100), width=st.integers(0, 100), boundless=st.booleans(),
       as_tuple=st.booleans(), reverse=st.booleans())
def test_fast_box_is_the_general_box(col, row, w, h, height, width, boundless, as_tuple, reverse):
    """The fast path takes every Window of ints and every slice tuple of ints
    but those whose stop falls before their start after the negative index wrap
    (the general path makes that length 0.0, a float), and gives the general
    path's box for them, value for value and type for type (all ints)."""
    if as_tuple:
        stops = (row - h, col - w) if reverse else (row + h, col + w)
        win = ((row, stops[0]), (col, stops[1]))
    else:
        win = Window(col, row, w, h)
    box, fbox = _windows.read_window(win, height, width, boundless)
    general = _windows._float_box(win, height, width, boundless)
    if fbox is not None:            # declined: read_window's box came from the general path
        (r0, r1), (c0, c1) = win
        wrap = (lambda v, n: v + n if v < 0 else v) if not boundless else (lambda v, n: v)
        assert fbox == general and (wrap(r1, height) < wrap(r0, height)
                                    or wrap(c1, width) < wrap(c0, width))
        return
    assert box == general and [type(v) for v in general] == [int] * 4, (box, general)
