"""rasterloader.WarpedVRT against rasterio.vrt.WarpedVRT (the oracle) on the same
files and arguments: properties, pixels, masks, windows, out_shape, errors.

rasterloader runs on the GDAL rasterio loaded (one GDAL per process), so every
case is bit-identical: same-CRS wraps (TorchGeo wraps every file), scaled or
not, with every resampling; reprojections with the default tolerance and the
exact transformer, with nearest and the interpolating kernels; resampled
(out_shape) reads of a warped VRT; masks.
"""

import os
import pickle
import signal
import threading

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
from affine import Affine  # noqa: E402
from rasterio.vrt import WarpedVRT as RioVRT  # noqa: E402
from rasterio.enums import Resampling  # noqa: E402
from rasterio.windows import Window  # noqa: E402

import rasterloader  # noqa: E402
from rasterloader import WarpedVRT  # noqa: E402
from conftest import fixture_path, wait_until  # noqa: E402
from utm_scenes import make_scenes  # noqa: E402

@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return make_scenes(str(tmp_path_factory.mktemp("utm")), size=300)


def _both(path):
    return rasterio.open(path), rasterloader.open(path)


def _props(v):
    return dict(width=v.width, height=v.height, count=v.count, dtypes=tuple(v.dtypes),
                transform=tuple(v.transform)[:6], nodatavals=tuple(v.nodatavals),
                src_nodata=v.src_nodata, dst_nodata=v.dst_nodata, warp_extras=v.warp_extras,
                mask_flag_enums=tuple(tuple(m) for m in v.mask_flag_enums),
                bounds=tuple(v.bounds), res=tuple(v.res), crs=v.crs, src_crs=v.src_crs,
                dst_crs=v.dst_crs, tolerance=v.tolerance, resampling=v.resampling,
                indexes=tuple(v.indexes), shape=v.shape)


def _same_nan(a, b):
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=a.dtype.kind == "f")


# ---------------------------------------------------------------- properties

PROPERTY_CASES = [
    ("z31", {}),
    ("z31", dict(crs="EPSG:32632")),
    ("z31", dict(crs="EPSG:4326", resampling=1)),
    ("z31", dict(width=200, height=150)),                         # rasterio case 2
    ("z31", dict(width=200, height=150, crs="EPSG:32632")),       # case 3
    ("z31", dict(transform=Affine(20, 0, 700450, 0, -20, 5547950), width=100, height=80)),
    ("z31", dict(tolerance=0, crs="EPSG:32632")),
    ("nodata", {}),
    ("nodata", dict(src_nodata=None, nodata=None)),
    ("nodata", dict(nodata=5)),
    ("nodata", dict(add_alpha=True, crs="EPSG:32632")),
    ("nodata", dict(init_dest_nodata=False)),
    ("nodata", dict(init_dest=255)),
    ("rgba", dict(crs="EPSG:3857")),
    ("mask", dict(crs="EPSG:3857", nodata=0)),
    ("mask", dict(add_alpha=True)),
]


def _case_path(kind, scenes):
    return {"z31": scenes[0], "nodata": scenes[2],
            "rgba": fixture_path("u8_deflate_pred2_tile256_pixel_4b_512x512_rgba.tif"),
            "mask": fixture_path("u8_deflate_pred2_tile256_pixel_3b_700x531_mask_internal.tif"),
            }[kind]


@pytest.mark.parametrize("kind,kw", PROPERTY_CASES)
def test_properties_equal_rasterio(kind, kw, scenes):
    rs, ls = _both(_case_path(kind, scenes))
    with rs, ls, RioVRT(rs, **kw) as r, WarpedVRT(ls, **kw) as v:
        assert _props(v) == _props(r)
        assert v.name == f"WarpedVRT({ls.name})" and r.name == f"WarpedVRT({rs.name})"
        assert v.src_dataset is ls and v.mode == "r" and not v.closed
        assert v.driver == r.driver == "VRT"
        assert v.block_shapes == r.block_shapes
        assert v.colorinterp == r.colorinterp
        p, q = v.profile, r.profile
        for key in ("driver", "dtype", "nodata", "width", "height", "count", "crs", "transform",
                    "blockxsize", "blockysize"):
            assert p[key] == q[key], key
    assert v.closed


