"""read(out_shape=..., resampling=...) and windows with fractional lengths equal
rasterio's, byte for byte: the same GDAL call (float window, buffer size,
resampling) through raster_read_resampled_into(), for either reader.

The matrix: a spread of fixtures (dtypes, tilings, interleaves, predictors, both
byte orders, nodata) x out shapes (decimation by 2 and by an odd factor,
upsampling, one pixel, stretched) x every resampling a read may use x band
selections, plus out_dtype conversions and out= arrays.

rasterloader runs on the GDAL rasterio loaded (one GDAL per process), so every
case, every dtype and kernel (gauss, rms, mode included), is bit-identical.
"""

import numpy as np
import pytest
from rasterio.enums import Resampling
from rasterio.windows import Window

import rasterloader
from conftest import GOOD, assert_same, fixture_path

NAMES = [
    "u8_deflate_pred2_tile512_band_3b_1024x768.tif",
    "u16_deflate_pred2_tile256_pixel_3b_700x531.tif",
    "i16_zstd_pred2_tile256_band_3b_700x531.tif",
    "f32_deflate_pred3_tile256_pixel_3b_700x531.tif",
    "f64_lzw_pred3_strip7_pixel_1b_700x531.tif",
    "u16_deflate_pred2_tile256_pixel_3b_700x531_be.tif",
    "i16_zstd_pred2_tile256_pixel_1b_1000x777_nodata_m9999.tif",
    "u32_none_tile256_pixel_1b_257x513.tif",
    "hfa_i16_1b_700x531.img",
]
NAMES = [n for n in NAMES if any(e["name"] == n for e in GOOD)]

READ_METHODS = [Resampling.nearest, Resampling.bilinear, Resampling.cubic,
                Resampling.cubic_spline, Resampling.lanczos, Resampling.average,
                Resampling.mode, Resampling.gauss, Resampling.rms]


