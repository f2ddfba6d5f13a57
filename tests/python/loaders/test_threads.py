"""Threads: C reads release the GIL, threads share one dataset, close() races reads.

No test here depends on timing (README, "Tests never depend on timing").
That a read releases the GIL is shown by a read whose bytes only a Python
thread of this process can serve (the python_httpd fixture): it completes
only if the reading thread let that thread run.  Races (close during reads, a read waiting for a full
pool) are driven by events the threads signal, with generous timeouts as
deadlock guards only.
"""

import threading

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

import rasterloader
from conftest import sample_dir, wait_until

SCENE = "scene_a.tif"
WIN = ((0, 256), (0, 256))
FAR_WIN = ((512, 768), (512, 768))     # past the header: the read must fetch tiles


def oracle(window=WIN):
    (r0, r1), (c0, c1) = window
    with rasterio.open(f"{sample_dir()}/{SCENE}") as src:
        return src.read(window=Window(c0, r0, c1 - c0, r1 - r0))


def run_threads(fn, threads=2, n=12):
    """fn() n times on each of 'threads' threads started together; re-raises
    the first failure."""
    barrier = threading.Barrier(threads)
    errors = []

    def worker():
        try:
            barrier.wait()
            for _ in range(n):
                fn()
        except BaseException as e:   # pragma: no cover - surfaced below
            errors.append(e)

    ths = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    assert not errors, errors


def _read_into_array(ds):
    out = np.empty((ds.count, 256, 256), ds.dtypes[0])
    return ds.read(window=FAR_WIN, out=out)


def _read_hwc_pooled(ds):
    with ds.read_hwc(window=FAR_WIN, pool=rasterloader.BufferPool(64 << 20)) as t:
        return np.moveaxis(np.from_dlpack(t).copy(), -1, 0)


@pytest.mark.parametrize("reader", ["native", "gdal"])
@pytest.mark.parametrize("call", [_read_into_array, _read_hwc_pooled], ids=["read_out", "read_hwc_pool"])
def test_reads_release_the_gil(python_httpd, reader, call):
    """With the GIL held for the whole C read, the server thread could never
    send the tiles this read waits for: it would fail at GDAL_HTTP_TIMEOUT."""
    with rasterloader.open(python_httpd.sample_url(SCENE), reader=reader) as ds:
        before = python_httpd.mark()
        got = call(ds)
    python_httpd.wait_logged(before + 1, timeout=60)      # logged just after it answers
    assert len(python_httpd.requests(before)) >= 1         # the read did ask the server
    assert np.array_equal(got, oracle(FAR_WIN))


def test_tile_reads_on_two_threads_agree():
    ds = rasterloader.open(f"{sample_dir()}/{SCENE}")
    pool = rasterloader.BufferPool(64 << 20)
    want = np.moveaxis(oracle(((0, 512), (0, 512))), 0, -1).astype(np.float32)

    def read():
        with ds.read_hwc(window=((0, 512), (0, 512)), pool=pool, out_dtype="float32") as t:
            assert np.array_equal(t.numpy(), want)

    run_threads(read, n=8)
    assert pool.stats()["bytes_in_use"] == 0
    ds.close()


def test_many_threads_share_one_dataset():
    ds = rasterloader.open(f"{sample_dir()}/{SCENE}")
    want = oracle(((100, 164), (200, 264)))
    results = []
    run_threads(lambda: results.append(np.array_equal(ds.read(window=((100, 164), (200, 264))), want)),
                threads=8, n=20)
    assert len(results) == 160 and all(results)
    ds.close()


def test_close_while_other_thread_reads():
    """close() on one thread while another reads: every read gives the
    oracle's pixels or raises ClosedError, never a crash or other pixels (the
    read holds its own C reference), and once a read has seen the close every
    later one does.  The reader signals after its first read and keeps
    reading until told to stop, so the close lands while it is reading
    however fast a read is (a warm tile cache made the old 5 ms sleep too
    long: 50 reads finished before the close)."""
    want = oracle()
    ds = rasterloader.open(f"{sample_dir()}/{SCENE}")
    first_read, saw_closed, stop = threading.Event(), threading.Event(), threading.Event()
    outcomes, errors = [], []

    def reader():
        try:
            while not stop.is_set():
                try:
                    got = ds.read(window=WIN)
                    outcomes.append("ok" if np.array_equal(got, want) else "wrong pixels")
                except rasterloader.errors.ClosedError:
                    outcomes.append("closed")
                    saw_closed.set()
                first_read.set()
        except BaseException as e:   # pragma: no cover - surfaced below
            errors.append(e)
        finally:
            first_read.set()
            saw_closed.set()

    t = threading.Thread(target=reader)
    t.start()
    try:
        assert first_read.wait(60), "deadlock guard: no first read in 60 s"
        ds.close()
        assert saw_closed.wait(60), "deadlock guard: the reader never saw the close"
    finally:
        stop.set()
        t.join(60)
    assert not t.is_alive() and not errors, errors
    assert outcomes[0] == "ok" and set(outcomes) <= {"ok", "closed"}, outcomes
    first_closed = outcomes.index("closed")
    assert set(outcomes[first_closed:]) == {"closed"}, outcomes


def test_pool_wait_releases_gil():
    """A read blocked on a full pool waits without the GIL: this thread keeps
    running Python (it polls the pool's count of waits) and releases the held
    tile, which unblocks it.  Were the GIL held, the poll could not run and
    the blocked read would fail at its timeout, the deadlock guard."""
    ds = rasterloader.open(f"{sample_dir()}/{SCENE}")
    pool = rasterloader.BufferPool(256 * 256 * 4 * 2)
    held = ds.read_hwc(window=WIN, pool=pool)
    got, errors = {}, []

    def blocked_reader():
        try:
            with ds.read_hwc(window=WIN, pool=pool, timeout=60) as t:
                got["tile"] = np.from_dlpack(t).copy()
        except BaseException as e:   # pragma: no cover - surfaced below
            errors.append(e)

    t = threading.Thread(target=blocked_reader)
    t.start()
    wait_until(lambda: pool.stats()["waits"] >= 1 or not t.is_alive(), "the reader waiting for the pool")
    assert "tile" not in got and not errors        # the pool is full until the release below
    held.release()
    t.join(60)
    assert not t.is_alive() and not errors, errors
    assert np.array_equal(got["tile"], np.moveaxis(oracle(), 0, -1))
    assert pool.stats()["waits"] >= 1
    ds.close()
