"""rasterio.Env reaches rasterloader's GDAL.

rasterloader links its own GDAL (Debian's 3.6), rasterio bundles 3.10, so
options set with ``rasterio.Env(...)`` would not reach rasterloader by
themselves.  While an Env is active in the calling thread, every entry pushes
its options as thread-local GDAL config for the call (lib/runtime/gdal_config.c,
rasterloader/_env.py), on every thread that works for it: the loader's
prefetch thread and the C worker threads of a batch read.

Checked against a loopback HTTP server that records every request's headers
(tests/remote/recording_httpd.py): the user agent (GDAL_HTTP_USERAGENT) and an
extra header (GDAL_HTTP_HEADERS) arrive on every request of an open and of
the reads after it, for both readers and the loaders, and do not outside the
Env; S3 credentials from ``rasterio.Env(session=AWSSession(...))`` sign the
requests.  Pixels are compared with rasterio's read of the local file.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from rasterio.session import AWSSession
from rasterio.windows import Window

import rasterloader
from rasterloader import _env
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
        assert dict(_env.active_options())["GDAL_HTTP_HEADERS"] == "X-Test: 1"
        with rasterloader.open(server.url(f"in/{reader}/{COG}"), reader=reader) as ds:
            n_open = len(server.requests(f"in/{reader}/"))
            _reads(ds)
    reqs = server.requests(f"in/{reader}/")
    assert len(reqs) > n_open                          # the reads went to the server
    _assert_headers(reqs, inside=True)
    # Outside the Env: GDAL's own user agent, no extra header.
    assert _env.active_options() is None
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


def test_rasterio_data_directories_are_not_passed():
    """rasterio points GDAL_DATA at its own GDAL's files: not for ours."""
    with rasterio.Env():
        assert _env.active_options() is None
    with rasterio.Env(GDAL_DATA="/nowhere", VSI_CACHE=True, GDAL_CACHEMAX=1 << 26):
        assert _env.active_options() == (("VSI_CACHE", "ON"), ("GDAL_CACHEMAX", "67108864"))


def test_options_are_popped_after_each_call():
    """Nothing stays behind on the thread: a push and its pop leave GDAL's
    thread-local options as they were (checked through GDAL itself)."""
    import ctypes
    gdal = ctypes.CDLL("libgdal.so.32")      # the GDAL rasterloader links (Debian)
    gdal.CPLGetThreadLocalConfigOption.restype = ctypes.c_char_p
    get = lambda k: gdal.CPLGetThreadLocalConfigOption(k.encode(), None)  # noqa: E731
    gdal.CPLSetThreadLocalConfigOption(b"GDAL_HTTP_USERAGENT", b"before")
    try:
        with _env.gdal_options((("GDAL_HTTP_USERAGENT", "inner"), ("X_RL_TEST", "1"))):
            assert get("GDAL_HTTP_USERAGENT") == b"inner" and get("X_RL_TEST") == b"1"
            with _env.gdal_options((("X_RL_TEST", "2"),)):
                assert get("X_RL_TEST") == b"2"
            assert get("X_RL_TEST") == b"1"
        assert get("GDAL_HTTP_USERAGENT") == b"before" and get("X_RL_TEST") is None
    finally:
        gdal.CPLSetThreadLocalConfigOption(b"GDAL_HTTP_USERAGENT", None)
    with pytest.raises(TypeError):
        rasterloader._core.gdal_config_push([("KEY", 1)])


def test_without_rasterio_nothing_changes():
    """rasterio not importable: reads work and no option is pushed."""
    code = ("import sys; sys.modules['rasterio'] = None\n"
            "import numpy as np, rasterloader\n"
            "from rasterloader import _env\n"
            f"ds = rasterloader.open({fixture_path(COG)!r})\n"
            "assert _env.active_options() is None\n"
            "print(int(ds.read(1, window=((0, 4), (0, 4))).sum()))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == int(_local(Window(0, 0, 4, 4)).astype(np.int64).sum())
