"""rasterio.Env reaches rasterloader's reads: it is the same GDAL.

rasterloader runs on the GDAL rasterio loaded (rasterloader/_gdal_runtime.py),
and rasterio.Env sets its options in that GDAL, process-wide, for as long as
the Env is active: rasterloader's open, its reads, its loaders' threads and the
C worker threads see them with no copy of ours.  Each test holds rasterloader
to rasterio's own behaviour inside the same Env:

- against a loopback HTTP server that records every request's headers
  (tests/remote/recording_httpd.py): the user agent (GDAL_HTTP_USERAGENT) and
  an extra header (GDAL_HTTP_HEADERS) arrive on every request of an open and
  of the reads after it, for both readers and the loaders, as on rasterio's
  requests, and not outside the Env; S3 credentials from
  ``rasterio.Env(session=AWSSession(...))`` sign the requests;
- GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR hides a .msk sidecar from both;
- GDAL_CACHEMAX: rasterio's value stays GDAL's through rasterloader's reads;
- error handling: rasterio's errors inside an Env still reach rasterio, and
  rasterloader's reach rasterloader with their own class, from many threads
  at once (both capture GDAL errors with handlers of their own).
Pixels are compared with rasterio's read of the local file.
"""

import ctypes
import os
import sys
import threading

import numpy as np
import pytest
import rasterio
from rasterio.session import AWSSession
from rasterio.windows import Window

import rasterloader
from rasterloader import errors
from conftest import FIXTURE_DIR, ROOT, fixture_path

sys.path.insert(0, os.path.join(ROOT, "tests", "remote"))
from recording_httpd import RecordingServer  # noqa: E402

COG = "cog_u16_deflate_pred2_tile256_pixel_3b_1024x1024.tif"    # 4x4 tiles of 256
UA = "rasterloader-env-test/1"
ENV = {"GDAL_HTTP_USERAGENT": UA, "GDAL_HTTP_HEADERS": "X-Test: 1",
       "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_HTTP_MAX_RETRY": "0"}
WINDOWS = [Window(512, 512, 256, 256), Window(100, 700, 300, 200), Window(0, 0, 64, 64)]


@pytest.fixture(scope="module")
def server():
    with RecordingServer(FIXTURE_DIR) as srv:
        yield srv


def _local(window, band=1):
    with rasterio.open(fixture_path(COG)) as src:
        return src.read(band, window=window)


def _reads(ds):
    """open's dataset read with read, read_masks and read_hwc; pixels checked."""
    for w in WINDOWS:
        assert np.array_equal(ds.read(1, window=w), _local(w))
    ds.read_masks(1, window=WINDOWS[1])
    tile = ds.read_hwc(WINDOWS[1], indexes=[1])
    assert np.array_equal(np.from_dlpack(tile)[..., 0], _local(WINDOWS[1]))


def _assert_headers(reqs, inside):
    assert len(reqs) >= 3, reqs          # the open and the pixel reads
    for r in reqs:
        h = r["headers"]
        if inside:
            assert h.get("user-agent") == UA and h.get("x-test") == "1", r
        else:
            assert h.get("user-agent") != UA and "x-test" not in h, r


@pytest.mark.parametrize("reader", ["gdal", "native"])
def test_env_options_reach_open_and_reads(server, reader):
    with rasterio.Env(**ENV):
        with rasterloader.open(server.url(f"in/{reader}/{COG}"), reader=reader) as ds:
            n_open = len(server.requests(f"in/{reader}/"))
            _reads(ds)
        with rasterio.open(server.url(f"rio/{reader}/{COG}")) as src:     # the oracle
            src.read(1, window=WINDOWS[0])
    reqs = server.requests(f"in/{reader}/")
    assert len(reqs) > n_open                          # the reads went to the server
    _assert_headers(reqs, inside=True)
    _assert_headers(server.requests(f"rio/{reader}/"), inside=True)
    # Outside the Env: GDAL's own user agent, no extra header.
    with rasterloader.open(server.url(f"out/{reader}/{COG}"), reader=reader) as ds:
        _reads(ds)
    _assert_headers(server.requests(f"out/{reader}/"), inside=False)


@pytest.mark.parametrize("reader", ["gdal", "native"])
def test_env_options_reach_the_loaders_threads(server, reader, monkeypatch):
    """BatchLoader (prefetch thread, 4 C threads: each opens its own handle of
    the URL when the others are busy) and WindowReader.read_into."""
    import functools
    from rasterloader import _loader
    monkeypatch.setattr(_loader, "_open", functools.partial(rasterloader.open, reader=reader))
    rasterloader.set_threads(2)                # decode threads inside each sample too
    try:
        with rasterio.Env(**ENV):
            url = server.url(f"loader/{reader}/{COG}")
            samples = [(url, None, (c, r, 200, 200)) for r in (0, 300, 600) for c in (0, 400, 800)]
            loader = rasterloader.BatchLoader(samples, 9, bands=[1], threads=4, prefetch=1)
            assert loader._dataset(url).reader == reader
            got = [b.numpy()[0].copy() for b in loader]
            out = np.empty((3, 200, 200, 1), np.float32)
            loader.read_into([0, 4, 8], out)
            loader.close()
    finally:
        rasterloader.set_threads(0)
    want = np.stack([_local(Window(*s[2])).astype(np.float32) for s in samples])[..., None]
    assert np.array_equal(got[0], want) and np.array_equal(out, want[[0, 4, 8]])
    _assert_headers(server.requests(f"loader/{reader}/"), inside=True)


