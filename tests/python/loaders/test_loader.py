"""BatchLoader and the torch Datasets: pixels, zero copies, pool back-pressure and
release, errors naming the sample, DataLoader workers.

Every batch is compared with single reads of the same windows (read_hwc, which
the read suites prove equal to rasterio), so the batch path cannot drift."""

import gc
import os

import numpy as np
import pytest
import torch
from rasterio.windows import Window

import rasterloader
from rasterloader import _core, _ring
from rasterloader.errors import CorruptError, InvalidArgumentError, PoolTimeoutError
from rasterloader.torch import BatchDataset, WindowDataset, dataloader
from conftest import fixture_path, sample_dir, wait_until

MEAN = [900.0, 1100.0, 1300.0, 2500.0]
STD = [300.0, 350.0, 400.0, 700.0]


@pytest.fixture(scope="module")
def scenes():
    d = sample_dir()
    return [(os.path.join(d, "scene_a.tif"), os.path.join(d, "scene_a_label.tif")),
            (os.path.join(d, "scene_b.tif"), None)]


@pytest.fixture(scope="module")
def windows(scenes):
    return rasterloader.RandomWindows(scenes, 96, 40, seed=3)


def expected(sample, *, mean=MEAN, std=STD, bands=None, boundless=False):
    """One sample the slow way: single reads of the image and its mask."""
    image, mask, window = sample
    with rasterloader.open(image) as ds:
        img = ds.read_hwc(window=window, indexes=bands, mean=mean, std=std, boundless=boundless)
        img = np.from_dlpack(img).copy()
        if mask is not None:
            with rasterloader.open(mask) as lab:
                m = lab.read(1, window=window, boundless=boundless)
        else:
            m = ds.dataset_mask(window=window, boundless=boundless)
    return img, m


def pool_idle(pool):
    gc.collect()
    s = pool.stats()
    return s["buffers_outstanding"] == 0 and s["bytes_in_use"] == 0


# ---------------------------------------------------------------- pixels

def test_batches_equal_single_reads(windows):
    loader = rasterloader.BatchLoader(windows, 8, mean=MEAN, std=STD, shuffle=True, seed=5,
                                      threads=2)
    seen = []
    for batch in loader:
        img, mask = batch.numpy()
        assert img.shape == (len(batch), 96, 96, 4) and img.dtype == np.float32
        assert mask.shape == (len(batch), 96, 96) and mask.dtype == np.uint8
        for k, i in enumerate(batch.indices):
            want_img, want_mask = expected(windows[i])
            assert img[k].tobytes() == want_img.tobytes(), f"sample {i}"
            assert np.array_equal(mask[k], want_mask), f"mask of sample {i}"
        seen.extend(batch.indices)
    assert sorted(seen) == list(range(len(windows)))
    del batch, img, mask
    assert pool_idle(loader.pool)
    loader.close()


def test_bands_dtype_and_window_forms(scenes):
    image, label = scenes[0]
    samples = [(image, label, Window(10, 20, 64, 48)),
               (image, None, ((100, 148), (30, 94))),         # ((r0, r1), (c0, c1))
               (image, label, (500, 600, 64, 48))]            # flat (col, row, w, h)
    loader = rasterloader.BatchLoader(samples, 3, bands=[4, 2], out_dtype="uint16",
                                      prefetch=0)
    (batch,) = list(loader)
    img, mask = batch.numpy()
    assert img.dtype == np.uint16 and img.shape == (3, 48, 64, 2)
    with rasterloader.open(image) as ds:
        for k, w in enumerate([Window(10, 20, 64, 48), Window(30, 100, 64, 48),
                               Window(500, 600, 64, 48)]):
            assert np.array_equal(img[k], ds.read([4, 2], window=w).transpose(1, 2, 0))
    assert np.array_equal(mask[1], np.full((48, 64), 255, np.uint8))
    loader.close()


def test_boundless_and_no_masks(scenes):
    image, label = scenes[0]
    samples = [(image, label, Window(-20, -10, 64, 64)), (image, label, Window(1000, 1000, 64, 64))]
    loader = rasterloader.BatchLoader(samples, 2, boundless=True, fill_value=0, mean=MEAN,
                                      std=STD, prefetch=0)
    (batch,) = list(loader)
    img, mask = batch.numpy()
    for k in range(2):
        want_img, want_mask = expected(samples[k], boundless=True)
        assert img[k].tobytes() == want_img.tobytes()
        assert np.array_equal(mask[k], want_mask)
    assert mask[0, 0, 0] == 0 and mask[1, -1, -1] == 0
    batch.release()
    loader2 = rasterloader.BatchLoader(samples, 2, boundless=True, masks=False, prefetch=0)
    (b2,) = list(loader2)
    assert b2.mask is None and b2.image.shape == (2, 64, 64, 4)


