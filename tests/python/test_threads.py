"""The GIL is released around C reads: two threads reading one dataset overlap in time."""

import threading
import time

import numpy as np

import rasterloader
from conftest import sample_dir


def overlapping(intervals_a, intervals_b):
    return sum(1 for a0, a1 in intervals_a for b0, b1 in intervals_b if a0 < b1 and b0 < a1)


def run_two_threads(fn, n=12):
    """Run fn() n times on each of two threads; return the (start, end) of every call."""
    spans = [[], []]
    barrier = threading.Barrier(2)
    errors = []

    def worker(k):
        try:
            barrier.wait()
            for _ in range(n):
                t0 = time.perf_counter()
                fn()
                spans[k].append((t0, time.perf_counter()))
        except BaseException as e:   # pragma: no cover - surfaced below
            errors.append(e)

    ths = [threading.Thread(target=worker, args=(k,)) for k in (0, 1)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    assert not errors, errors
    return spans


def test_reads_overlap_in_time():
    """With the GIL held for the whole C read, two threads' reads could never overlap:
    each call's span would end before the other thread's next one starts."""
    ds = rasterloader.open(f"{sample_dir()}/scene_a.tif")
    out = [np.empty((ds.count, ds.height, ds.width), np.float32) for _ in range(2)]
    idx = {}

    def read():
        k = idx.setdefault(threading.get_ident(), len(idx))
        ds.read(out=out[k])

    a, b = run_two_threads(read)
    assert overlapping(a, b) > 0
    ds.close()


def test_tile_reads_overlap_and_agree():
    ds = rasterloader.open(f"{sample_dir()}/scene_a.tif")
    pool = rasterloader.BufferPool(64 << 20)
    want = np.moveaxis(ds.read(window=((0, 512), (0, 512))), 0, -1)

    def read():
        with ds.read_hwc(window=((0, 512), (0, 512)), pool=pool, out_dtype="float32") as t:
            assert np.array_equal(t.numpy(), want.astype(np.float32))

    a, b = run_two_threads(read, n=8)
    assert overlapping(a, b) > 0
    assert pool.stats()["bytes_in_use"] == 0
    ds.close()


def test_many_threads_share_one_dataset():
    ds = rasterloader.open(f"{sample_dir()}/scene_a.tif")
    want = ds.read(window=((100, 164), (200, 264)))
    results, errs = [], []

    def worker():
        try:
            for _ in range(20):
                results.append(np.array_equal(ds.read(window=((100, 164), (200, 264))), want))
        except BaseException as e:   # pragma: no cover
            errs.append(e)

    ths = [threading.Thread(target=worker) for _ in range(8)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    assert not errs and len(results) == 160 and all(results)
    ds.close()


def test_close_while_other_thread_reads():
    """close() on one thread while another reads: the read finishes or raises ClosedError,
    never crashes (the read holds its own C reference)."""
    ds = rasterloader.open(f"{sample_dir()}/scene_a.tif")
    outcomes = []

    def reader():
        for _ in range(50):
            try:
                ds.read(window=((0, 256), (0, 256)))
                outcomes.append("ok")
            except rasterloader.errors.ClosedError:
                outcomes.append("closed")

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.005)
    ds.close()
    t.join()
    assert set(outcomes) <= {"ok", "closed"} and outcomes[-1] == "closed"


def test_pool_wait_releases_gil():
    """A read blocked on a full pool waits without the GIL: another thread releases the
    held tile, which unblocks it."""
    ds = rasterloader.open(f"{sample_dir()}/scene_a.tif")
    pool = rasterloader.BufferPool(256 * 256 * 4 * 2)
    held = ds.read_hwc(window=((0, 256), (0, 256)), pool=pool)
    timer = threading.Timer(0.2, held.release)
    timer.start()
    t0 = time.perf_counter()
    t = ds.read_hwc(window=((0, 256), (0, 256)), pool=pool, timeout=10)
    assert 0.1 < time.perf_counter() - t0 < 5
    assert pool.stats()["waits"] >= 1
    t.release()
    timer.join()
    ds.close()
