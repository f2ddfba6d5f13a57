"""rasterloader.Mosaic against the TorchGeo way (tests/python/mosaic_oracle.py:
WarpedVRT per file in another CRS, rasterio.merge.merge per band, stacked) on
the Sentinel-2-like fixtures (data/make_mosaic_fixtures.py: two scenes in UTM
31N and 32N across 6 deg E, one file per band at 10 m and 20 m, nodata areas).

Nearest resampling must be bit-identical: random boxes (whole-pixel and
fractional), boxes over the overlap (first scene wins, the second fills the
first's nodata), edges, boxes outside every footprint, another grid (20 m,
the other zone), read_hwc / masked / out_dtype / dataset_mask, URLs through a
loopback nginx, and bad input.
"""

import os
import sys

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling

import rasterloader
from conftest import FIXTURE_DIR, ROOT

sys.path.insert(0, os.path.join(ROOT, "data"))
from make_mosaic_fixtures import label_path, make_mosaic_fixtures, scene_paths  # noqa: E402
from mosaic_oracle import TorchGeoWay  # noqa: E402

make_mosaic_fixtures(FIXTURE_DIR)      # no-op when `make fixtures` wrote them
SCENES = scene_paths(FIXTURE_DIR)
BOX = 256                              # pixels of the 10 m grid


@pytest.fixture(scope="module")
def mosaic():
    with rasterloader.Mosaic(SCENES) as m:
        yield m


@pytest.fixture(scope="module")
def oracle():
    o = TorchGeoWay(SCENES)
    yield o
    o.close()


def random_boxes(bounds, n, seed, size=BOX, res=10.0, frac=False, margin=64):
    """Boxes of size x size pixels anywhere over the bounds, up to 'margin'
    pixels beyond them (partly outside); frac: offsets off the pixel grid."""
    rng = np.random.default_rng(seed)
    left, bottom, right, top = bounds
    out = []
    for _ in range(n):
        x = left + rng.integers(-margin, int((right - left) / res) - size + margin) * res
        y = bottom + rng.integers(-margin, int((top - bottom) / res) - size + margin) * res
        if frac:
            x += rng.uniform(0, res)
            y += rng.uniform(0, res)
        out.append((x, y, x + size * res, y + size * res))
    return out


def assert_equal_oracle(got, want, box):
    assert got.shape == want.shape, (box, got.shape, want.shape)
    assert got.dtype == want.dtype
    bad = np.argwhere(got != want)
    assert bad.size == 0, f"{box}: {len(bad)} pixels differ, first at {bad[0]}"


def test_properties(mosaic, oracle):
    with rasterio.open(SCENES[0][0]) as first:
        assert mosaic.crs == first.crs
        assert mosaic.res == first.res
    assert mosaic.count == 5
    assert mosaic.dtypes == ("uint16",) * 5
    assert mosaic.nodata == 0
    # bounds: the union of the footprints in the mosaic's CRS (WarpedVRT bounds for 32632)
    fps = [f.bounds for f in oracle.files[0]]      # B02 of each scene (WarpedVRT for 32632)
    want = (min(f.left for f in fps), min(f.bottom for f in fps),
            max(f.right for f in fps), max(f.top for f in fps))
    assert tuple(mosaic.bounds) == want


@pytest.mark.parametrize("frac", [False, True], ids=["whole-pixel", "fractional"])
def test_random_boxes_equal_torchgeo_way(mosaic, oracle, frac):
    for box in random_boxes(mosaic.bounds, 12, seed=16 + frac, frac=frac):
        assert_equal_oracle(mosaic.read(box), oracle.read(box), box)


def test_overlap_first_scene_wins_and_second_fills_nodata(mosaic, oracle):
    """Boxes inside both footprints, over the first scene's swath-edge nodata."""
    a, b = mosaic.footprints
    left, right = max(a.left, b.left), min(a.right, b.right)
    bottom, top = max(a.bottom, b.bottom), min(a.top, b.top)
    saw_fill = saw_first = False
    with rasterio.open(SCENES[0][0]) as s0:
        for box in random_boxes((left, bottom, right, top), 6, seed=3, margin=0, size=128):
            got = mosaic.read(box)
            assert_equal_oracle(got, oracle.read(box), box)
            w = s0.window(*box)
            first = s0.read(1, window=w, out_shape=got.shape[1:], boundless=True)
            saw_first |= bool(((first != 0) & (got[0] == first)).any())
            saw_fill |= bool(((first == 0) & (got[0] != 0)).any())
    assert saw_first and saw_fill, "the boxes must show both rules"