# ---------------------------------------------------------------- zero copy and the pool

def test_batch_tensors_share_the_pool_buffer(windows):
    loader = rasterloader.BatchLoader(windows, 8, mean=MEAN, std=STD, prefetch=0)
    it = iter(loader)
    batch = next(it)
    stats = loader.pool.stats()
    assert stats["buffers_outstanding"] == 2
    x = torch.from_dlpack(batch.image)
    y = torch.from_dlpack(batch.mask)
    a = np.from_dlpack(batch.image)
    assert x.data_ptr() == batch.image.data_ptr == a.ctypes.data
    assert y.data_ptr() == batch.mask.data_ptr
    assert x.shape == (8, 96, 96, 4) and y.shape == (8, 96, 96)
    chw, m2 = batch.torch()                      # a permuted view, same memory
    assert chw.shape == (8, 4, 96, 96) and chw.data_ptr() == x.data_ptr()
    block = loader.pool.stats()["bytes_in_use"]
    del batch, chw, m2, a, it
    gc.collect()
    # The tensors alone keep the memory; nothing was copied out of the pool.
    assert loader.pool.stats()["buffers_outstanding"] == 2
    assert loader.pool.stats()["bytes_in_use"] == block
    del x
    gc.collect()
    assert loader.pool.stats()["buffers_outstanding"] == 1
    del y
    assert pool_idle(loader.pool)
    # Steady epochs reuse the same blocks (after one epoch: the loop holds the
    # previous batch while the next is read).
    for epoch in range(3):
        if epoch == 1:
            mallocs = loader.pool.stats()["block_mallocs"]
        for batch in loader:
            torch.from_dlpack(batch.image).sum()
    del batch
    assert loader.pool.stats()["block_mallocs"] == mallocs
    assert pool_idle(loader.pool)


def test_prefetch_is_bounded_by_the_pool(windows):
    loader = rasterloader.BatchLoader(windows, 4, mean=MEAN, std=STD, prefetch=2, timeout=0.5)
    budget = loader.pool.budget_bytes
    assert budget == 5 * loader.batch_nbytes(4)       # prefetch + 3 batches
    hoard = []
    with pytest.raises(PoolTimeoutError) as ei:
        for batch in loader:                           # keeps every batch: memory would grow
            hoard.append(batch)
    assert "stayed full" in str(ei.value) and "drop them" in str(ei.value)
    assert len(hoard) <= 5
    stats = loader.pool.stats()
    assert stats["peak_bytes_in_use"] <= budget and stats["waits"] >= 1
    del hoard, batch
    assert pool_idle(loader.pool)
    # A consumer that lets go runs through the epoch within the same budget.
    n = sum(len(b) for b in loader)
    assert n == len(windows)
    assert loader.pool.stats()["peak_bytes_in_use"] <= budget


def test_prefetch_runs_while_the_consumer_works(windows):
    """The prefetch thread reads ahead while the consumer works: a consumer
    that takes its time (here: waiting, in Python, until the queue holds the
    next batch) finds that batch ready, and next() hands it over.  Events,
    not a sleep and a stopwatch: the read ahead is observed, not assumed."""
    loader = rasterloader.BatchLoader(windows, 8, mean=MEAN, std=STD, prefetch=2, threads=1)
    plan = loader.plan()
    it = iter(loader)
    next(it).release()
    wait_until(lambda: it._q.qsize() >= 1, "the next batch read ahead")   # the "training step"
    batch = next(it)
    assert list(batch.indices) == list(plan[1])
    want = loader.read(plan[1])
    assert all(np.array_equal(a, b) for a, b in zip(batch.numpy(), want.numpy()))
    batch.release()
    want.release()
    it.close()
    gc.collect()
    assert pool_idle(loader.pool)


def test_abandoned_iterator_releases_its_batches(windows):
    loader = rasterloader.BatchLoader(windows, 4, prefetch=3)
    for batch in loader:
        break
    del batch
    gc.collect()
    # The reader thread releases what it queued once it notices the stop.
    wait_until(lambda: pool_idle(loader.pool), "every batch released")


