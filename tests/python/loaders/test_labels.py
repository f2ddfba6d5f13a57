"""Labels in the loaders: label_fill (an ignore value outside the label raster,
in a wider label_dtype when it must be), with_validity (the image's validity
mask beside the label), and the grid check (a label on another grid is a
ValueError naming both files and grids, unless label_resample reads it nearest
onto the image grid; another CRS always fails).

Oracles: rasterio's reads of the same files and windows (boundless label
reads with fill_value, dataset_mask, the label read over the image window's
bounds with out_shape and nearest), and for the partly covered label the
nearest rule written out in NumPy."""

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.windows import Window, from_bounds

import rasterloader
from rasterloader.torch import BatchDataset, WindowDataset

X0, Y0 = 399960.0, 5800020.0        # UTM 33N origin of the image, 10 m pixels


def _write(path, arr, transform, crs="EPSG:32633", nodata=None):
    prof = dict(driver="GTiff", width=arr.shape[-1], height=arr.shape[-2], count=arr.shape[0],
                dtype=arr.dtype, crs=crs, transform=transform, tiled=True, blockxsize=256,
                blockysize=256, compress="deflate", nodata=nodata)
    with rasterio.open(path, "w", **prof) as w:
        w.write(arr)
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("labels")
    rng = np.random.default_rng(11)
    img = rng.integers(1, 4000, (2, 2048, 2048), dtype=np.uint16)
    img[:, 100:300, 150:400] = 0                      # nodata: the validity mask has holes
    f = {"image": _write(d / "image_2048.tif", img, from_origin(X0, Y0, 10, 10), nodata=0)}
    classes = rng.integers(0, 6, (1, 2048, 2048), dtype=np.uint8)
    f["label"] = _write(d / "label_2048.tif", classes, from_origin(X0, Y0, 10, 10))
    coarse = rng.integers(0, 6, (1, 1024, 1024), dtype=np.uint8)
    f["label_1024"] = _write(d / "label_1024_20m.tif", coarse, from_origin(X0, Y0, 20, 20))
    f["label_utm18"] = _write(d / "label_2048_utm18.tif", classes, from_origin(X0, Y0, 10, 10),
                              crs="EPSG:32618")
    # 20 m, covering only x in [X0 + 5000, X0 + 15000), y in (Y0 - 12000, Y0 - 2000].
    part = rng.integers(0, 6, (1, 500, 500), dtype=np.uint8)
    f["label_part"] = _write(d / "label_part_20m.tif", part,
                             from_origin(X0 + 5000, Y0 - 2000, 20, 20))
    f["arrays"] = {"label": classes[0], "part": part[0]}
    return f


def rio_label(path, win, **kw):
    with rasterio.open(path) as r:
        return r.read(1, window=win, **kw)


def rio_validity(path, win):
    with rasterio.open(path) as r:
        return r.dataset_mask(window=win, boundless=True)


EDGE_WINDOWS = [Window(-50, -40, 128, 128), Window(2000, 1990, 128, 128),
                Window(700, 900, 128, 128), Window(-200, 1500, 128, 128)]


# ---------------------------------------------------------------- label_fill

def test_label_fill_and_validity_through_every_loader(files):
    samples = [(files["image"], files["label"], w) for w in EDGE_WINDOWS]
    want_lbl = np.stack([rio_label(files["label"], w, boundless=True, fill_value=255)
                         for w in EDGE_WINDOWS])
    want_val = np.stack([rio_validity(files["image"], w) for w in EDGE_WINDOWS])
    assert (want_lbl == 255).any() and (want_val == 0).any() and (want_val == 255).any()
    kw = dict(boundless=True, label_fill=255, with_validity=True)
    n = len(samples)
    with rasterloader.BatchLoader(samples, n, **kw) as lo:
        batch = next(iter(lo))
        np.testing.assert_array_equal(np.from_dlpack(batch.mask), want_lbl)
        np.testing.assert_array_equal(np.from_dlpack(batch.validity), want_val)
        assert batch.mask.dtype == "uint8" and batch.validity.dtype == "uint8"
        batch.release()
    r = rasterloader.WindowReader(samples, **kw)
    out = np.empty((n, 128, 128, 2), np.float32)
    m, v = np.empty((n, 128, 128), np.uint8), np.empty((n, 128, 128), np.uint8)
    r.read_into(range(n), out, m, validity_out=v)
    np.testing.assert_array_equal(m, want_lbl)
    np.testing.assert_array_equal(v, want_val)
    r.close()
    bd = next(iter(BatchDataset(samples, n, **kw)))
    np.testing.assert_array_equal(bd["mask"].numpy(), want_lbl)
    np.testing.assert_array_equal(bd["validity"].numpy(), want_val)
    wd = WindowDataset(samples, **kw)
    np.testing.assert_array_equal(wd[1]["mask"].numpy(), want_lbl[1])
    np.testing.assert_array_equal(wd[1]["validity"].numpy(), want_val[1])
    np.testing.assert_array_equal(wd[[0, 3]]["validity"].numpy(), want_val[[0, 3]])
    image, mask, validity = WindowDataset(samples, return_type="tuple", **kw)[2]
    np.testing.assert_array_equal(validity.numpy(), want_val[2])


