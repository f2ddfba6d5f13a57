"""The mask rules C applies for a whole read (raster_read_masks_into) equal
rasterio's in the cases the other mask tests do not reach: a boundless masked
read whose out_dtype cannot hold the file's values (C compares the band's own
pixels, not the converted ones), a NaN fill, empty windows, a window wholly
outside the raster, and a resampled masked read."""

import warnings

import numpy as np
import pytest
from rasterio.windows import Window

from conftest import GOOD, assert_same

# every fixture with a nodata value, one per mask source, one without masks
NODATA = [e["name"] for e in GOOD if e["nodata"] is not None]
MASKED = [next(e["name"] for e in GOOD if e["mask"] == m)
          for m in ("alpha", "external_msk", "internal")]
PLAIN = [next(e["name"] for e in GOOD if e["mask"] == "none" and e["nodata"] is None
              and e["dtype"] == "float32")]
NAMES = NODATA + MASKED + PLAIN
FLOATS = [e["name"] for e in GOOD if e["name"] in NAMES and e["dtype"].startswith("float")]


def edge(d):
    return Window(d.width - 10, d.height - 10, 30, 25)


CALLS = {
    "narrowing-u8": lambda d: d.read(window=edge(d), boundless=True, masked=True,
                                     out_dtype="uint8"),
    "narrowing-u8-fill": lambda d: d.read(window=edge(d), boundless=True, masked=True,
                                          fill_value=3, out_dtype="uint8"),
    "narrowing-i8-fill0": lambda d: d.read(1, window=edge(d), boundless=True, masked=True,
                                           fill_value=0, out_dtype="int8"),
    "all-outside-masked": lambda d: d.read(window=Window(d.width + 5, 0, 4, 4), boundless=True,
                                           masked=True),
    "empty-masked": lambda d: d.read(masked=True, window=Window(0, 0, 0, 4)),
    "empty-boundless-masked": lambda d: d.read(masked=True, window=Window(-3, 0, 0, 4),
                                               boundless=True),
    "resampled-masked": lambda d: d.read(masked=True, out_shape=(d.count, 7, 9)),
    "resampled-read_masks": lambda d: d.read_masks(out_shape=(d.count, 7, 9)),
    "resampled-dataset_mask": lambda d: d.dataset_mask(out_shape=(7, 9)),
}


def same_as_rasterio(call, a, b):
    """call(b) equals call(a); when rasterio raises (numpy cannot make a masked
    array whose fill value is a nodata the out_dtype cannot hold), the same
    exception type."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            want = call(a)
        except Exception as e:            # the oracle's own failure
            with pytest.raises(type(e)):
                call(b)
            return
    assert_same(call(b), want)


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("name", NAMES)
def test_mask_rules_equal_rasterio(rio, rl, name, call):
    same_as_rasterio(CALLS[call], rio(name), rl(name))


@pytest.mark.parametrize("name", FLOATS)
def test_boundless_nan_fill_equals_rasterio(rio, rl, name):
    same_as_rasterio(lambda d: d.read(window=edge(d), boundless=True, masked=True,
                                      fill_value=np.nan), rio(name), rl(name))


@pytest.mark.parametrize("name", FLOATS)
def test_narrowing_read_compares_the_files_values(rio, rl, name):
    """A fill_value that a non-integer pixel rounds to in an integer out_dtype:
    that pixel is valid (rasterio compares the float it holds), though its
    converted value equals the fill."""
    a = rio(name)
    w = edge(a)
    inside = a.read(1, window=Window(w.col_off, w.row_off, 10, 10))
    frac = inside[np.isfinite(inside) & (inside != np.round(inside)) & (np.abs(inside) < 3e4)]
    if frac.size == 0:
        pytest.skip("no non-integer pixel in the window")
    p = float(frac[0])
    fill = float(np.floor(p + 0.5) if p >= 0 else np.ceil(p - 0.5))   # GDAL's rounding
    same_as_rasterio(lambda d: d.read(window=w, boundless=True, masked=True, fill_value=fill,
                                      out_dtype="int32"), a, rl(name))