def test_read_into_tensors_and_arrays(windows):
    loader = rasterloader.BatchLoader(windows, 5, mean=MEAN, std=STD, prefetch=0)
    idx = [3, 1, 4, 1, 5]
    pooled = loader.read(idx)
    want_img, want_mask = pooled.numpy()
    out = torch.empty((5, 4, 96, 96), dtype=torch.float32)
    mout = torch.empty((5, 96, 96), dtype=torch.uint8)
    loader.read_into(idx, out, mout, layout="bchw")
    assert np.array_equal(out.permute(0, 2, 3, 1).numpy(), want_img)
    assert np.array_equal(mout.numpy(), want_mask)
    arr = np.empty((5, 96, 96, 4), np.float64)         # another dtype: converted in the read
    loader.read_into(idx, arr)
    assert np.allclose(arr, want_img, rtol=1e-6)
    with pytest.raises(ValueError, match="outermost"):
        loader.read_into(idx, torch.empty((1, 96, 96, 4)).expand(5, 96, 96, 4))
    with pytest.raises(ValueError, match="shape"):
        loader.read_into(idx, np.empty((4, 96, 96, 4), np.float32))


# ---------------------------------------------------------------- errors

def test_failing_sample_is_named_and_released(scenes):
    image, label = scenes[0]
    bad = fixture_path("corrupt_tile.tif")            # tile 4 (rows/cols 256..511) is garbage
    samples = [(image, label, Window(0, 0, 64, 64)), (image, None, Window(64, 0, 64, 64)),
               (bad, None, Window(300, 300, 64, 64)), (image, label, Window(0, 64, 64, 64))]
    loader = rasterloader.BatchLoader(samples, 4, bands=[1, 2, 3], prefetch=1)
    with pytest.raises(CorruptError) as ei:
        list(loader)
    e = ei.value
    assert e.index == 2
    msg = str(e)
    assert "batch sample 2 of 4" in msg and "corrupt_tile.tif" in msg
    assert "window (col 300, row 300, 64x64)" in msg
    assert pool_idle(loader.pool)


def test_mixed_window_sizes_are_refused(scenes):
    image, label = scenes[0]
    samples = [(image, label, Window(0, 0, 64, 64)), (image, label, Window(0, 0, 64, 32))]
    loader = rasterloader.BatchLoader(samples, 2, prefetch=0)
    with pytest.raises(InvalidArgumentError) as ei:
        list(loader)
    assert ei.value.index == 1 and "one shape" in str(ei.value)
    assert loader.pool.stats()["acquires"] == 0


# ---------------------------------------------------------------- torch datasets

def test_window_dataset_single_samples(windows):
    ds = WindowDataset(windows, mean=MEAN, std=STD)
    s = ds[7]
    want_img, want_mask = expected(windows[7])
    assert s["image"].shape == (4, 96, 96) and s["image"].dtype == torch.float32
    assert np.array_equal(s["image"].permute(1, 2, 0).numpy(), want_img)
    assert np.array_equal(s["mask"].numpy(), want_mask)
    hwc = WindowDataset(windows, mean=MEAN, std=STD, layout="hwc", return_type="tuple")
    img, mask = hwc[7]
    assert img.shape == (96, 96, 4) and np.array_equal(img.numpy(), want_img)
    batch = ds[[7, 8]]
    assert batch["image"].shape == (2, 4, 96, 96)
    assert torch.equal(batch["image"][0], s["image"])
    assert torch.equal(batch["index"], torch.tensor([7, 8]))


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_modes_give_the_same_batches(windows, workers):
    """BatchDataset in workers, WindowDataset batched and per-sample through a
    DataLoader, and the in-process BatchLoader: identical batches, in order."""
    loader = rasterloader.BatchLoader(windows, 8, mean=MEAN, std=STD, shuffle=True, seed=9)
    ref = [(b.indices, *[t.copy() for t in b.numpy()]) for b in loader]
    ctx = "fork" if workers else None
    bd = BatchDataset(windows, 8, mean=MEAN, std=STD, shuffle=True, seed=9)
    got = list(torch.utils.data.DataLoader(bd, batch_size=None, num_workers=workers,
                                           multiprocessing_context=ctx))
    assert len(got) == len(ref) == len(bd)
    for g, (idx, img, mask) in zip(got, ref):
        assert tuple(g["index"].tolist()) == idx
        assert np.array_equal(g["image"].permute(0, 2, 3, 1).numpy(), img)
        assert np.array_equal(g["mask"].numpy(), mask)
        if workers:
            # shared memory: a slot of a worker's batch ring, or a fresh shared tensor
            assert all(_ring.in_ring(t) or t.is_shared() for t in (g["image"], g["mask"]))
    wd = WindowDataset(windows, mean=MEAN, std=STD)
    got = list(dataloader(wd, 8, shuffle=True, seed=9, num_workers=workers,
                          multiprocessing_context=ctx))
    assert [tuple(g["index"].tolist()) for g in got] == [r[0] for r in ref]
    assert np.array_equal(got[1]["image"].permute(0, 2, 3, 1).numpy(), ref[1][1])
    per_sample = torch.utils.data.DataLoader(wd, batch_size=8, num_workers=workers,
                                             multiprocessing_context=ctx)
    first = next(iter(per_sample))
    want = np.stack([expected(windows[i])[0] for i in range(8)])
    assert np.array_equal(first["image"].permute(0, 2, 3, 1).numpy(), want)
    loader.close()