def test_edges_and_corners(mosaic, oracle):
    left, bottom, right, top = mosaic.bounds
    s = BOX * 10.0
    boxes = [(left, top - s, left + s, top), (right - s, bottom, right, bottom + s),
             (left - s / 2, bottom - s / 2, left + s / 2, bottom + s / 2),
             (right - 10.0, top - 10.0, right + s, top + s),       # one pixel inside
             (left, bottom, left + 10.0, bottom + 10.0)]           # 1x1
    for box in boxes:
        assert_equal_oracle(mosaic.read(box), oracle.read(box), box)


def test_outside_every_footprint_is_all_nodata(mosaic, oracle):
    left, bottom, right, top = mosaic.bounds
    for box in [(right + 100, top + 100, right + 2660, top + 2660),
                (left - 2560, bottom, left, bottom + 2560)]:            # touches the edge only
        got = mosaic.read(box)
        assert_equal_oracle(got, oracle.read(box), box)
        assert (got == 0).all()
        assert (mosaic.dataset_mask(box) == 0).all()


def test_another_grid_20m_and_the_other_zone():
    """res=20 (10 m bands resampled nearest) and the 32632 scene first (its
    grid: the 31N scene is warped instead)."""
    box20 = (705000.0, 5538000.0, 705000.0 + 128 * 20, 5538000.0 + 128 * 20)
    with rasterloader.Mosaic(SCENES, res=20) as m:
        o = TorchGeoWay(SCENES, res=20)
        assert_equal_oracle(m.read(box20), o.read(box20), box20)
        o.close()
    rev = SCENES[::-1]
    with rasterloader.Mosaic(rev) as m:
        assert m.crs == rasterio.open(rev[0][0]).crs
        o = TorchGeoWay(rev)
        for box in random_boxes(m.bounds, 4, seed=5):
            assert_equal_oracle(m.read(box), o.read(box), box)
        o.close()


