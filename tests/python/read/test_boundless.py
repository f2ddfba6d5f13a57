"""Boundless reads equal rasterio's: fill (given, nodata, else 0), masks outside."""

import warnings

import numpy as np
import pytest
from rasterio.windows import Window

from conftest import GOOD, assert_same

NAMES = [e["name"] for e in GOOD]

CALLS = {
    "top-left": lambda d, W, H: d.read(window=Window(-5, -3, W // 2 + 5, 20), boundless=True),
    "fill": lambda d, W, H: d.read(window=Window(W - 10, H - 10, 30, 25), boundless=True,
                                   fill_value=3),
    "all-outside": lambda d, W, H: d.read(window=Window(W + 10, H + 10, 4, 4), boundless=True),
    "inside": lambda d, W, H: d.read(window=Window(0, 0, min(W, 5), min(H, 5)), boundless=True),
    "tuple-negative": lambda d, W, H: d.read(1, window=((-4, 6), (-2, 3)), boundless=True),
    "f32": lambda d, W, H: d.read(window=Window(-5, -3, W // 2 + 5, 20), boundless=True,
                                  out_dtype="float32"),
    "masked": lambda d, W, H: d.read(window=Window(-5, -3, W // 2 + 5, 20), boundless=True,
                                     masked=True),
    "masked-fill": lambda d, W, H: d.read(window=Window(W - 10, H - 10, 30, 25), boundless=True,
                                          masked=True, fill_value=3),
    "masked-fill0": lambda d, W, H: d.read(window=Window(W - 10, H - 10, 30, 25),
                                           boundless=True, masked=True, fill_value=0),
    "masked-fill-f32": lambda d, W, H: d.read(window=Window(W - 10, H - 10, 30, 25),
                                              boundless=True, masked=True, fill_value=3,
                                              out_dtype="float32"),
    "dataset_mask": lambda d, W, H: d.dataset_mask(window=Window(-5, -3, W // 2 + 5, 20),
                                                   boundless=True),
}


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("name", NAMES)
def test_boundless_equals_rasterio(rio, rl, name, call):
    a, b = rio(name), rl(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = CALLS[call](a, a.width, a.height)
    assert_same(CALLS[call](b, b.width, b.height), want)


@pytest.mark.parametrize("name", NAMES)
def test_boundless_read_masks(rio, rl, name):
    """Same masks as rasterio, except that rasterio 1.4 returns a *bool* array for a
    boundless read_masks() of a dataset without masks (a bug: its docs say uint8).
    rasterloader always returns uint8 0/255."""
    a, b = rio(name), rl(name)
    w = Window(-5, -3, a.width // 2 + 5, 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = a.read_masks(window=w, boundless=True)
    got = b.read_masks(window=w, boundless=True)
    assert got.dtype == np.uint8
    if want.dtype == bool:
        want = want.astype(np.uint8) * np.uint8(255)
    assert_same(got, want)


def test_window_outside_without_boundless_is_empty_like_rasterio(rio, rl):
    name = NAMES[0]
    w = Window(10_000, 10_000, 5, 5)
    assert_same(rl(name).read(window=w), rio(name).read(window=w))
