"""out_shape= and resampling= in read_hwc and every loader: the same pixels as
rasterio's ``read(out_shape=..., resampling=...)`` (image), ``dataset_mask(
out_shape=..., resampling=...)`` (validity) and, for labels, ``read(1,
out_shape=..., resampling=nearest)`` whatever the image's method."""

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

import rasterloader
from rasterloader.torch import BatchDataset, WindowDataset
from conftest import fixture_path

# 8/16-bit and float32 bands: bit-identical to rasterio's GDAL for these methods
# (README, "Resampled reads").
FIXTURES = ["u16_deflate_pred2_tile256_pixel_3b_700x531.tif",
            "u8_deflate_pred2_tile256_pixel_3b_700x531_mask_internal.tif",
            "f32_deflate_pred3_tile256_pixel_3b_700x531.tif",
            "u16_zstd_pred1_strip16_band_3b_700x531.tif"]
METHODS = [Resampling.nearest, Resampling.bilinear, Resampling.cubic, Resampling.average]
WIN = Window(101, 57, 128, 96)


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("resampling", METHODS)
def test_read_hwc_equals_rasterio(name, resampling):
    path = fixture_path(name)
    with rasterio.open(path) as r:
        want = r.read(window=WIN, out_shape=(3, 40, 70), resampling=resampling).transpose(1, 2, 0)
        up = r.read(window=WIN, out_shape=(3, 150, 200), resampling=resampling).transpose(1, 2, 0)
    with rasterloader.open(path) as ds:
        got = np.from_dlpack(ds.read_hwc(window=WIN, out_shape=(40, 70), resampling=resampling))
        out = np.empty((150, 200, 3), want.dtype)
        ds.read_hwc(window=WIN, out=out, out_shape=(150, 200), resampling=resampling)
        with pytest.raises(ValueError, match="needs"):     # never resampled behind your back
            ds.read_hwc(window=WIN, out=out)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(out, up)


def test_read_hwc_resampled_boundless_equals_read():
    """read_hwc() reads a boundless resampled window as read() does (rasterio's VRT)."""
    with rasterloader.open(fixture_path(FIXTURES[0])) as ds:
        want = ds.read(window=Window(-5, 0, 64, 64), boundless=True, out_shape=(32, 32))
        got = np.from_dlpack(ds.read_hwc(window=Window(-5, 0, 64, 64), boundless=True,
                                         out_shape=(32, 32)))
        np.testing.assert_array_equal(got.reshape(32, 32, -1), want.transpose(1, 2, 0))


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """(image, label) pairs: each fixture with a random class raster on its grid."""
    d = tmp_path_factory.mktemp("resample_labels")
    rng = np.random.default_rng(5)
    pairs = []
    for name in FIXTURES[:2]:
        path = fixture_path(name)
        with rasterio.open(path) as r:
            prof = dict(driver="GTiff", width=r.width, height=r.height, count=1, dtype="uint8",
                        crs=r.crs, transform=r.transform, tiled=True, compress="deflate")
        label = str(d / f"label_{name}")
        with rasterio.open(label, "w", **prof) as w:
            w.write(rng.integers(0, 7, (1, prof["height"], prof["width"]), dtype=np.uint8))
        pairs.append((path, label))
    return pairs


def expected(sample, out_hw, resampling, out_dtype):
    image, label, win = sample
    with rasterio.open(image) as r:
        # GDAL resamples straight into the output dtype, for rasterio and us.
        img = r.read(window=win, out_shape=(r.count,) + out_hw, resampling=resampling,
                     out_dtype=out_dtype)
        valid = r.dataset_mask(window=win, out_shape=out_hw, resampling=resampling)
    with rasterio.open(label) as lab:
        lbl = lab.read(1, window=win, out_shape=out_hw, resampling=Resampling.nearest)
    return img.transpose(1, 2, 0), lbl, valid


@pytest.mark.parametrize("resampling", [Resampling.bilinear, Resampling.average])
def test_loaders_resample_image_validity_and_label(labelled, resampling):
    wins = [Window(0, 0, 96, 96), Window(333, 211, 96, 96), Window(604, 435, 96, 96)]
    samples = [(img, lab, w) for img, lab in labelled for w in wins]
    out_hw = (40, 56)
    want = [expected(s, out_hw, resampling, "float32") for s in samples]
    kw = dict(out_shape=out_hw, resampling=resampling, out_dtype="float32", with_validity=True)
    n = len(samples)
    with rasterloader.BatchLoader(samples, n, **kw) as lo:
        assert (lo.height, lo.width) == out_hw
        batch = next(iter(lo))
        img, lbl, val = (np.from_dlpack(t) for t in (batch.image, batch.mask, batch.validity))
        batch.release()
    for i, (wi, wl, wv) in enumerate(want):
        np.testing.assert_array_equal(img[i], wi, err_msg=f"image {i}")
        np.testing.assert_array_equal(lbl[i], wl, err_msg=f"label {i}")
        np.testing.assert_array_equal(val[i], wv, err_msg=f"validity {i}")
    # The torch datasets read the same way (one batch, and one sample).
    bd = next(iter(BatchDataset(samples, n, layout="hwc", **kw)))
    np.testing.assert_array_equal(bd["image"].numpy(), img)
    np.testing.assert_array_equal(bd["mask"].numpy(), lbl)
    np.testing.assert_array_equal(bd["validity"].numpy(), val)
    wd = WindowDataset(samples, **kw)
    one = wd[4]
    np.testing.assert_array_equal(one["image"].permute(1, 2, 0).numpy(), img[4])
    np.testing.assert_array_equal(one["mask"].numpy(), lbl[4])
    np.testing.assert_array_equal(one["validity"].numpy(), val[4])


def test_out_shape_forms_and_boundless(labelled):
    img, lab = labelled[0]
    samples = [(img, lab, Window(10, 10, 64, 64))]
    assert rasterloader.WindowReader(samples, out_shape=(3, 32, 48)).height == 32
    with pytest.raises(ValueError, match="out_shape"):
        rasterloader.WindowReader(samples, out_shape=(4, 32, 48))
    with pytest.raises(NotImplementedError, match="boundless"):
        rasterloader.BatchLoader(samples, 1, out_shape=(32, 32), boundless=True)
    # The window's own size is no resampling: boundless stays allowed.
    rasterloader.BatchLoader(samples, 1, out_shape=(64, 64), boundless=True)
