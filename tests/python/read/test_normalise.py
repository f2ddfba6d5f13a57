"""Normalisation: mean/std is ``(x - mean) / std`` computed in double in that order
and rounded once, so it equals NumPy's ``((x.astype(float64) - mean) /
std).astype(out_dtype)`` bit for bit (x == mean gives exactly 0), in read_hwc
and every loader; scale/offset stays ``x * scale + offset``.  Arguments of the
wrong length raise a ValueError naming the channel count and the file, at every
public entry, never a NumPy broadcast error.

The oracle's x is rasterio's read of the same window."""

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

import rasterloader
from rasterloader.torch import BatchDataset, WindowDataset
from conftest import fixture_path

FIXTURES = ["u16_deflate_pred2_tile256_pixel_3b_700x531.tif",
            "u8_deflate_pred2_tile256_pixel_3b_700x531_mask_internal.tif",
            "f32_deflate_pred3_tile256_pixel_3b_700x531.tif",
            "i16_zstd_pred2_tile256_band_3b_700x531.tif"]
WIN = Window(37, 41, 90, 70)
STD = [0.1, 3.0, 7.0]


def rio_hwc(name, window=WIN, **kw):
    with rasterio.open(fixture_path(name)) as r:
        return r.read(window=window, **kw).transpose(1, 2, 0)


def means_of_first_pixel(x):
    """The first pixel's values as the means: that pixel must come out 0."""
    return [float(v) for v in x[0, 0].astype(np.float64)]


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("out_dtype", ["float32", "float64", "float16"])
def test_read_hwc_mean_std_is_numpys_expression(name, out_dtype):
    x = rio_hwc(name)
    mean = means_of_first_pixel(x)
    with np.errstate(over="ignore"):       # float16 overflows to inf, as ours does
        want = ((x.astype(np.float64) - mean) / STD).astype(out_dtype)
    with rasterloader.open(fixture_path(name)) as ds:
        got = np.from_dlpack(ds.read_hwc(window=WIN, mean=mean, std=STD, out_dtype=out_dtype))
        out = np.empty(x.shape, out_dtype)
        ds.read_hwc(window=WIN, mean=mean, std=STD, out=out)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(out, want)
    assert (got[0, 0] == 0).all() and not np.signbit(got[0, 0]).any()


def test_scalar_mean_std_apply_to_every_band():
    name = FIXTURES[0]
    x = rio_hwc(name).astype(np.float64)
    with rasterloader.open(fixture_path(name)) as ds:
        got = np.from_dlpack(ds.read_hwc(window=WIN, mean=1000.0, std=3.0))
        only_std = np.from_dlpack(ds.read_hwc(window=WIN, std=[2.0, 3.0, 5.0]))
    np.testing.assert_array_equal(got, ((x - 1000.0) / 3.0).astype(np.float32))
    np.testing.assert_array_equal(only_std, (x / [2.0, 3.0, 5.0]).astype(np.float32))


def test_scale_offset_stays_affine():
    name = FIXTURES[0]
    x = rio_hwc(name).astype(np.float64)
    scale, offset = [1 / 3000.0, 1 / 7.0, 0.5], [-1.0, 0.25, 3.0]
    with rasterloader.open(fixture_path(name)) as ds:
        got = np.from_dlpack(ds.read_hwc(window=WIN, scale=scale, offset=offset, out_dtype="float64"))
    np.testing.assert_array_equal(got, x * scale + offset)


@pytest.mark.parametrize("resampling", [Resampling.nearest, Resampling.average])
def test_resampled_read_hwc_normalises_the_resampled_values(resampling):
    name = FIXTURES[0]
    # GDAL resamples into float64 for the normalised read, as rasterio with
    # out_dtype=float64; then (x - mean) / std as above.
    x = rio_hwc(name, out_shape=(3, 35, 45), resampling=resampling, out_dtype="float64")
    mean = means_of_first_pixel(x)
    with rasterloader.open(fixture_path(name)) as ds:
        got = np.from_dlpack(ds.read_hwc(window=WIN, mean=mean, std=STD, out_shape=(35, 45),
                                         resampling=resampling))
    np.testing.assert_array_equal(got, ((x - mean) / STD).astype(np.float32))


def test_loaders_normalise_as_numpy():
    name = FIXTURES[0]
    path = fixture_path(name)
    wins = [Window(0, 0, 64, 48), Window(300, 200, 64, 48), Window(636, 483, 64, 48)]
    samples = [(path, None, w) for w in wins]
    x = np.stack([rio_hwc(name, w) for w in wins]).astype(np.float64)
    mean = means_of_first_pixel(x[0])
    want = ((x - mean) / STD).astype(np.float32)
    with rasterloader.BatchLoader(samples, 3, mean=mean, std=STD, masks=False) as lo:
        batch = next(iter(lo))
        np.testing.assert_array_equal(np.from_dlpack(batch.image), want)
        batch.release()
    assert (want[0, 0, 0] == 0).all()
    wd = WindowDataset(samples, mean=mean, std=STD, masks=False, layout="hwc")
    np.testing.assert_array_equal(wd[[0, 1, 2]]["image"].numpy(), want)
    np.testing.assert_array_equal(wd[1]["image"].numpy(), want[1])
    bd = BatchDataset(samples, 3, mean=mean, std=STD, masks=False, layout="hwc")
    np.testing.assert_array_equal(next(iter(bd))["image"].numpy(), want)


# ---------------------------------------------------------------- wrong lengths

def _check_message(excinfo, name, n):
    msg = str(excinfo.value)
    assert f"has {n} channel(s)" in msg and name in msg, msg


@pytest.mark.parametrize("arg", ["mean", "std", "scale", "offset"])
def test_wrong_length_names_channels_and_file(arg):
    name = FIXTURES[0]
    path = fixture_path(name)
    bad = {arg: [1.0, 2.0]}
    samples = [(path, None, Window(0, 0, 32, 32))]
    with rasterloader.open(path) as ds:
        with pytest.raises(ValueError) as e:
            ds.read_hwc(window=WIN, **bad)
        _check_message(e, name, 3)
        with pytest.raises(ValueError) as e:
            ds.read_hwc(window=WIN, indexes=[3, 1], **{arg: [1.0, 2.0, 3.0]})
        _check_message(e, name, 2)
        with pytest.raises(ValueError) as e:
            ds.read_hwc(window=WIN, out=np.empty((70, 90, 3), np.float32), **bad)
        _check_message(e, name, 3)
    for make in (lambda: rasterloader.BatchLoader(samples, 1, **bad),
                 lambda: rasterloader.WindowReader(samples, **bad),
                 lambda: WindowDataset(samples, **bad),
                 lambda: BatchDataset(samples, 1, **bad)):
        with pytest.raises(ValueError) as e:
            make()
        _check_message(e, name, 3)


def test_zero_std_and_both_ways_are_refused():
    path = fixture_path(FIXTURES[0])
    with rasterloader.open(path) as ds:
        with pytest.raises(ValueError, match="std must be nonzero"):
            ds.read_hwc(window=WIN, std=[1.0, 0.0, 1.0])
        with pytest.raises(ValueError, match="not both"):
            ds.read_hwc(window=WIN, mean=1.0, scale=2.0)
    with pytest.raises(ValueError, match="std must be nonzero"):
        rasterloader.BatchLoader([(path, None, Window(0, 0, 8, 8))], 1, std=0.0)