def test_datasets_and_loaders_pickle(windows):
    """spawn/forkserver DataLoader workers get pickled copies that reopen files."""
    import pickle
    loader = rasterloader.BatchLoader(windows, 4, mean=MEAN, std=STD, prefetch=0)
    want = loader.read([0, 1]).numpy()[0].copy()
    copy = pickle.loads(pickle.dumps(loader))
    assert np.array_equal(copy.read([0, 1]).numpy()[0], want)
    assert copy.pool is not loader.pool
    wd = pickle.loads(pickle.dumps(WindowDataset(windows, mean=MEAN, std=STD)))
    assert np.array_equal(wd[0]["image"].permute(1, 2, 0).numpy(), want[0])
    bd = pickle.loads(pickle.dumps(BatchDataset(windows, 4, mean=MEAN, std=STD)))
    assert next(iter(bd))["image"].shape == (4, 4, 96, 96)


def test_batch_read_releases_the_gil(python_httpd):
    """A batch read (on its decode thread) waits for tiles that only a Python
    thread of this process serves (python_httpd): it completes only if the
    read released the GIL.  The tile cache is off so every tile is fetched
    and decoded; the batch equals the same batch of the local file."""
    budget = rasterloader.tile_cache_stats()["budget_bytes"]
    rasterloader.set_tile_cache_budget(0)
    try:
        url, local = python_httpd.sample_url("scene_a.tif"), os.path.join(sample_dir(), "scene_a.tif")
        remote = rasterloader.BatchLoader(rasterloader.RandomWindows([(url, None)], 96, 40, seed=3), 40,
                                          prefetch=0, threads=1)
        before = python_httpd.mark()
        got = remote.read(list(range(40)))
        python_httpd.wait_logged(before + 1, timeout=60)
        assert len(python_httpd.requests(before)) >= 1
        want = rasterloader.BatchLoader(rasterloader.RandomWindows([(local, None)], 96, 40, seed=3), 40,
                                        prefetch=0).read(list(range(40)))
        assert all(np.array_equal(a, b) for a, b in zip(got.numpy(), want.numpy()))
        got.release()
        want.release()
    finally:
        rasterloader.set_tile_cache_budget(budget)


class _ThreadsSeen(torch.utils.data.Dataset):
    """A WindowDataset item plus the worker process's per-read decode threads."""

    def __init__(self, inner):
        self.inner = inner

    def __len__(self):
        return 4

    def __getitem__(self, i):
        item = self.inner[i]
        return torch.tensor(rasterloader.get_threads()), item["image"].shape[0]


@pytest.mark.parametrize("threads,want", [(None, 1), (2, 2)])
def test_workers_read_single_threaded_unless_told(windows, threads, want):
    """In a DataLoader worker the workers are the parallelism: a dataset not
    given threads sets its worker's per-read decode threads to 1 (the main
    process keeps its own setting)."""
    before = rasterloader.get_threads()
    rasterloader.set_threads(2)
    try:
        wd = _ThreadsSeen(WindowDataset(windows, mean=MEAN, std=STD, threads=threads))
        seen = [int(t) for t, _ in torch.utils.data.DataLoader(
            wd, batch_size=None, num_workers=2, multiprocessing_context="fork")]
        assert seen == [want] * 4
        assert rasterloader.get_threads() == 2
    finally:
        rasterloader.set_threads(0 if before == rasterloader.get_threads() else before)
