"""rasterio's own pure-Python helpers run on rasterloader datasets and give
rasterio's results: merge (every method, resampling, bounds, res, indexes,
nodata, target_aligned_pixels), mask (crop, all_touched, invert, filled,
nodata, pad), sample_gen, the windows functions, plot.show / show_hist and
features.dataset_features.  The cases follow rasterio's tests/test_merge.py,
test_mask.py, test_sampling.py and test_windows.py, on the project's fixtures.
"""

import os
import warnings

import numpy as np
import pytest
import rasterio
import rasterio.features
import rasterio.mask
import rasterio.merge
import rasterio.sample
import rasterio.windows as W
from rasterio.enums import Resampling

import rasterloader
from conftest import FIXTURE_DIR, GOOD, assert_same
from test_dropin_meta import dropin

MERGE = ["merge_a.tif", "merge_b.tif", "merge_c.tif"]
# mask/sample/plot files: nodata, NaN nodata, internal and external masks, RGBA, 3 bands
HELPER_FILES = [
    "u16_deflate_pred2_tile256_pixel_1b_700x531_mask_external.tif",
    "u8_deflate_pred2_tile256_pixel_4b_512x512_rgba.tif",
    "f32_deflate_pred3_tile256_pixel_1b_700x531_nodata_nan.tif",
    "u8_deflate_pred2_tile256_pixel_3b_700x531_mask_internal.tif",
    "i16_zstd_pred2_tile256_pixel_1b_1000x777_nodata_m9999.tif",
    "u16_deflate_pred2_tile256_pixel_3b_700x531.tif",
]


@pytest.fixture(scope="module")
def merge_sources():
    paths = [dropin(n) for n in MERGE]
    a = [rasterio.open(p) for p in paths]
    b = [rasterloader.open(p) for p in paths]
    yield a, b
    for ds in a + b:
        ds.close()


@pytest.fixture(scope="module")
def helper_pair():
    opened = {}

    def get(name):
        if name not in opened:
            p = os.path.join(FIXTURE_DIR, name)
            opened[name] = (rasterio.open(p), rasterloader.open(p))
        return opened[name]
    yield get
    for a, b in opened.values():
        a.close()
        b.close()


def assert_merged_same(ra, rb):
    (da, ta), (db, tb) = ra, rb
    assert tb == ta
    assert_same(da, db)


MERGE_CASES = [dict(method=m) for m in ("first", "last", "min", "max", "sum", "count")] + [
    dict(resampling=Resampling.bilinear), dict(resampling=Resampling.average),
    dict(resampling=Resampling.cubic, res=13.7),
    dict(bounds=(400000, 5799600, 400600, 5800100)),
    dict(bounds=(399900, 5799000, 401000, 5800300)),          # beyond every source
    dict(res=7.3), dict(res=(20, 15)), dict(indexes=[2]), dict(indexes=[2, 1]), dict(indexes=1),
    dict(nodata=7), dict(target_aligned_pixels=True, res=15), dict(dtype="float32", nodata=-1.0),
    dict(method="max", res=12, resampling=Resampling.bilinear, masked=True,
         bounds=(400010, 5799500, 400700, 5800050)),
    dict(method="count", res=25, resampling=Resampling.average),
]