def test_label_fill_in_a_wider_dtype(files):
    samples = [(files["image"], files["label"], w) for w in EDGE_WINDOWS]
    inside = np.stack([rio_label(files["label"], w, boundless=True, fill_value=0)
                       for w in EDGE_WINDOWS]).astype(np.int16)
    outside = rio_label(files["label"], EDGE_WINDOWS[0], boundless=True, fill_value=255) == 255
    with rasterloader.BatchLoader(samples, 4, boundless=True, label_fill=-1,
                                  label_dtype="int16") as lo:
        batch = next(iter(lo))
        got = np.from_dlpack(batch.mask)
        batch.release()
    assert got.dtype == np.int16
    # Classes come through; outside the raster (rows/cols < 0 or >= 2048) is -1.
    for i, w in enumerate(EDGE_WINDOWS):
        rows = np.arange(w.row_off, w.row_off + 128)[:, None]
        cols = np.arange(w.col_off, w.col_off + 128)[None, :]
        out = (rows < 0) | (rows >= 2048) | (cols < 0) | (cols >= 2048)
        np.testing.assert_array_equal(got[i], np.where(out, -1, inside[i]))
    assert (got[0][outside] == -1).all()
    t = next(iter(BatchDataset(samples, 4, boundless=True, label_fill=-1, label_dtype="int16")))
    assert t["mask"].dtype.is_floating_point is False and str(t["mask"].dtype) == "torch.int16"
    np.testing.assert_array_equal(t["mask"].numpy(), got)


def test_label_fill_that_the_dtype_cannot_hold(files):
    samples = [(files["image"], files["label"], EDGE_WINDOWS[0])]
    with pytest.raises(ValueError, match=r"label_fill -1 is not a uint8 value.*int16"):
        rasterloader.BatchLoader(samples, 1, boundless=True, label_fill=-1)
    with pytest.raises(ValueError, match="label_fill 300"):
        WindowDataset(samples, boundless=True, label_fill=300)


def test_samples_without_label_keep_validity_as_mask(files):
    samples = [(files["image"], None, w) for w in EDGE_WINDOWS[:2]]
    want = np.stack([rio_validity(files["image"], w) for w in EDGE_WINDOWS[:2]])
    with rasterloader.BatchLoader(samples, 2, boundless=True, label_fill=255,
                                  with_validity=True) as lo:
        batch = next(iter(lo))
        np.testing.assert_array_equal(np.from_dlpack(batch.mask), want)
        np.testing.assert_array_equal(np.from_dlpack(batch.validity), want)
        batch.release()


# ---------------------------------------------------------------- grids

def _grid_error(excinfo, label_name, label_grid):
    msg = str(excinfo.value)
    assert label_name in msg and "image_2048.tif" in msg, msg
    assert "2048x2048" in msg and label_grid in msg, msg
    return msg