# ---------------------------------------------------------------- pixels

SAME_CRS = [{}, dict(resampling=1), dict(resampling=2), dict(resampling=5),
            dict(width=210, height=160), dict(width=210, height=160, resampling=3),
            dict(transform=Affine(15, 0, 700600, 0, -15, 5547800), width=150, height=140,
                 resampling=1)]


@pytest.mark.parametrize("kw", SAME_CRS)
def test_same_crs_wrap_is_bit_identical(kw, scenes):
    """TorchGeo wraps every file, even on its own grid."""
    rs, ls = _both(scenes[2])   # nodata 0 and a zero corner: masks matter
    with rs, ls, RioVRT(rs, **kw) as r, WarpedVRT(ls, **kw) as v:
        assert np.array_equal(v.read(), r.read())
        assert np.array_equal(v.read_masks(), r.read_masks())
        assert np.array_equal(v.dataset_mask(), r.dataset_mask())
        win = Window(13, 7, 120, 90)
        a, b = v.read(window=win, masked=True), r.read(window=win, masked=True)
        assert np.array_equal(a.data, b.data) and np.array_equal(a.mask, b.mask)
        assert np.array_equal(v.read(2, window=((5, 60), (9, 99))),
                              r.read(2, window=((5, 60), (9, 99))))


@pytest.mark.parametrize("dst", ["EPSG:32632", "EPSG:4326"])
def test_reprojection_exact_transformer_nearest_is_bit_identical(dst, scenes):
    rs, ls = _both(scenes[0])
    with rs, ls, RioVRT(rs, crs=dst, tolerance=0) as r, WarpedVRT(ls, crs=dst, tolerance=0) as v:
        assert np.array_equal(v.read(), r.read())
        assert np.array_equal(v.dataset_mask(), r.dataset_mask())


@pytest.mark.parametrize("src,dst", [(0, "EPSG:32632"), (3, "EPSG:32631"), (4, "EPSG:32632"),
                                     (1, "EPSG:4326")])
def test_reprojection_default_tolerance_is_bit_identical(src, dst, scenes):
    rs, ls = _both(scenes[src])
    with rs, ls, RioVRT(rs, crs=dst) as r, WarpedVRT(ls, crs=dst) as v:
        assert _props(v) == _props(r)
        assert np.array_equal(v.read(), r.read())
        assert np.array_equal(v.dataset_mask(), r.dataset_mask())


@pytest.mark.parametrize("alg", [1, 2, 3, 4, 5, 6])
def test_reprojection_kernels_are_bit_identical(alg, scenes):
    rs, ls = _both(scenes[0])
    with rs, ls, RioVRT(rs, crs="EPSG:32632", resampling=alg) as r, \
            WarpedVRT(ls, crs="EPSG:32632", resampling=alg) as v:
        assert _props(v) == _props(r)
        assert np.array_equal(v.read(), r.read())
        assert np.array_equal(v.dataset_mask(), r.dataset_mask())


# ---------------------------------------------------------------- reads

def test_resampled_reads_of_a_warped_vrt(scenes):
    """out_shape reads of a plain and of a scaled wrap, nearest and bilinear."""
    for kw_vrt in ({}, dict(width=250, height=260)):
        rs, ls = _both(scenes[2])
        with rs, ls, RioVRT(rs, **kw_vrt) as r, WarpedVRT(ls, **kw_vrt) as v:
            for kw in [dict(out_shape=(3, 100, 90)), dict(out_shape=(3, 150, 150)),
                       dict(out_shape=(3, 100, 90), resampling=Resampling.bilinear)]:
                assert np.array_equal(v.read(**kw), r.read(**kw)), (kw_vrt, kw)