def shapes(h, w):
    return {
        "half": (max(1, h // 2), max(1, w // 2)),
        "odd": (max(1, h // 7), max(1, w // 5)),
        "up": (h * 2, w + w // 3),
        "one": (1, 1),
        "stretch": (max(1, h // 3), w),
    }


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("method", READ_METHODS, ids=lambda m: m.name)
def test_out_shape_equals_rasterio(name, method, rio, rl):
    src, ds = rio(name), rl(name)
    win = Window(13, 9, min(120, src.width - 13), min(90, src.height - 9))
    for label, oh_ow in shapes(int(win.height), int(win.width)).items():
        for idx in (1, [src.count, 1]):
            n = 1 if isinstance(idx, int) else (src.count if idx is None else len(idx))
            shape = oh_ow if isinstance(idx, int) else (n,) + oh_ow
            want = src.read(idx, window=win, out_shape=shape, resampling=method)
            got = ds.read(idx, window=win, out_shape=shape, resampling=method)
            assert_same(got, want)


@pytest.mark.parametrize("name", NAMES[:4])
def test_whole_raster_decimated_and_fractional_windows(name, rio, rl):
    src, ds = rio(name), rl(name)
    for method in (Resampling.nearest, Resampling.average, Resampling.bilinear):
        shape = (src.count, src.height // 4, src.width // 4)
        assert_same(ds.read(out_shape=shape, resampling=method),
                    src.read(out_shape=shape, resampling=method))
        for win in (Window(10.5, 3.25, 40.5, 30.75), Window(0.4, 0.6, 33.3, 21.9),
                    Window(src.width - 50.5, src.height - 40.5, 50.5, 40.5)):
            assert_same(ds.read(window=win, resampling=method),
                        src.read(window=win, resampling=method))
            assert_same(ds.read(window=win, out_shape=(src.count, 17, 23), resampling=method),
                        src.read(window=win, out_shape=(src.count, 17, 23), resampling=method))


@pytest.mark.parametrize("out_dtype", ["uint8", "int16", "uint16", "int32", "float32", "float64"])
def test_out_dtype_converts_as_rasterio(out_dtype, rio, rl):
    name = "f32_deflate_pred3_tile256_pixel_3b_700x531.tif"
    src, ds = rio(name), rl(name)
    win = Window(100, 50, 300, 200)
    for method in (Resampling.nearest, Resampling.bilinear, Resampling.average):
        want = src.read(window=win, out_shape=(3, 77, 111), resampling=method, out_dtype=out_dtype)
        got = ds.read(window=win, out_shape=(3, 77, 111), resampling=method, out_dtype=out_dtype)
        assert_same(got, want)


def test_out_array_is_written_in_place(rio, rl):
    name = "u16_deflate_pred2_tile256_pixel_3b_700x531.tif"
    src, ds = rio(name), rl(name)
    win = Window(0, 0, 256, 256)
    out = np.full((3, 64, 100), 7, np.uint16)
    got = ds.read(window=win, out=out, resampling=Resampling.average)
    assert got is out
    assert_same(out, src.read(window=win, out=np.empty((3, 64, 100), np.uint16),
                              resampling=Resampling.average))
    out2 = np.zeros((64, 100), np.float32)
    assert ds.read(2, window=win, out=out2, resampling=Resampling.bilinear) is out2
    assert_same(out2, src.read(2, window=win, out=np.zeros((64, 100), np.float32),
                               resampling=Resampling.bilinear))


def test_native_and_gdal_readers_resample_the_same(rio):
    name = "u16_deflate_pred2_tile256_pixel_3b_700x531.tif"
    want = rio(name).read(out_shape=(3, 100, 133), resampling=Resampling.cubic)
    for reader in ("native", "gdal"):
        with rasterloader.open(fixture_path(name), reader=reader) as ds:
            assert_same(ds.read(out_shape=(3, 100, 133), resampling=Resampling.cubic), want)


MASK_NAMES = [n for n in [
    "u8_deflate_pred2_tile256_pixel_1b_700x531_nodata0.tif",
    "i16_zstd_pred2_tile256_pixel_1b_1000x777_nodata_m9999.tif",
    "f32_deflate_pred3_tile256_pixel_1b_700x531_nodata_nan.tif",
    "f32_lzw_pred1_strip16_pixel_3b_700x531_nodata_m3.4e38.tif",
    "u8_deflate_pred2_tile256_pixel_3b_700x531_mask_internal.tif",
    "u16_zstd_pred2_strip16_band_1b_1000x777_mask_internal.tif",
    "u16_deflate_pred2_tile256_pixel_1b_700x531_mask_external.tif",
    "u8_deflate_pred2_tile256_pixel_4b_512x512_rgba.tif",
    "u16_deflate_pred2_tile256_pixel_3b_700x531.tif",
] if any(e["name"] == n for e in GOOD)]


@pytest.mark.parametrize("name", MASK_NAMES)
@pytest.mark.parametrize("method", [Resampling.nearest, Resampling.average, Resampling.bilinear,
                                    Resampling.mode], ids=lambda m: m.name)
def test_resampled_masks_equal_rasterio(name, method, rio, rl):
    """read_masks / dataset_mask with an out_shape: every band mask rasterio's rules
    use, resampled by GDAL the same way (the one GDAL of the process)."""
    src, ds = rio(name), rl(name)
    win = Window(7, 5, min(300, src.width - 7), min(200, src.height - 5))
    for oh_ow in ((50, 75), (1, 1), (333, 321), (64, 300)):
        shape = (src.count,) + oh_ow
        assert_same(ds.read_masks(window=win, out_shape=shape, resampling=method),
                    src.read_masks(window=win, out_shape=shape, resampling=method))
        assert_same(ds.read_masks(1, window=win, out_shape=oh_ow, resampling=method),
                    src.read_masks(1, window=win, out_shape=oh_ow, resampling=method))
        assert_same(ds.dataset_mask(window=win, out_shape=oh_ow, resampling=method),
                    src.dataset_mask(window=win, out_shape=oh_ow, resampling=method))
    fw = Window(10.5, 3.25, 120.5, 60.75)
    assert_same(ds.dataset_mask(window=fw, resampling=method),
                src.dataset_mask(window=fw, resampling=method))
    out = np.zeros((40, 40), np.uint8)
    assert ds.dataset_mask(out=out, resampling=method) is out
    assert_same(out, src.dataset_mask(out=np.zeros((40, 40), np.uint8), resampling=method))


@pytest.mark.parametrize("name", MASK_NAMES)
def test_masked_resampled_reads_equal_rasterio(name, rio, rl):
    """read(masked=True / fill_value=, out_shape=...): the data and each band's mask
    resampled the same way, as rasterio's masked arrays."""
    src, ds = rio(name), rl(name)
    win = Window(7, 5, min(300, src.width - 7), min(200, src.height - 5))
    for method in (Resampling.nearest, Resampling.average):
        shape = (src.count, 61, 97)
        if src.dtypes[0] not in ("float64", "int32", "uint32") or method == Resampling.nearest:
            assert_same(ds.read(window=win, out_shape=shape, masked=True, resampling=method),
                        src.read(window=win, out_shape=shape, masked=True, resampling=method))
            assert_same(ds.read(1, window=win, out_shape=(61, 97), masked=True, resampling=method),
                        src.read(1, window=win, out_shape=(61, 97), masked=True, resampling=method))
            assert_same(ds.read(window=win, out_shape=shape, fill_value=7, resampling=method),
                        src.read(window=win, out_shape=shape, fill_value=7, resampling=method))


# Issue 25: a window with fractional offsets and whole lengths, read at its own
# size with another method than nearest, is a resampled read in rasterio (GDAL
# interpolates at the sub-pixel position); it used to be read at the rounded
# window (829 of 2,500 values off for Window(1000.3, 1000.6, 50, 50) bilinear).
SUBPIXEL_WINDOWS = [Window(100.3, 200.6, 50, 50), Window(0.5, 7.25, 64, 33),
                    Window(11, 40.7, 120, 90)]


@pytest.mark.parametrize("name", NAMES[:4])
@pytest.mark.parametrize("method", [Resampling.nearest, Resampling.bilinear, Resampling.cubic,
                                    Resampling.average], ids=lambda m: m.name)
def test_fractional_offsets_at_the_same_size_equal_rasterio(name, method, rio, rl):
    src, ds = rio(name), rl(name)
    for win in SUBPIXEL_WINDOWS:
        want = src.read(window=win, resampling=method)
        assert_same(ds.read(window=win, resampling=method), want)
        assert_same(ds.read(1, window=win, resampling=method),
                    src.read(1, window=win, resampling=method))
        assert_same(ds.read(window=win, out_shape=want.shape, resampling=method), want)
        # read_hwc makes the same call into HWC (it once rounded the offsets too).
        got = ds.read_hwc(window=win, resampling=method, out=np.empty(
            want.shape[1:] + want.shape[:1], want.dtype))
        assert_same(np.moveaxis(got, -1, 0), want)


@pytest.mark.parametrize("name", [n for n in MASK_NAMES if "nodata" in n or "mask" in n][:4])
@pytest.mark.parametrize("method", [Resampling.bilinear, Resampling.average],
                         ids=lambda m: m.name)
def test_fractional_offsets_masks_at_the_same_size_equal_rasterio(name, method, rio, rl):
    src, ds = rio(name), rl(name)
    for win in SUBPIXEL_WINDOWS:
        assert_same(ds.read_masks(window=win, resampling=method),
                    src.read_masks(window=win, resampling=method))
        assert_same(ds.dataset_mask(window=win, resampling=method),
                    src.dataset_mask(window=win, resampling=method))
        if src.dtypes[0] not in ("float64", "int32", "uint32"):
            assert_same(ds.read(window=win, masked=True, resampling=method),
                        src.read(window=win, masked=True, resampling=method))


@pytest.mark.parametrize("method", [Resampling.nearest, Resampling.bilinear], ids=lambda m: m.name)
def test_fractional_offsets_boundless_equal_rasterio(rio, rl, method):
    """A boundless window with fractional offsets is read through rasterio's VRT
    over the window, nearest too (the VRT's grid is offset by the fraction, so
    rounding the offsets would pick other pixels at half of them): rasterio's
    pixels and masks, never the rounded window's."""
    for name in (NAMES[0], "u8_deflate_pred2_tile256_pixel_1b_700x531_nodata0.tif"):
        a, b = rio(name), rl(name)
        for col in (-4.5, -4.4, -4.6, a.width - 7.5):
            for row in (10.25, 10.5, -2.5, a.height - 12.75):
                for kw in ({}, {"masked": True}):
                    w = Window(col, row, 20, 20)
                    assert_same(b.read(window=w, boundless=True, resampling=method, **kw),
                                a.read(window=w, boundless=True, resampling=method, **kw))