def test_label_at_another_resolution_is_refused_at_construction(files):
    win = Window(0, 0, 256, 256)
    samples = [(files["image"], files["label_1024"], win)]
    for make in (lambda: rasterloader.BatchLoader(samples, 1),
                 lambda: rasterloader.WindowReader(samples),
                 lambda: WindowDataset(samples),
                 lambda: BatchDataset(samples, 1)):
        with pytest.raises(ValueError) as e:
            make()
        msg = _grid_error(e, "label_1024_20m.tif", "1024x1024")
        assert "transform (20, 0, 399960, 0, -20, 5800020)" in msg, msg
        assert "transform (10, 0, 399960, 0, -10, 5800020)" in msg, msg
        assert "label_resample" in msg, msg
    # A sampler's sources are all checked when the loader is made.
    sampler = rasterloader.GridWindows([(files["image"], files["label"]),
                                        (files["image"], files["label_1024"])], 512)
    with pytest.raises(ValueError) as e:
        rasterloader.BatchLoader(sampler, 4)
    _grid_error(e, "label_1024_20m.tif", "1024x1024")
    # Without masks the label is not read, so it does not matter.
    rasterloader.BatchLoader(samples, 1, masks=False).close()


def test_later_pair_of_a_list_fails_at_its_first_read(files):
    win = Window(0, 0, 64, 64)
    samples = [(files["image"], files["label"], win), (files["image"], files["label_1024"], win)]
    with rasterloader.BatchLoader(samples, 2) as lo:
        with pytest.raises(ValueError) as e:
            next(iter(lo))
    assert e.value.index == 1
    _grid_error(e, "label_1024_20m.tif", "1024x1024")


def test_label_in_another_crs_is_refused_even_with_label_resample(files):
    samples = [(files["image"], files["label_utm18"], Window(0, 0, 64, 64))]
    for resample in (False, True):
        with pytest.raises(ValueError) as e:
            rasterloader.BatchLoader(samples, 1, label_resample=resample)
        msg = _grid_error(e, "label_2048_utm18.tif", "EPSG:32618")
        assert "EPSG:32633" in msg and "CRSs differ" in msg, msg


@pytest.mark.parametrize("out_shape", [None, (64, 64)])
def test_label_resample_reads_the_image_windows_bounds_nearest(files, out_shape):
    wins = [Window(0, 0, 128, 128), Window(333, 517, 128, 128), Window(1901, 1877, 128, 128)]
    samples = [(files["image"], files["label_1024"], w) for w in wins]
    hw = (128, 128) if out_shape is None else out_shape
    with rasterio.open(files["image"]) as im, rasterio.open(files["label_1024"]) as lab:
        want = np.stack([lab.read(1, window=from_bounds(*im.window_bounds(w), lab.transform),
                                  out_shape=hw, resampling=Resampling.nearest) for w in wins])
    with rasterloader.BatchLoader(samples, 3, label_resample=True, out_shape=out_shape) as lo:
        batch = next(iter(lo))
        got = np.from_dlpack(batch.mask)
        batch.release()
    np.testing.assert_array_equal(got, want)
    bd = next(iter(BatchDataset(samples, 3, label_resample=True, out_shape=out_shape)))
    np.testing.assert_array_equal(bd["mask"].numpy(), want)


def test_label_resample_fills_where_the_label_does_not_reach(files):
    """A 20 m label covering part of the image: each output pixel takes the label
    pixel under its centre, label_fill where that centre is off the label."""
    wins = [Window(450, 150, 128, 128), Window(1400, 1100, 128, 128), Window(0, 0, 128, 128)]
    samples = [(files["image"], files["label_part"], w) for w in wins]
    part = files["arrays"]["part"]
    with rasterloader.BatchLoader(samples, 3, label_resample=True, label_fill=255) as lo:
        batch = next(iter(lo))
        got = np.from_dlpack(batch.mask)
        batch.release()
    for i, w in enumerate(wins):
        # Centres in the label's pixels: image pixel c has x = X0 + 10 (c + 0.5).
        lc = np.floor((10 * (np.arange(128) + w.col_off + 0.5) - 5000) / 20).astype(int)
        lr = np.floor((10 * (np.arange(128) + w.row_off + 0.5) - 2000) / 20).astype(int)
        inside = ((lr >= 0) & (lr < 500))[:, None] & ((lc >= 0) & (lc < 500))[None, :]
        want = np.full((128, 128), 255, np.uint8)
        want[inside] = part[np.clip(lr, 0, 499)[:, None], np.clip(lc, 0, 499)[None, :]][inside]
        np.testing.assert_array_equal(got[i], want, err_msg=f"window {w}")
    assert (got[0] == 255).any() and (got[0] != 255).any() and (got[2] == 255).all()