def test_windows_out_dtype_and_out(scenes):
    rs, ls = _both(scenes[2])
    with rs, ls, RioVRT(rs, width=250, height=260) as r, WarpedVRT(ls, width=250, height=260) as v:
        for kw in [dict(window=Window(10, 20, 100, 80), masked=True),
                   dict(indexes=[3, 1], out_dtype="float32"), dict(indexes=2, masked=True),
                   dict(window=Window(0, 0, 64, 64), masked=True, out_dtype="int32")]:
            a, b = v.read(**kw), r.read(**kw)
            assert a.dtype == b.dtype and a.shape == b.shape, kw
            assert np.array_equal(np.ma.getdata(a), np.ma.getdata(b)), kw
            assert np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b)), kw
        out = np.zeros((3, 30, 40), np.uint16)
        got = v.read(out=out, window=Window(5, 5, 40, 30))
        assert got is out and np.array_equal(out, r.read(window=Window(5, 5, 40, 30)))
        for kw in [dict(indexes=[2], window=Window(3, 4, 50, 40)), dict(window=((0, 30), (5, 9)))]:
            assert np.array_equal(v.read_masks(**kw), r.read_masks(**kw))
        assert np.array_equal(v.dataset_mask(window=Window(1, 2, 90, 70)),
                              r.dataset_mask(window=Window(1, 2, 90, 70)))


def test_read_hwc_and_dlpack(scenes):
    torch = pytest.importorskip("torch")
    rs, ls = _both(scenes[3])
    with rs, ls, RioVRT(rs, crs="EPSG:32631", tolerance=0) as r, \
            WarpedVRT(ls, crs="EPSG:32631", tolerance=0) as v:
        win = Window(30, 40, 64, 48)
        want = r.read(window=win)
        tile = v.read_hwc(window=win)
        assert np.array_equal(np.from_dlpack(tile), want.transpose(1, 2, 0))
        t = torch.empty((48, 64, 3), dtype=torch.float32)
        v.read_hwc(window=win, out=t, mean=[10, 20, 30], std=[2, 4, 8])
        ref = (want.transpose(1, 2, 0).astype(np.float64) - [10, 20, 30]) / [2, 4, 8]
        assert np.allclose(t.numpy(), ref.astype(np.float32))


def test_loader_sample_names_the_warpedvrt(scenes):
    rs, ls = _both(scenes[3])
    with rs, ls, RioVRT(rs, crs="EPSG:32631", tolerance=0) as r, \
            WarpedVRT(ls, crs="EPSG:32631", tolerance=0) as v:
        wins = [Window(0, 0, 32, 32), Window(50, 60, 32, 32), Window(r.width - 32, 7, 32, 32)]
        samples = [(v, None, w) for w in wins]
        reader = rasterloader.WindowReader(samples, out_dtype="uint16")
        batch = reader.read([0, 1, 2])
        img, mask = batch.numpy()
        for k, w in enumerate(wins):
            assert np.array_equal(img[k], r.read(window=w).transpose(1, 2, 0))
            assert np.array_equal(mask[k], r.dataset_mask(window=w))
        batch.release()
        reader.close()
        assert not v.closed          # the loader does not close what it was given


def test_source_closed_after_creation_still_reads(scenes):
    """TorchGeo closes the source right after wrapping it, as rasterio allows."""
    rs, ls = _both(scenes[3])
    r, v = RioVRT(rs, crs="EPSG:32631", tolerance=0), WarpedVRT(ls, crs="EPSG:32631", tolerance=0)
    rs.close()
    ls.close()
    with r, v:
        assert np.array_equal(v.read(window=Window(0, 0, 100, 100)),
                              r.read(window=Window(0, 0, 100, 100)))


def _task_count():
    return len(os.listdir("/proc/self/task"))


def _wait_threads_gone(count):
    """Wait until the OS threads of joined Python threads have really ended.

    Thread.join() returns before the OS thread has run its thread-local
    destructors, and GDAL's per-thread PROJ context is one of them: it closes
    PROJ's SQLite database, holding SQLite's mutex.  A fork() in that moment
    gives a child whose first CRS lookup waits on that mutex forever (seen once
    in a full run).  No fork gate can cover another library's thread exit, so
    the README says: fork after reading threads have ended, as DataLoader does.
    The thread count is the event (it used to fork anyway after 10 s).
    """
    wait_until(lambda: _task_count() <= count, "the reading threads' OS threads ending")