def test_read_hwc_masked_out_dtype_and_dataset_mask(mosaic, oracle):
    box = random_boxes(mosaic.bounds, 1, seed=9)[0]
    want = oracle.read(box)
    tile = mosaic.read_hwc(box)
    hwc = np.from_dlpack(tile)
    assert hwc.shape == want.shape[1:] + (5,)
    assert np.array_equal(hwc, want.transpose(1, 2, 0))
    del hwc
    tile.release()
    m = mosaic.read(box, masked=True)
    assert np.array_equal(np.ma.getmaskarray(m), want == 0)
    f32 = mosaic.read(box, out_dtype="float32")
    assert f32.dtype == np.float32 and np.array_equal(f32, want.astype(np.float32))
    assert np.array_equal(mosaic.dataset_mask(box), np.where((want != 0).any(0), 255, 0))
    # out_shape: merge at the resolution that gives that size
    half = mosaic.read(box, out_shape=(BOX // 2, BOX // 2))
    assert_equal_oracle(half, oracle.read(box, res=(20.0, 20.0)), box)


def test_datasets_stay_open_across_queries(mosaic):
    before = [id(src) for row in mosaic._scenes for src, *_ in row]
    for box in random_boxes(mosaic.bounds, 3, seed=1):
        mosaic.read(box)
    assert [id(src) for row in mosaic._scenes for src, *_ in row] == before


def test_bands_subset(oracle):
    with rasterloader.Mosaic(SCENES, bands=[3, 5]) as m:
        box = random_boxes(m.bounds, 1, seed=2)[0]
        assert_equal_oracle(m.read(box), oracle.read(box)[[2, 4]], box)


def test_label_raster_as_a_one_band_mosaic():
    lab = label_path(FIXTURE_DIR)
    with rasterloader.Mosaic([lab]) as m, rasterio.open(lab) as src:
        box = random_boxes(m.bounds, 1, seed=4)[0]
        want, _ = rasterio.merge.merge([src], bounds=box, res=src.res)
        assert_equal_oracle(m.read(box), want, box)


# ------------------------------------------------------------------ bad input

def test_mismatched_band_counts():
    with pytest.raises(ValueError, match=r"scene 1 .* has 4 bands but scene 0 .* has 5"):
        rasterloader.Mosaic([SCENES[0], SCENES[1][:4]])


def test_unknown_crs():
    with pytest.raises(ValueError, match="EPSG:999999"):
        rasterloader.Mosaic(SCENES, crs="EPSG:999999")


@pytest.mark.parametrize("box", [(705000.0, 5538000.0, 704000.0, 5539000.0),
                                 (705000.0, 5539000.0, 706000.0, 5538000.0),
                                 (705000.0, 5538000.0, 705000.0, 5539000.0)])
def test_bounds_must_be_ordered(mosaic, box):
    with pytest.raises(ValueError, match="left < right and bottom < top"):
        mosaic.read(box)


def test_other_bad_input(mosaic):
    with pytest.raises(ValueError, match="list of scenes"):
        rasterloader.Mosaic([])
    with pytest.raises(ValueError, match="not 1-based band numbers"):
        rasterloader.Mosaic(SCENES, bands=[0])
    with pytest.raises(rasterloader.errors.RasterIOError, match="nope.tif"):
        rasterloader.Mosaic([[SCENES[0][0], os.path.join(FIXTURE_DIR, "nope.tif")]])
    with pytest.raises(TypeError, match="bounds"):
        mosaic.read("left")
    with pytest.raises(ValueError, match="resampling"):
        rasterloader.Mosaic(SCENES, resampling="sideways")


# ------------------------------------------------------------------ URLs

def test_urls_through_loopback_nginx(mosaic):
    sys.path.insert(0, os.path.join(ROOT, "tests", "remote"))
    import httpd
    if not httpd.Nginx.available():
        pytest.skip("nginx is not installed (Debian: nginx-light; make sysdeps)")
    env = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with httpd.Nginx(FIXTURE_DIR) as server:
            urls = [[server.url(os.path.relpath(p, FIXTURE_DIR)) for p in row] for row in SCENES]
            with rasterloader.Mosaic(urls) as remote:
                for box in random_boxes(mosaic.bounds, 3, seed=7):
                    assert_equal_oracle(remote.read(box), mosaic.read(box), box)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_window_arithmetic_equals_rasterio_from_bounds(mosaic):
    """Mosaic computes merge's windows without rasterio; they must be rasterio's
    to the last bit (every source's transform, whole-pixel and fractional boxes)."""
    from rasterio.windows import from_bounds
    from rasterloader._windows import bounds_window as _window
    rng = np.random.default_rng(0)
    srcs = [src for row in mosaic._scenes for src, *_ in row]
    for box in random_boxes(mosaic.bounds, 100, seed=12, frac=True) + \
            random_boxes(mosaic.bounds, 100, seed=13):
        src = srcs[rng.integers(len(srcs))]
        w = from_bounds(*box, transform=src.transform)
        assert _window(tuple(~src.transform), *box) == (w.col_off, w.row_off, w.width, w.height)


@pytest.mark.parametrize("resampling", ["bilinear", "average"])
def test_other_resamplings_equal_torchgeo_way(resampling):
    """Measured equal for bilinear, cubic, cubic_spline, lanczos, average and
    mode on these uint16 scenes (README); two of them, a few boxes, here."""
    with rasterloader.Mosaic(SCENES, resampling=resampling) as m:
        o = TorchGeoWay(SCENES, resampling=Resampling[resampling])
        for box in random_boxes(m.bounds, 3, seed=21, frac=True):
            assert_equal_oracle(m.read(box), o.read(box), box)
        o.close()


def test_threads_give_the_same_pixels(mosaic):
    with rasterloader.Mosaic(SCENES, threads=1) as one:
        for box in random_boxes(mosaic.bounds, 3, seed=31):
            assert np.array_equal(one.read(box), mosaic.read(box))


def test_read_hwc_mean_std_and_pickle(mosaic, oracle):
    import pickle
    box = random_boxes(mosaic.bounds, 1, seed=41)[0]
    mean, std = [900.0, 1800.0, 2700.0, 3600.0, 4500.0], [3.0, 6.0, 9.0, 12.0, 15.0]
    raw = oracle.read(box).transpose(1, 2, 0).astype(np.float64)
    tile = mosaic.read_hwc(box, mean=mean, std=std)
    assert np.array_equal(np.from_dlpack(tile), ((raw - mean) / std).astype(np.float32))
    with pytest.raises(ValueError, match="5"):
        mosaic.read_hwc(box, mean=[1.0, 2.0])
    copy = pickle.loads(pickle.dumps(mosaic))
    assert np.array_equal(copy.read(box), mosaic.read(box))
    copy.close()


def test_nodata_override(mosaic):
    """nodata=65535 (merge's nodata=): the scenes' own nodata (0) is then
    "invalid source pixels", composed "first" into a 65535-filled output."""
    with rasterloader.Mosaic(SCENES, nodata=65535) as m:
        o = TorchGeoWay(SCENES, nodata=65535)
        for box in random_boxes(m.bounds, 4, seed=51):
            got = m.read(box)
            assert_equal_oracle(got, o.read(box), box)
        o.close()
        assert m.nodata == 65535
