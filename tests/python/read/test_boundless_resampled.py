"""Boundless resampled reads equal rasterio's, byte for byte: rio-tiler's calls
(boundless=True with out_shape and resampling whenever a tile crosses the raster
edge) and rasterio.stack.stack.

rasterio reads a boundless window through a VRT of the dataset whose grid is the
window's (rasterio.vrt._boundless_vrt_doc); the C library builds the same VRT
with the same numbers (lib/read/gdal_reader.c), so every case here must be
bit-identical, masks and masked=True included.  Windows cross each edge and
corner, fractional and whole, with the size going down and up.

GDAL: the C library links Debian's 3.6, rasterio's wheel bundles 3.10.  Nearest
and bilinear of 8/16-bit and float32 bands are the same in both (see
test_resampled.py); cubic and average of these fixtures were measured identical
too (2,592 cases, all equal) and are checked here as well.
"""

import warnings

import numpy as np
import pytest
from rasterio.enums import Resampling
from rasterio.windows import Window

from conftest import assert_same

NAMES = [
    "u8_deflate_pred2_tile512_band_3b_1024x768.tif",                 # uint8, no mask
    "u16_deflate_pred2_tile256_pixel_3b_700x531.tif",                # uint16
    "f32_deflate_pred3_tile256_pixel_3b_700x531.tif",                # float32
    "u8_deflate_pred2_tile256_pixel_1b_700x531_nodata0.tif",         # nodata 0
    "f32_deflate_pred3_tile256_pixel_1b_700x531_nodata_nan.tif",     # nodata NaN
    "u8_deflate_pred2_tile256_pixel_4b_512x512_rgba.tif",            # alpha band
    "u16_deflate_pred2_tile256_pixel_1b_700x531_mask_external.tif",  # .msk sidecar
    "u8_deflate_pred2_tile256_pixel_3b_700x531_mask_internal.tif",   # internal mask
]

METHODS = [Resampling.nearest, Resampling.bilinear, Resampling.cubic, Resampling.average]
# cubic and average on two fixtures only: the matrix stays a few seconds.
FEW = {Resampling.cubic: NAMES[1:3], Resampling.average: NAMES[5:7]}


def windows(W, H):
    """Windows crossing each edge and corner, fractional and whole, one enclosing
    the raster and one wholly outside: name -> Window."""
    return {
        "left": Window(-17.25, H / 3, 60.5, 41.75),
        "right": Window(W - 30.5, 10.25, 64.5, 40),
        "top": Window(W / 4, -12, 48, 30),
        "bottom": Window(13.7, H - 9.2, 33.3, 21.9),
        "top-left": Window(-10.3, -20.6, 988.94, 544.29),   # rio-tiler's 988.94x544.29
        "top-right": Window(W - 100, -50, 256, 256),
        "bottom-left": Window(-5, H - 5, 10, 10),
        "bottom-right": Window(W - 100, H - 50, 256, 256),
        "enclosing": Window(-128, -128, 1024, 1024),          # rio-tiler's 1024 -> 256
        "outside": Window(W + 5, H + 5, 20, 20),
    }


