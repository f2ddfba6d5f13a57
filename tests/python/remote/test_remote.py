"""Remote reads: rasterloader over HTTP, against a real nginx on 127.0.0.1.

The server (tests/remote/httpd.py) is Debian's nginx serving the fixture
directory with Range support, started for this module and killed at the end;
its access log ("$request" and "$http_range" per request) is how requests are
counted.  A tiny Python server thread stands in for behaviour nginx cannot
produce on demand: slow answers, truncated bodies, failures after the header,
answers that fail a few times and then succeed.

- Pixels read over HTTP are bit-identical to the same reads of the local file
  (rasterloader and rasterio), for COG and tiled fixtures.
- A 256x256 window costs about one range request per touched tile after the
  header (upper bound asserted per window).
- 404, 500, timeouts and truncated bodies raise RasterIOError (an OSError)
  naming the URL, and GDAL_HTTP_MAX_RETRY / GDAL_HTTP_RETRY_DELAY are
  honoured: the retries show up in the server's log.

Only loopback addresses are used.
"""

import itertools
import multiprocessing
import os
import sys
import threading

import numpy as np
import pytest
import rasterio

import rasterloader
from rasterloader import errors
from conftest import FIXTURE_DIR, GOOD, ROOT, assert_same, fixture_path

sys.path.insert(0, os.path.join(ROOT, "tests", "remote"))
import httpd  # noqa: E402

pytestmark = pytest.mark.skipif(not httpd.Nginx.available(),
                                reason="nginx is not installed (Debian: nginx-light; make sysdeps)")

# The GDAL settings a remote reader wants (README, "Remote COGs"): no directory
# listing on open (GDAL would look for .aux.xml/.ovr/.msk siblings), only
# .tif URLs go to the network, no retries unless a test asks for them.
GDAL_ENV = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff",
    "GDAL_HTTP_MAX_RETRY": "0",
    "GDAL_HTTP_RETRY_DELAY": "0.05",
    "GDAL_HTTP_TIMEOUT": "20",
}

COGS = [e["name"] for e in GOOD if e["cog"]]
# COGs plus tiled files covering codecs, band interleave, BigTIFF big-endian,
# sparse tiles, internal masks, uncompressed tiles; and one strip file.
TILED = COGS + [
    "u8_deflate_pred2_tile512_band_3b_1024x768.tif",
    "u16_packbits_tile256_pixel_4b_700x531.tif",
    "f32_lzw_pred3_tile256_band_3b_700x531.tif",
    "i16_deflate_pred2_tile512_band_3b_1000x777_bigtiff_be.tif",
    "u16_deflate_pred2_tile256_pixel_1b_1000x777_sparse.tif",
    "u8_deflate_pred2_tile256_pixel_3b_700x531_mask_internal.tif",
    "f64_lzw_pred2_tile256_pixel_1b_257x513_be.tif",
    "u16_none_tile512_pixel_4b_512x512.tif",
    "u16_zstd_pred1_strip16_band_3b_700x531.tif",
]
READERS = ["gdal", "native"]
# A "slow" answer of the Python server: 30 times GDAL_HTTP_TIMEOUT (1 s in
# the timeout tests), so the timeout fires first however loaded the machine.
SLOW_MS = 30000
_bust = itertools.count()


@pytest.fixture(scope="module", autouse=True)
def gdal_env():
    old = {k: os.environ.get(k) for k in GDAL_ENV}
    os.environ.update(GDAL_ENV)
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def nginx():
    with httpd.Nginx(FIXTURE_DIR) as s:
        yield s


@pytest.fixture(scope="module")
def quirky():
    with httpd.Quirky(FIXTURE_DIR) as s:
        yield s


def fresh(url):
    """The same file under a URL GDAL has not seen (its /vsicurl/ cache is
    keyed by URL; nginx ignores the query)."""
    return f"{url}?n={next(_bust)}"


