"""HTTP failures are RasterIOError (an OSError) naming the URL and the cause;
transient ones are retried and never left stuck.

A server that ignores Range requests answers every GET with the whole file
and 200; GDAL refuses to read it ("Range downloading not supported by this
server!", reported as CPLE_AppDefined, like a codec it lacks), which used to
come out as UnsupportedError (a NotImplementedError).  It is the server's
failure, so it is an I/O error, for both readers, open() and the loaders,
and rasterio's answer on the same URL is an error too.
"""

import os
import re
import sys

import pytest
import rasterio

import rasterloader
from rasterloader import errors
from conftest import FIXTURE_DIR, ROOT, assert_same

sys.path.insert(0, os.path.join(ROOT, "tests", "remote"))
from recording_httpd import RecordingServer  # noqa: E402
import httpd  # noqa: E402

COG = "cog_u16_deflate_pred2_tile256_pixel_3b_1024x1024.tif"
ENV = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_HTTP_MAX_RETRY": "0"}

# libcurl's words for a body cut short (CURLE_PARTIAL_FILE), which depend on the
# libcurl GDAL loaded: "transfer closed with N bytes remaining to read" (Debian's
# 7.88), "end of response with N bytes missing" (8.x, rasterio's wheel).
SHORT_BODY = re.compile(r"transfer closed with \d+ bytes remaining|end of response with \d+ bytes missing")


@pytest.fixture(scope="module")
def no_range():
    with RecordingServer(FIXTURE_DIR, ranges=False) as srv:
        yield srv


def _check(e, url):
    assert isinstance(e, errors.RasterIOError) and isinstance(e, OSError)
    assert not isinstance(e, NotImplementedError)
    assert e.status == 2 and e.status_name == "RASTER_E_IO"
    msg = str(e)
    assert url in msg and "Range" in msg and "server" in msg, msg


@pytest.mark.parametrize("reader", [None, "gdal", "native"])
def test_server_without_range_support_is_an_io_error(no_range, reader):
    url = no_range.url(f"open/{reader}/{COG}")
    with rasterio.Env(**ENV):
        with pytest.raises(errors.RasterIOError) as ei:
            rasterloader.open(url, reader=reader)
        # The oracle: rasterio cannot read it either.
        with pytest.raises(rasterio.errors.RasterioIOError):
            with rasterio.open(url.replace("open/", "rio/")) as src:
                src.read(1, window=((0, 8), (0, 8)))
    _check(ei.value, url)
    assert no_range.requests(f"open/{reader}/"), "the server was asked"


def test_loader_sample_on_a_server_without_range(no_range):
    url = no_range.url(f"loader/{COG}")
    with rasterio.Env(**ENV):
        with pytest.raises(errors.RasterIOError) as ei:
            rasterloader.BatchLoader([(url, None, (0, 0, 64, 64))], 1, prefetch=0)
    _check(ei.value, url)


# ------------------------------------------------- causes, retries, never stuck
#
# The quirky loopback server (tests/remote/httpd.py): /fail/<code>/<from>/ answers
# every ranged request from byte <from> with <code>; /once/<how>/<from>/ fails the
# first such request of a URL once ("reset": a TCP reset after the headers,
# "short": half the body, then close; or a status) and serves the rest.  65536
# is past the COG's header, so the open succeeds and the pixel reads meet the
# fault.  The default reader (the native one, for a COG) is used.

WIN = ((512, 768), (512, 768))


@pytest.fixture(scope="module")
def quirky():
    with httpd.Quirky(FIXTURE_DIR) as s:
        yield s


@pytest.fixture
def retries(monkeypatch):
    """Sets GDAL_HTTP_MAX_RETRY (None: unset) with a short delay."""
    monkeypatch.setenv("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR")
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.05")

    def set_retries(n):
        if n is None:
            monkeypatch.delenv("GDAL_HTTP_MAX_RETRY", raising=False)
        else:
            monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", str(n))
    return set_retries


def _range_requests(srv, url):
    path = "/" + url.split("/", 3)[3]
    return [r for r in srv.requests() if r["path"] == path and r["method"] == "GET" and r["range"]
            and int(r["range"][6:].split("-")[0]) >= 65536]


@pytest.mark.parametrize("reader", [None, "gdal"])
@pytest.mark.parametrize("code,reason", [(404, " Not Found"), (403, " Forbidden"),
                                         (500, " Internal Server Error"),
                                         (503, " Service Unavailable")])
def test_status_during_read_is_named(quirky, retries, code, reason, reader):
    """The native reader names the status line; the GDAL reader the status
    GDAL's /vsicurl/ says in its debug output (its error is libtiff's)."""
    retries(0)
    url = quirky.url(f"fail/{code}/65536/{COG}?named-{reader}")
    with rasterloader.open(url, reader=reader) as ds:
        with pytest.raises(errors.RasterIOError) as ei:
            ds.read(window=WIN)
    msg = str(ei.value)
    assert url in msg and f"HTTP {code}{reason if reader is None else ''}" in msg, msg
    assert "no detail from GDAL" not in msg, msg


@pytest.mark.parametrize("reader", [None, "gdal"])
def test_short_body_during_read_is_named(quirky, retries, reader):
    retries(0)
    url = quirky.url(f"truncate/65536/{COG}?short-{reader}")
    with rasterloader.open(url, reader=reader) as ds:
        with pytest.raises(errors.RasterIOError) as ei:
            ds.read(window=WIN)
    assert SHORT_BODY.search(str(ei.value)), str(ei.value)