def test_threads_fork_and_pickle(scenes):
    rs, ls = _both(scenes[0])
    with rs, ls, RioVRT(rs, crs="EPSG:32632", tolerance=0) as r, \
            WarpedVRT(ls, crs="EPSG:32632", tolerance=0) as v:
        want = r.read()
        got = [None] * 4

        def work(i):
            got[i] = v.read()
        before = _task_count()
        ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert all(np.array_equal(g, want) for g in got)
        _wait_threads_gone(before)
        rd, wr = os.pipe()
        pid = os.fork()
        if pid == 0:    # the child re-builds its own warped VRT
            signal.alarm(60)    # a hang fails this test instead of stalling the run
            ok = np.array_equal(v.read(), want)
            os.write(wr, b"1" if ok else b"0")
            os._exit(0)
        os.close(wr)
        assert os.read(rd, 1) == b"1"
        os.waitpid(pid, 0)
        copy = pickle.loads(pickle.dumps(v))
        with copy:
            assert np.array_equal(copy.read(), want) and copy.warp_extras == v.warp_extras


def test_warped_vrt_of_a_warped_vrt(scenes):
    rs, ls = _both(scenes[0])
    with rs, ls, RioVRT(rs, crs="EPSG:32632", tolerance=0) as r, \
            WarpedVRT(ls, crs="EPSG:32632", tolerance=0) as v, \
            RioVRT(r, width=100, height=100) as rr, WarpedVRT(v, width=100, height=100) as vv:
        assert _props(vv) == _props(rr)
        assert np.array_equal(vv.read(), rr.read())


@pytest.mark.parametrize("path", [
    "u8_deflate_pred2_tile256_pixel_4b_512x512_rgba.tif",
    "u16_deflate_pred2_tile256_pixel_1b_700x531_mask_external.tif",
    "u8_deflate_pred2_tile256_pixel_3b_700x531_mask_internal.tif",
    "u8_deflate_pred2_tile256_pixel_1b_700x531_nodata0.tif",
])
@pytest.mark.parametrize("kw", [{}, dict(add_alpha=True), dict(nodata=3)])
def test_masks_of_alpha_nodata_and_mask_sources(path, kw):
    rs, ls = _both(fixture_path(path))
    with rs, ls:
        if kw.get("add_alpha") and "rgba" in path:
            with pytest.raises(rasterio.errors.WarpOptionsError):
                RioVRT(rs, **kw)
            with pytest.raises(rasterio.errors.WarpOptionsError, match="alpha"):
                WarpedVRT(ls, **kw)
            return
        with RioVRT(rs, **kw) as r, WarpedVRT(ls, **kw) as v:
            assert _props(v) == _props(r)
            assert np.array_equal(v.read(), r.read())
        # Fresh VRTs per mask call: rasterio's masks of an RGBA with a shadowing
        # nodata depend on which mask call came first (GDAL's mask band state).
        for call in (lambda d: np.ma.getmaskarray(d.read(masked=True)),
                     lambda d: d.read_masks(), lambda d: d.dataset_mask()):
            with RioVRT(rs, **kw) as r, WarpedVRT(ls, **kw) as v:
                assert np.array_equal(call(v), call(r))


def test_merge_takes_a_warpedvrt(scenes):
    merge = pytest.importorskip("rasterio.merge").merge
    rs, ls = _both(scenes[3])
    with rs, ls, RioVRT(rs, crs="EPSG:32631", tolerance=0) as r, \
            WarpedVRT(ls, crs="EPSG:32631", tolerance=0) as v:
        if not hasattr(v, "colormap"):
            pytest.skip("rasterio.merge needs Dataset.colormap (issue 15, dropin-api)")
        left, bottom, right, top = r.bounds
        b = (left + 300, bottom + 400, left + 1500, bottom + 1700)
        want, wt = merge([r], bounds=b, res=(10, 10), indexes=[1, 3])
        got, gt = merge([v], bounds=b, res=(10, 10), indexes=[1, 3])
        assert gt == wt and np.array_equal(got, want)


