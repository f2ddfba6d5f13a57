"""read_masks(), dataset_mask() and masked=True equal rasterio's, fixture by fixture."""

import warnings

import numpy as np
import pytest
from rasterio.windows import Window

from conftest import GOOD, assert_same

NAMES = [e["name"] for e in GOOD if e["compress"] != "jpeg"]


def mid(ds):
    return Window(ds.width // 3, ds.height // 3, max(1, ds.width // 3), max(1, ds.height // 3))


CALLS = {
    "read_masks": lambda d: d.read_masks(),
    "read_masks-1": lambda d: d.read_masks(1),
    "read_masks-window": lambda d: d.read_masks(window=mid(d)),
    "read_masks-reversed": lambda d: d.read_masks(list(range(d.count, 0, -1)), window=mid(d)),
    "dataset_mask": lambda d: d.dataset_mask(),
    "dataset_mask-window": lambda d: d.dataset_mask(window=mid(d)),
    "masked": lambda d: d.read(masked=True),
    "masked-1": lambda d: d.read(1, masked=True, window=mid(d)),
    "masked-f32": lambda d: d.read(masked=True, window=mid(d), out_dtype="float32"),
    "fill_value-not-boundless": lambda d: d.read(fill_value=7, window=mid(d)),
    "masked-fill_value": lambda d: d.read(masked=True, fill_value=5, window=mid(d)),
}


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("name", NAMES)
def test_masks_equal_rasterio(rio, rl, name, call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # rasterio's NodataShadowWarning
        want = CALLS[call](rio(name))
    assert_same(CALLS[call](rl(name)), want)


def test_masked_array_details(rio, rl):
    name = next(e["name"] for e in GOOD if e["nodata"] == -9999)
    got, want = rl(name).read(1, masked=True), rio(name).read(1, masked=True)
    assert isinstance(got, np.ma.MaskedArray) and got.fill_value == -9999
    assert got.mask.any() and np.array_equal(got.mask, want.mask)
    assert got.ndim == 2


def test_mask_out_must_be_uint8(rl):
    ds = rl(NAMES[0])
    with pytest.raises(ValueError, match="uint8"):
        ds.read_masks(1, out=np.empty(ds.shape, np.float32))


def test_read_masks_into_out(rio, rl):
    name = NAMES[0]
    ds = rl(name)
    out = np.zeros((ds.count,) + ds.shape, np.uint8)
    assert ds.read_masks(out=out) is out
    assert_same(out, rio(name).read_masks())