@pytest.mark.parametrize("code", [403, 404])
def test_status_on_open_is_named(quirky, retries, code):
    retries(0)
    url = quirky.url(f"fail/{code}/0/{COG}?open")
    with pytest.raises(errors.RasterIOError) as ei:
        rasterloader.open(url)
    assert url in str(ei.value) and str(code) in str(ei.value), str(ei.value)


@pytest.mark.parametrize("how,words", [("reset", "Connection reset by peer"),
                                       ("short", SHORT_BODY),
                                       ("503", "HTTP 503 Service Unavailable")])
def test_transient_fault_fails_once_then_reads(quirky, retries, rl, how, words):
    """Without retries the fault is the read's error, naming the cause; the
    next read of the same window succeeds: nothing of the failure is kept."""
    retries(0)
    url = quirky.url(f"once/{how}/65536/{COG}?no-retry")
    with rasterloader.open(url) as ds:
        with pytest.raises(errors.RasterIOError) as ei:
            ds.read(window=WIN)
        assert re.search(words, str(ei.value)), str(ei.value)
        assert_same(ds.read(window=WIN), rl(COG).read(window=WIN))


@pytest.mark.parametrize("how", ["reset", "short", "503"])
@pytest.mark.parametrize("setting", [1, None])
def test_transient_fault_is_retried(quirky, retries, rl, how, setting):
    """With GDAL_HTTP_MAX_RETRY (or unset: 2 retries) the read succeeds by
    sending the failed range again."""
    retries(setting)
    url = quirky.url(f"once/{how}/65536/{COG}?retry-{setting}")
    with rasterloader.open(url) as ds:
        assert_same(ds.read(window=WIN), rl(COG).read(window=WIN))
    quirky.settle()
    reqs = _range_requests(quirky, url)
    assert len(reqs) == 2 and reqs[0]["range"] == reqs[1]["range"], reqs


def test_permanent_failure_fails_after_the_retries(quirky, retries):
    retries(1)
    url = quirky.url(f"fail/503/65536/{COG}?permanent")
    with rasterloader.open(url) as ds:
        with pytest.raises(errors.RasterIOError) as ei:
            ds.read(window=WIN)
    msg = str(ei.value)
    assert "HTTP 503 Service Unavailable" in msg and "after 1 retry, GDAL_HTTP_MAX_RETRY" in msg, msg
    quirky.settle()
    assert len(_range_requests(quirky, url)) == 2


def test_not_found_is_not_retried(quirky, retries):
    retries(None)
    url = quirky.url(f"fail/404/65536/{COG}?not-retried")
    with rasterloader.open(url) as ds:
        with pytest.raises(errors.RasterIOError):
            ds.read(window=WIN)
    quirky.settle()
    assert len(_range_requests(quirky, url)) == 1


def test_other_bytes_than_asked_never_reach_a_pixel(quirky, retries):
    """A 206 whose Content-Range is not the range asked (a proxy or cache
    that mixed answers up) is refused, retried, and fails naming it."""
    retries(1)
    url = quirky.url(f"shift/65536/{COG}?shift")
    with rasterloader.open(url) as ds:
        with pytest.raises(errors.RasterIOError) as ei:
            ds.read(window=WIN)
    assert "other bytes than the range asked" in str(ei.value), str(ei.value)
    quirky.settle()
    assert len(_range_requests(quirky, url)) == 2


def _smallest_tile(name):
    """(its byte offset, its window) of the smallest tile of a fixture: a
    tile under GDAL's 16 KiB download chunk."""
    tifffile = pytest.importorskip("tifffile")
    with tifffile.TiffFile(os.path.join(FIXTURE_DIR, name)) as tf:
        page = tf.pages[0]
        offs, counts = page.tags["TileOffsets"].value, page.tags["TileByteCounts"].value
        w, h, tw, th = page.imagewidth, page.imagelength, page.tilewidth, page.tilelength
    i = min((k for k in range(len(counts)) if counts[k]), key=lambda k: counts[k])
    r, c = divmod(i, (w + tw - 1) // tw)
    return offs[i], ((r * th, min(h, r * th + th)), (c * tw, min(w, c * tw + tw)))


@pytest.mark.parametrize("reader", [None, "gdal"])
def test_short_body_of_a_small_tile_is_not_stuck(quirky, retries, rl, reader):
    """The regression: GDAL 3.6's /vsicurl/ cached the half body of a tile
    smaller than its 16 KiB chunk as the file's bytes, so every later read of
    that tile failed without a request, whatever GDAL_HTTP_MAX_RETRY said.
    Now the native reader retries it (GDAL_HTTP_MAX_RETRY=3: the first read
    succeeds) and the GDAL reader's next read asks the server again."""
    name = "cog_i16_zstd_pred2_tile256_pixel_1b_1000x777.tif"
    off, win = _smallest_tile(name)
    retries(3)
    url = quirky.url(f"once/short/{off // 16384 * 16384}/{name}?small-{reader}")
    want = rl(name).read(window=win)
    with rasterloader.open(url, reader=reader) as ds:
        if reader is None:
            assert_same(ds.read(window=win), want)
        else:
            with pytest.raises(errors.RasterIOError):
                ds.read(window=win)
        assert_same(ds.read(window=win), want)
        assert_same(ds.read(window=win), want)