def out_shapes(win, k):
    """Two of the output shapes (the window's own, smaller, larger, rio-tiler's
    256x256), a different pair for each window k."""
    h, w = int(round(win.height)), int(round(win.width))
    shapes = [("same", (h, w)), ("down", (max(1, h // 4), max(1, w // 3))),
              ("up", (h * 2 + 1, w + 7) if h < 100 else (h + 7, w + 5)), ("tile", (256, 256))]
    return dict(shapes[k % 4:k % 4 + 1] + shapes[(k + 1) % 4:(k + 1) % 4 + 1])


def rio_call(fn, a):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # NodataShadowWarning of the RGBA fixture
        return fn(a)


def masks_as_uint8(m):
    """rasterio 1.4 returns a bool array from a boundless read_masks() of a dataset
    without masks (its docs say uint8); rasterloader returns uint8 0/255 (as
    test_boundless.py's test_boundless_read_masks)."""
    return m.astype(np.uint8) * np.uint8(255) if m.dtype == bool else m


CALLS = {
    "read": lambda win, shp, m: lambda d: d.read(window=win, boundless=True, out_shape=shp,
                                                 resampling=m),
    "fill": lambda win, shp, m: lambda d: d.read(1, window=win, boundless=True, out_shape=shp,
                                                 resampling=m, fill_value=7),
    "masked": lambda win, shp, m: lambda d: d.read(window=win, boundless=True, out_shape=shp,
                                                   resampling=m, masked=True),
    "masked-fill": lambda win, shp, m: lambda d: d.read(window=win, boundless=True,
                                                        out_shape=shp, resampling=m,
                                                        masked=True, fill_value=3),
    "out_dtype": lambda win, shp, m: lambda d: d.read(window=win, boundless=True, out_shape=shp,
                                                      resampling=m, out_dtype="float64"),
    "read_masks": lambda win, shp, m: lambda d: masks_as_uint8(
        d.read_masks(window=win, boundless=True, out_shape=shp, resampling=m)),
    "dataset_mask": lambda win, shp, m: lambda d: d.dataset_mask(window=win, boundless=True,
                                                                 out_shape=shp, resampling=m),
}


@pytest.mark.parametrize("name,method", [(n, m) for m in METHODS for n in FEW.get(m, NAMES)],
                         ids=lambda v: getattr(v, "name", v))
def test_boundless_resampled_equals_rasterio(rio, rl, name, method):
    a, b = rio(name), rl(name)
    for k, (wname, win) in enumerate(windows(a.width, a.height).items()):
        for sname, shp in out_shapes(win, k).items():
            for cname, call in CALLS.items():
                fn = call(win, shp, method)
                want, got = rio_call(fn, a), fn(b)
                try:
                    assert_same(got, want)
                except AssertionError as e:
                    raise AssertionError(f"{cname} {wname} {win} -> {sname} {shp}: {e}") from None


@pytest.mark.parametrize("window", [Window(-0.5, -0.5, 20.5, 20.5), Window(690.5, 520.25, 3, 3)])
def test_boundless_fractional_window_same_size(rio, rl, window):
    """A boundless window with fractional lengths and no out_shape (a resampled read
    of the window's rounded size)."""
    name = NAMES[1]
    for m in (Resampling.nearest, Resampling.bilinear):
        assert_same(rl(name).read(window=window, boundless=True, resampling=m),
                    rio_call(lambda d: d.read(window=window, boundless=True, resampling=m),
                             rio(name)))


def test_rasterio_stack_over_rasterloader_datasets(rl, rio, tmp_path):
    """rasterio.stack.stack reads each dataset boundless with out_shape and
    resampling (as rasterio.merge); over rasterloader datasets it must give
    rasterio's array and transform."""
    from rasterio.stack import stack
    names = ["u16_deflate_pred2_tile256_pixel_3b_700x531.tif",
             "u16_deflate_pred2_tile256_pixel_3b_700x531_be.tif"]
    l, b, r, t = rio(names[0]).bounds
    dx, dy = (r - l) / 7, (t - b) / 5
    bounds = (l - dx, b + dy, r + dx / 3, t + dy / 2)      # crosses every edge
    for res in (None, abs(rio(names[0]).res[0]) * 2.37):
        want = stack([rio(n) for n in names], bounds=bounds, res=res,
                     resampling=Resampling.bilinear)
        got = stack([rl(n) for n in names], bounds=bounds, res=res,
                    resampling=Resampling.bilinear)
        assert_same(got[0], want[0])
        assert got[1] == want[1]


@pytest.mark.parametrize("name", [NAMES[1], NAMES[3]])
def test_read_hwc_boundless_resampled_equals_read(rl, name, pool):
    """read_hwc() makes the same call into HWC: pooled tile and out= alike (the
    fill is read()'s: the nodata, else none)."""
    ds = rl(name)
    for win in (Window(-10.3, -20.6, 98, 54), Window(ds.width - 50, ds.height - 30, 100, 100)):
        want = ds.read(window=win, boundless=True, out_shape=(33, 44),
                       resampling=Resampling.bilinear).transpose(1, 2, 0)
        tile = ds.read_hwc(window=win, boundless=True, out_shape=(33, 44),
                           resampling=Resampling.bilinear, pool=pool)
        assert np.array_equal(np.from_dlpack(tile).reshape(want.shape), want)
        out = np.empty(want.shape, want.dtype)
        ds.read_hwc(window=win, boundless=True, out_shape=(33, 44), resampling=Resampling.bilinear,
                    out=out)
        assert np.array_equal(out, want)