@pytest.mark.parametrize("reader", ["gdal", "native"])
def test_session_credentials_sign_s3_requests(server, reader):
    """rasterio.Env(session=AWSSession(...)) with the loopback server as the S3
    endpoint: every request is signed with the session's access key."""

    class Frozen:                      # boto3's frozen credentials, minimal
        access_key, secret_key, token = "AKIDRASTERLOADERTEST", "not-a-secret", None

    class BotoSession:                 # what AWSSession needs from a boto3.Session
        region_name = "us-east-1"

        def get_credentials(self):
            return self

        def get_frozen_credentials(self):
            return Frozen

    session = AWSSession(session=BotoSession(), endpoint_url=server.endpoint)
    with rasterio.Env(session=session, AWS_HTTPS="NO", AWS_VIRTUAL_HOSTING="FALSE",
                      GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", GDAL_HTTP_MAX_RETRY="0"):
        with rasterloader.open(f"s3://bucket-{reader}/{COG}", reader=reader) as ds:
            assert np.array_equal(ds.read(1, window=WINDOWS[0]), _local(WINDOWS[0]))
    reqs = server.requests(f"bucket-{reader}/")
    assert len(reqs) >= 2
    for r in reqs:
        assert "Credential=AKIDRASTERLOADERTEST/" in r["headers"].get("authorization", ""), r


MASK_EXTERNAL = "u16_deflate_pred2_tile256_pixel_1b_700x531_mask_external.tif"   # + .msk beside it


def _mask_view(ds):
    return tuple(tuple(m) for m in ds.mask_flag_enums), len(ds.files), ds.read_masks(1).tobytes()


def test_disable_readdir_on_open_as_rasterio():
    """EMPTY_DIR: GDAL does not list the folder, so the .msk sidecar is not
    found; rasterloader sees exactly what rasterio sees, inside and outside."""
    path = fixture_path(MASK_EXTERNAL)
    seen = {}
    for label, env in (("outside", {}), ("inside", {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"})):
        with rasterio.Env(**env), rasterio.open(path) as a, rasterloader.open(path) as b:
            seen[label] = _mask_view(b)
            assert seen[label] == _mask_view(a), label
    assert seen["inside"] != seen["outside"]          # the option did something
    assert seen["inside"][1] == 1 and seen["outside"][1] == 2


def _gdal():
    g = ctypes.CDLL(rasterloader._GDAL["libraries"]["gdal"], mode=os.RTLD_NOLOAD)
    g.GDALGetCacheMax64.restype = ctypes.c_int64
    return g


def test_gdal_cachemax_of_an_env_is_left_as_rasterio_set_it():
    g = _gdal()
    before = g.GDALGetCacheMax64()
    want = 48 << 20
    assert before != want
    with rasterio.Env(GDAL_CACHEMAX=want):
        assert g.GDALGetCacheMax64() == want               # rasterio sets GDAL's cache
        with rasterloader.open(fixture_path(COG)) as ds:
            assert np.array_equal(ds.read(1, window=WINDOWS[0]), _local(WINDOWS[0]))
        assert g.GDALGetCacheMax64() == want               # and rasterloader left it so
    assert g.GDALGetCacheMax64() == before


# ---------------------------------------------------------------- error handlers

BAD = [("not_a_tiff.tif", errors.FormatError, "not recognized as being in a supported file format"),
       ("corrupt_tile.tif", errors.CorruptError, "deflate"),
       ("no_such_file.tif", errors.RasterFileNotFoundError, "No such file")]


def _rasterloader_error(name):
    try:
        with rasterloader.open(os.path.join(FIXTURE_DIR, name)) as ds:
            ds.read()
    except errors.RasterError as e:
        return e
    return None


def _rasterio_error(name):
    try:
        with rasterio.open(os.path.join(FIXTURE_DIR, name)) as src:
            src.read()
    except rasterio.errors.RasterioError as e:
        return e
    return None


def test_error_handlers_do_not_fight_across_threads():
    """rasterio and rasterloader read bad files at once from 6 threads, half of
    them inside an Env: every failure reaches the library that made the call,
    with its own class and its own file's message (GDAL errors are captured
    per thread by both, never by the other's handler)."""
    rio_want = {name: _rasterio_error(name) for name, _, _ in BAD}
    assert all(isinstance(e, rasterio.errors.RasterioIOError) for e in rio_want.values()), rio_want
    start = threading.Barrier(6)
    failures = []

    def worker(k):
        start.wait(timeout=60)
        try:
            for i in range(30):
                name, cls, said = BAD[(k + i) % len(BAD)]
                with rasterio.Env(GDAL_HTTP_MAX_RETRY="0") if k % 2 else _nothing():
                    e = _rasterloader_error(name)
                    assert isinstance(e, cls) and name in str(e) and said in str(e), (name, e)
                    r = _rasterio_error(name)
                    assert type(r) is type(rio_want[name]) and str(r) == str(rio_want[name]), (name, r)
                    with rasterloader.open(fixture_path(COG)) as ds:
                        good = ds.read(1, window=WINDOWS[2])
                    assert np.array_equal(good, _local(WINDOWS[2]))
        except BaseException as e:          # reported by the main thread
            failures.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
        assert not t.is_alive(), "deadlock guard"
    assert not failures, failures[:3]


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