@pytest.mark.parametrize("kw", MERGE_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_merge_equals_rasterio(merge_sources, kw):
    a, b = merge_sources
    assert_merged_same(rasterio.merge.merge(a, **kw), rasterio.merge.merge(b, **kw))


def test_merge_source_order_and_paths(merge_sources, tmp_path):
    a, b = merge_sources
    assert_merged_same(rasterio.merge.merge(a[::-1], method="first"),
                       rasterio.merge.merge(b[::-1], method="first"))
    # a merge that writes its result (dst_path) reads its sources the same way
    rasterio.merge.merge(b, dst_path=tmp_path / "b.tif")
    rasterio.merge.merge(a, dst_path=tmp_path / "a.tif")
    with rasterio.open(tmp_path / "a.tif") as x, rasterloader.open(tmp_path / "b.tif") as y:
        assert np.array_equal(x.read(), y.read()) and x.profile["transform"] == y.transform


def test_merge_first_colormap(tmp_path):
    """merge() takes the colormap of the first source (colormap(1), ValueError if none)."""
    name = next(e["name"] for e in GOOD if "palette" in e["name"])
    p = os.path.join(FIXTURE_DIR, name)
    with rasterio.open(p) as a, rasterloader.open(p) as b:
        rasterio.merge.merge([a], dst_path=tmp_path / "a.tif")
        rasterio.merge.merge([b], dst_path=tmp_path / "b.tif")
    with rasterio.open(tmp_path / "a.tif") as x, rasterio.open(tmp_path / "b.tif") as y:
        assert x.colormap(1) == y.colormap(1)
        assert np.array_equal(x.read(), y.read())


def _shapes(ds):
    left, bottom, right, top = ds.bounds
    dx, dy = right - left, top - bottom
    tri = {"type": "Polygon", "coordinates": [[(left + 0.2 * dx, bottom + 0.3 * dy),
                                               (left + 0.7 * dx, bottom + 0.25 * dy),
                                               (left + 0.55 * dx, bottom + 0.8 * dy),
                                               (left + 0.2 * dx, bottom + 0.3 * dy)]]}
    far = {"type": "Polygon", "coordinates": [[(left - 10 * dx, bottom), (left - 9 * dx, bottom),
                                               (left - 9 * dx, top), (left - 10 * dx, bottom)]]}
    return tri, far


MASK_CASES = [dict(), dict(crop=True), dict(all_touched=True), dict(invert=True), dict(filled=False),
              dict(nodata=3), dict(crop=True, pad=True), dict(indexes=1),
              dict(crop=True, filled=False, indexes=[1]), dict(crop=True, all_touched=True, invert=True)]


@pytest.mark.parametrize("name", HELPER_FILES)
def test_mask_equals_rasterio(helper_pair, name):
    a, b = helper_pair(name)
    tri, far = _shapes(a)
    for kw in MASK_CASES:
        (da, ta), (db, tb) = rasterio.mask.mask(a, [tri], **kw), rasterio.mask.mask(b, [tri], **kw)
        assert tb == ta, kw
        assert_same(da, db)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)       # "shapes are outside bounds"
        assert_same(rasterio.mask.mask(a, [far])[0], rasterio.mask.mask(b, [far])[0])
    with pytest.raises(ValueError, match="do not overlap"):
        rasterio.mask.mask(b, [far], crop=True)


def _points(ds, n=40, seed=0):
    left, bottom, right, top = ds.bounds
    rng = np.random.default_rng(seed)
    pts = [(left + x * (right - left), bottom + y * (top - bottom))
           for x, y in rng.uniform(-0.1, 1.1, (n, 2))]
    return pts + [(left, top), (right, bottom)]      # the edges: inside, then outside


@pytest.mark.parametrize("name", HELPER_FILES)
def test_sample_equals_rasterio(helper_pair, name):
    a, b = helper_pair(name)
    pts = _points(a)
    for kw in (dict(), dict(masked=True), dict(indexes=1), dict(indexes=[1]),
               dict(masked=True, indexes=[b.count])):
        want = list(rasterio.sample.sample_gen(a, pts, **kw))
        for got in (list(b.sample(pts, **kw)), list(rasterio.sample.sample_gen(b, pts, **kw))):
            assert len(got) == len(want)
            for x, y in zip(want, got):
                assert_same(x, y)


def test_sample_without_rasterio_code_path(helper_pair):
    """The stand-in sampler used without rasterio gives rasterio's values too."""
    from rasterloader._dataset_meta import _sample_gen
    for name in HELPER_FILES[:3]:
        a, b = helper_pair(name)
        pts = _points(a, 25, 1)
        for kw in (dict(indexes=None, masked=False), dict(indexes=None, masked=True),
                   dict(indexes=1, masked=False)):
            for x, y in zip(rasterio.sample.sample_gen(a, pts, **kw), _sample_gen(b, pts, **kw)):
                assert_same(x, y)