def windows_for(w, h):
    """Tile-aligned, straddling, the partial bottom-right corner, a 1x1, and a tall thin one."""
    out = [((0, min(256, h)), (0, min(256, w))),
           ((min(300, h - 1), min(556, h)), (min(300, w - 1), min(556, w))),
           ((max(0, h - 200), h), (max(0, w - 230), w)),
           ((h // 2, h // 2 + 1), (w // 3, w // 3 + 1)),
           ((0, h), (w // 2, min(w, w // 2 + 20)))]
    return out


def touched_blocks(ds, win):
    (r0, r1), (c0, c1) = win
    bh, bw = ds.block_shapes[0]
    n = ((c1 - 1) // bw - c0 // bw + 1) * ((r1 - 1) // bh - r0 // bh + 1)
    return n * (ds.count if ds.profile.get("interleave") == "band" else 1)


def touched_rows(ds, win):
    (r0, r1), _ = win
    bh = ds.block_shapes[0][0]
    return ((r1 - 1) // bh - r0 // bh + 1) * (ds.count if ds.profile.get("interleave") == "band" else 1)


def of_url(reqs, url):
    """The requests for 'url' (path and query): a server logs just after it
    answers, so a line of an earlier test can arrive late."""
    target = "/" + url.split("/", 3)[3]
    return [r for r in reqs if r["path"] == target]


def gets(reqs):
    return [r for r in reqs if r["method"] == "GET"]


# ------------------------------------------------------------------ URL forms

def test_url_forms_open_the_same_raster(nginx):
    name = COGS[0]
    url = nginx.url(name)
    local = rasterloader.open(fixture_path(name))
    for u in (url, "/vsicurl/" + url, url.replace("http://", "HTTP://", 1)):
        with rasterloader.open(u) as ds:
            assert ds.name == u                  # the name is what the caller gave
            assert (ds.width, ds.height, ds.count, ds.dtypes) == \
                (local.width, local.height, local.count, local.dtypes)
            assert ds.transform == local.transform and ds.crs == local.crs
            assert ds.block_shapes == local.block_shapes


# ------------------------------------------------------------------ pixels

@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("name", TILED)
def test_pixels_equal_local_reads(nginx, rio, rl, name, reader):
    with rasterloader.open(nginx.url(name), reader=reader) as ds:
        assert ds.reader == reader
        for win in windows_for(ds.width, ds.height):
            got = ds.read(window=win)
            assert_same(got, rl(name).read(window=win))
            assert_same(got, rio(name).read(window=win))
        win = windows_for(ds.width, ds.height)[1]
        assert_same(ds.read(1, window=win, out_dtype="float32"),
                    rio(name).read(1, window=win, out_dtype="float32"))
        assert_same(ds.read_masks(1, window=win), rio(name).read_masks(1, window=win))
        assert_same(ds.dataset_mask(window=win), rio(name).dataset_mask(window=win))
        # boundless: the outside is filled without touching the network
        w, h = ds.width, ds.height
        bwin = ((h - 40, h + 24), (-16, 48))
        assert_same(ds.read(window=bwin, boundless=True, fill_value=7),
                    rl(name).read(window=bwin, boundless=True, fill_value=7))
        tile = ds.read_hwc(window=win)
        assert np.array_equal(np.from_dlpack(tile), np.moveaxis(rio(name).read(window=win), 0, -1))
        tile.release()


@pytest.mark.parametrize("reader", READERS)
def test_threads_share_one_remote_dataset(nginx, rio, reader):
    name = COGS[0]
    ds = rasterloader.open(fresh(nginx.url(name)), reader=reader)
    ref = rio(name)
    wins = [((r, r + 256), (c, c + 256)) for r in range(0, 768, 192) for c in range(0, 768, 192)]
    results, errs = {}, []

    def work(k):
        try:
            for i in range(k, len(wins), 4):
                results[i] = ds.read(window=wins[i])
        except Exception as e:          # pragma: no cover - reported below
            errs.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errs, errs
    for i, win in enumerate(wins):
        assert_same(results[i], ref.read(window=win))
    ds.close()


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork")
@pytest.mark.parametrize("reader", READERS)
def test_forked_child_reads_parent_dataset(nginx, rio, reader):
    """A DataLoader worker (forked) reads a remote dataset the parent opened and used."""
    name = COGS[1]
    ds = rasterloader.open(fresh(nginx.url(name)), reader=reader)
    ds.read(window=((0, 16), (0, 16)))
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    win = ((500, 756), (600, 856))

    def child():
        try:
            q.put(ds.read(window=win))
        except Exception as e:          # pragma: no cover
            q.put(e)

    p = ctx.Process(target=child)
    p.start()
    got = q.get(timeout=60)
    p.join(30)
    assert p.exitcode == 0
    assert not isinstance(got, Exception), got
    assert_same(got, rio(name).read(window=win))
    assert_same(ds.read(window=win), got)        # the parent is unaffected
    ds.close()


# ------------------------------------------------------------------ requests

@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("name", COGS)
def test_requests_per_window(nginx, name, reader):
    """Open reads the header once; then each 256x256 window costs at most
    one range request per touched tile (plus one for GDAL's lazily read
    tables), never a whole-file download; the native reader joins the tiles
    of a row into one range."""
    url = fresh(nginx.url(name))
    m = nginx.mark()
    ds = rasterloader.open(url, reader=reader)
    nginx.wait_logged(m + 1)
    opened = of_url(nginx.requests(m), url)
    assert len(opened) <= 3, opened                 # HEAD + the header (16 KiB)
    assert all(r["range"] or r["method"] == "HEAD" for r in opened), opened
    size = os.path.getsize(fixture_path(name))
    rng = np.random.default_rng(9)
    per_window = []
    for _ in range(8):
        r0 = int(rng.integers(0, ds.height - 256))
        c0 = int(rng.integers(0, ds.width - 256))
        win = ((r0, r0 + 256), (c0, c0 + 256))
        m = nginx.settle()
        ds.read(window=win)
        nginx.settle()
        reqs = gets(of_url(nginx.requests(m), url))
        assert all(r["status"] == 206 and r["range"] for r in reqs), reqs
        assert sum(r["nbytes"] for r in reqs) < size / 2, reqs
        assert len(reqs) <= touched_blocks(ds, win) + 1, (win, reqs)
        if reader == "native":      # neighbours coalesced: one range per tile row
            assert len(reqs) <= touched_rows(ds, win), (win, reqs)
        per_window.append(len(reqs))
    assert sum(per_window) >= 1
    ds.close()


# ------------------------------------------------------------------ failures

def test_404_is_io_error_naming_the_url(nginx):
    url = nginx.url("no_such_file.tif")
    with pytest.raises(errors.RasterIOError) as ei:
        rasterloader.open(url)
    assert isinstance(ei.value, OSError) and url in str(ei.value)
    assert "404" in str(ei.value)


@pytest.mark.parametrize("retries", [0, 2])
def test_500_on_open_follows_gdal_retry_settings(nginx, monkeypatch, retries):
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", str(retries))
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.05")
    url = fresh(nginx.url("status500/" + COGS[0]))
    m = nginx.mark()
    with pytest.raises(errors.RasterIOError) as ei:
        rasterloader.open(url)
    nginx.wait_logged(m + 1 + retries)
    reqs = of_url(nginx.requests(m), url)
    assert len(reqs) == 1 + retries and all(r["status"] == 500 for r in reqs), reqs
    assert url in str(ei.value) and "500" in str(ei.value)
    if retries:
        assert f"after {retries} retries" in str(ei.value)


def _fail_read(quirky, reader, window=((0, 256), (0, 256))):
    """Open a COG whose tile ranges answer 500, read a window; the exception
    and the requests the read made, in order."""
    url = fresh(quirky.url(f"fail/500/65536/{COGS[0]}"))
    ds = rasterloader.open(url, reader=reader)
    m = quirky.mark()
    with pytest.raises(errors.RasterIOError) as ei:
        ds.read(window=window)
    ds.close()
    assert isinstance(ei.value, OSError)
    # GDAL names the status when it retried or read several ranges at once;
    # a lone range read without retries only fails.
    assert url in str(ei.value), str(ei.value)
    if reader == "gdal" or os.environ["GDAL_HTTP_MAX_RETRY"] != "0":
        assert "500" in str(ei.value), str(ei.value)
    reqs = of_url(quirky.requests(m), url)
    assert reqs and all(r["status"] == 500 and r["range"] for r in reqs), reqs
    return ei.value, reqs


@pytest.mark.parametrize("reader", READERS)
def test_500_during_read_follows_gdal_retry_settings(quirky, monkeypatch, reader):
    """The header is served, tile ranges answer 500: the read fails with
    RasterIOError naming the URL.  GDAL_HTTP_MAX_RETRY adds that many
    requests per attempt (GDAL's reader may make two attempts per block)
    and the message says retries were spent; GDAL_HTTP_RETRY_DELAY spaces
    them."""
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "0")
    e0, r0 = _fail_read(quirky, reader)
    assert "retr" not in str(e0)
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "2")
    e2, r2 = _fail_read(quirky, reader)
    assert len(r2) >= len(r0) + 2, (r0, r2)
    assert "retries, GDAL_HTTP_MAX_RETRY" in str(e2), str(e2)
    if reader == "native":          # one range, read with VSIFReadL: exactly 1 + retries
        assert len(r0) == 1 and len(r2) == 3, (r0, r2)
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "1")
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.4")
    _, r1 = _fail_read(quirky, reader)
    # A lower bound on a delay GDAL sleeps: load can only lengthen it.
    assert r1[1]["t"] - r1[0]["t"] >= 0.35, r1


def test_flaky_server_succeeds_within_retries(quirky, rio, monkeypatch):
    name = COGS[0]
    url = fresh(quirky.url(f"flaky/2/{name}"))
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "0")
    with pytest.raises(errors.RasterIOError):
        rasterloader.open(url)
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "3")
    url = fresh(quirky.url(f"flaky/2/{name}"))
    m = quirky.mark()
    with rasterloader.open(url) as ds:
        assert_same(ds.read(window=((0, 100), (0, 100))), rio(name).read(window=((0, 100), (0, 100))))
    statuses = [r["status"] for r in of_url(quirky.requests(m), url)]
    assert statuses[:3] == [503, 503, 200], statuses


@pytest.mark.parametrize("reader", READERS)
def test_truncated_body_is_io_error(quirky, reader):
    url = fresh(quirky.url(f"truncate/65536/{COGS[0]}"))
    ds = rasterloader.open(url, reader=reader)
    with pytest.raises(errors.RasterIOError) as ei:
        ds.read(window=((256, 512), (256, 512)))
    assert url in str(ei.value)
    ds.close()


@pytest.mark.parametrize("reader", READERS)
def test_timeout_is_io_error(quirky, monkeypatch, reader):
    """The server answers tile reads after SLOW_MS, far past GDAL_HTTP_TIMEOUT:
    a read that did not give up at the timeout would succeed then, and fail
    pytest.raises (no stopwatch decides it)."""
    monkeypatch.setenv("GDAL_HTTP_TIMEOUT", "1")
    url = fresh(quirky.url(f"slow/{SLOW_MS}/65536/{COGS[1]}"))
    ds = rasterloader.open(url, reader=reader)
    with pytest.raises(errors.RasterIOError) as ei:
        ds.read(window=((0, 256), (0, 256)))
    assert url in str(ei.value)
    ds.close()


def test_timeout_on_open_is_io_error(quirky, monkeypatch):
    monkeypatch.setenv("GDAL_HTTP_TIMEOUT", "1")
    url = fresh(quirky.url(f"slow/{SLOW_MS}/0/{COGS[1]}"))
    with pytest.raises(errors.RasterIOError) as ei:
        rasterloader.open(url)
    assert url in str(ei.value) and "timed out" in str(ei.value)


def test_connection_refused_is_io_error():
    port = httpd.free_port()             # nobody listens there
    url = f"http://127.0.0.1:{port}/{COGS[0]}"
    with pytest.raises(errors.RasterIOError) as ei:
        rasterloader.open(url)
    assert url in str(ei.value)