# ---------------------------------------------------------------- errors

def test_errors_match_rasterio(scenes):
    rs, ls = _both(scenes[0])
    with rs, ls:
        for kw in [dict(resampling=7), dict(resampling=99)]:
            with pytest.raises(ValueError):
                RioVRT(rs, **kw)
            with pytest.raises(ValueError, match="resampling"):
                WarpedVRT(ls, **kw)
        with pytest.raises(rasterio.errors.CRSError):
            RioVRT(rs, crs="EPSG:999999")
        with pytest.raises(rasterio.errors.CRSError):
            WarpedVRT(ls, crs="EPSG:999999")
        with WarpedVRT(ls) as v, RioVRT(rs) as r:
            for f in (lambda d: d.read(boundless=True, window=Window(-5, -5, 20, 20)),
                      lambda d: d.read_masks(boundless=True, window=Window(-5, -5, 20, 20))):
                with pytest.raises(ValueError, match="boundless"):
                    f(r)
                with pytest.raises(ValueError, match="boundless"):
                    f(v)
        with pytest.raises(TypeError, match="rasterloader Dataset"):
            WarpedVRT(rs)
    with pytest.raises(rasterloader.errors.ClosedError, match="closed"):
        WarpedVRT(ls)
    v = WarpedVRT(rasterloader.open(scenes[0]))
    v.close()
    with pytest.raises(rasterloader.errors.ClosedError):
        v.read()


def test_sliver_windows_read_as_rasterio(scenes):
    """rasterio.merge meets windows under a pixel high or wide at file edges:
    GDAL (>= 3.7) reads them from the float window."""
    rs, ls = _both(scenes[4])
    with rs, ls:
        for win, shape in [(Window(42.5, 0, 128, 0.334), (3, 1, 128)),
                           (Window(10.2, 5.7, 0.4, 30.3), (3, 61, 1)),
                           (Window(10.2, 5.7, 0.6, 0.7), (3, 1, 1))]:
            a = ls.read(out_shape=shape, window=win, masked=True)
            b = rs.read(out_shape=shape, window=win, masked=True)
            assert np.array_equal(a.data, b.data) and np.array_equal(
                np.ma.getmaskarray(a), np.ma.getmaskarray(b))
            assert np.array_equal(ls.read_masks(1, out_shape=shape[1:], window=win),
                                  rs.read_masks(1, out_shape=shape[1:], window=win))


def test_nan_nodata_float32_stays_float32():
    path = fixture_path("f32_deflate_pred3_tile256_pixel_1b_700x531_nodata_nan.tif")
    rs, ls = _both(path)
    with rs, ls:
        for kw in [{}, dict(crs="EPSG:3857"), dict(width=300, height=200)]:
            with RioVRT(rs, **kw) as r, WarpedVRT(ls, **kw) as v:
                assert v.dtypes == r.dtypes == ("float32",)
                assert np.array_equal(v.read(), r.read(), equal_nan=True)
                assert np.array_equal(v.dataset_mask(), r.dataset_mask())


@pytest.mark.parametrize("src,dst", [(0, "EPSG:32632"), (3, "EPSG:32631"), (1, "EPSG:4326")])
def test_reprojected_windows_are_bit_identical(src, dst, scenes):
    """Training-sized windows of a reprojection at the default tolerance equal
    rasterio's."""
    import random
    rs, ls = _both(scenes[src])
    with rs, ls, RioVRT(rs, crs=dst) as r, WarpedVRT(ls, crs=dst) as v:
        rng = random.Random(7)
        for size in (64, 128, 256):
            for _ in range(4):
                w, h = min(size, r.width), min(size, r.height)
                win = Window(rng.randrange(r.width - w + 1), rng.randrange(r.height - h + 1), w, h)
                assert np.array_equal(v.read(window=win), r.read(window=win)), win
                assert np.array_equal(v.dataset_mask(window=win), r.dataset_mask(window=win)), win