@pytest.mark.parametrize("name", HELPER_FILES[:3])
def test_windows_functions_equal_rasterio(helper_pair, name):
    a, b = helper_pair(name)
    left, bottom, right, top = a.bounds
    dx, dy = right - left, top - bottom
    wins = [W.from_bounds(left + 0.1 * dx, bottom + 0.2 * dy, left + 0.6 * dx, bottom + 0.9 * dy,
                          b.transform),
            W.Window(3, 4, 50, 60), W.Window(-5, -7, 20, 30)]
    for w in wins:
        assert b.window_transform(w) == a.window_transform(w)
        assert b.window_bounds(w) == a.window_bounds(w)
        assert W.transform(w, b.transform) == W.transform(w, a.transform)
        assert W.bounds(w, b.transform) == W.bounds(w, a.transform)
        assert W.evaluate(w, b.height, b.width) == W.evaluate(w, a.height, a.width)
        assert W.crop(w, b.height, b.width) == W.crop(w, a.height, a.width)
        assert list(W.round_window_to_full_blocks(w, b.block_shapes).flatten()) == \
            list(W.round_window_to_full_blocks(w, a.block_shapes).flatten())
        assert_same(a.read(window=W.crop(w, a.height, a.width).round_offsets().round_lengths()),
                    b.read(window=W.crop(w, b.height, b.width).round_offsets().round_lengths()))
    box = (left + 0.1 * dx, bottom + 0.1 * dy, right - 0.2 * dx, top - 0.1 * dy)
    assert b.window(*box) == a.window(*box)
    assert W.from_bounds(*box, transform=b.transform) == W.from_bounds(*box, transform=a.transform)
    arr = b.read(1, masked=True)
    assert W.get_data_window(arr) == W.get_data_window(a.read(1, masked=True))


@pytest.mark.parametrize("name", HELPER_FILES[1:4])      # RGBA, NaN nodata, 3 bands masked
def test_plot_show_equals_rasterio(helper_pair, name):
    """show(dataset) (RGB by color interpretation, else band 1, masked) and
    show((dataset, band)) plot rasterio's image data and extent; show_hist runs."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import rasterio.plot
    a, b = helper_pair(name)
    shown = []
    for ds in (a, b):
        images = []
        for src in (ds, (ds, 1)):
            fig, ax = plt.subplots()
            rasterio.plot.show(src, ax=ax)
            im = ax.get_images()[0]
            images.append((im.get_array(), im.get_extent()))
            plt.close(fig)
        if name == HELPER_FILES[1]:      # matplotlib's histogram is the slow part
            fig, ax = plt.subplots()
            rasterio.plot.show_hist(ds, ax=ax, bins=8)
            plt.close(fig)
        shown.append(images)
    for (xa, ea), (xb, eb) in zip(*shown):
        assert ea == eb
        assert np.array_equal(np.ma.getdata(xa), np.ma.getdata(xb), equal_nan=True)
        assert np.array_equal(np.ma.getmaskarray(xa), np.ma.getmaskarray(xb))


def test_dataset_features_equal_rasterio(helper_pair):
    a, b = helper_pair("u8_deflate_pred2_tile256_pixel_3b_700x531_mask_internal.tif")
    kw = dict(bidx=1, sampling=8, band=False, as_mask=True, geographic=False)
    fa = list(rasterio.features.dataset_features(a, **kw))
    fb = list(rasterio.features.dataset_features(b, **kw))
    assert len(fa) == len(fb) > 0
    assert [f["geometry"] for f in fa] == [f["geometry"] for f in fb]


def test_zero_size_windows_as_rasterio(helper_pair):
    """A window clipped to zero height or width reads an empty array, as rasterio."""
    a, b = helper_pair(HELPER_FILES[5])
    for w in (W.Window(0, b.height, 10, 10), W.Window(10, 0, 0, 10), ((600, 700), (0, 10)),
              W.Window(-20, 0, 10, 10), W.Window(0.5, b.height - 0.3, 10, 10)):
        for kw in (dict(), dict(masked=True), dict(indexes=1), dict(fill_value=3)):
            assert_same(a.read(window=w, **kw), b.read(window=w, **kw))
        assert_same(a.read_masks(1, window=w), b.read_masks(1, window=w))
        assert_same(a.dataset_mask(window=w), b.dataset_mask(window=w))
    w = W.Window(0, b.height, 10, 10)
    with pytest.raises(rasterio.errors.RasterioIOError):
        a.read(1, window=w, out_shape=(5, 5))
    for ds in (a, b):
        for f in (lambda: ds.read(1, window=w, out_shape=(5, 5)),
                  lambda: ds.read_masks(1, window=w, out_shape=(5, 5)),
                  lambda: ds.dataset_mask(window=w, out_shape=(5, 5))):
            with pytest.raises(rasterio.errors.RasterioIOError):
                f()
        assert ds.read(1, window=w, out_shape=(0, 5)).shape == (0, 5)
        assert ds.read(1, window=W.Window(0, 5, 10, 0), boundless=True).shape == (0, 10)
