"""Batch rings (rasterloader/_ring.py): DataLoader workers read whole batches into
slots of a shared ring mapped once per process and hand them over by slot.

The oracle is rasterio: every batch a DataLoader yields (and every batch a
test keeps) is compared with rasterio's reads of its windows, normalised with
NumPy's expression, after the loop has ended, so a slot reused while its batch
was still held shows as wrong pixels.  The counts (ring_stats) are checked
against what the slot rule makes certain; nothing here depends on timing."""

import gc
import glob
import os
import signal

import numpy as np
import pytest
import rasterio
import torch
from torch.utils.data import DataLoader

import rasterloader
from rasterloader import _ring
from rasterloader.torch import BatchDataset, WindowDataset, dataloader
from conftest import sample_dir

MEAN = [900.0, 1100.0, 1300.0, 2500.0]
STD = [300.0, 350.0, 400.0, 700.0]
BATCH = 4


@pytest.fixture(scope="module")
def windows():
    d = sample_dir()
    scenes = [(os.path.join(d, "scene_a.tif"), os.path.join(d, "scene_a_label.tif")),
              (os.path.join(d, "scene_b.tif"), None)]
    return rasterloader.RandomWindows(scenes, 64, 48, seed=11)


def rasterio_sample(sample):
    """One sample by rasterio: HWC float32 normalised as NumPy does it, and the
    label band (or the image's validity mask without a label file)."""
    image, label, window = sample
    with rasterio.open(image) as src:
        x = src.read(window=window).transpose(1, 2, 0).astype(np.float64)
        x = ((x - np.array(MEAN)) / np.array(STD)).astype(np.float32)
        mask = src.dataset_mask(window=window) if label is None else None
    if label is not None:
        with rasterio.open(label) as lab:
            mask = lab.read(1, window=window)
    return x, mask


def assert_batch_is_rasterios(batch, windows, indices=None):
    """A dict batch (image [B,H,W,C], mask, index) equals rasterio's reads of
    ``indices`` (the plan's, known apart from the batch: the index tensor is
    in the slot too, so a slot overwritten by another batch would carry
    matching indices), or of its own indices."""
    if indices is not None:
        assert batch["index"].tolist() == list(indices)
    for k, i in enumerate(batch["index"].tolist()):
        x, m = rasterio_sample(windows[i])
        assert np.array_equal(batch["image"][k].numpy(), x), f"image of sample {i}"
        assert np.array_equal(batch["mask"][k].numpy(), m), f"mask of sample {i}"


def _ring_mapping_lines():
    with open("/proc/self/maps") as f:
        return [line for line in f if "rasterloader-ring-" in line]


_rings_before_test = set()


@pytest.fixture(autouse=True)
def _rings_of_earlier_tests():
    """The ring mappings this process has when a test starts: earlier tests'
    loaders (other files in the same pytest process) may keep theirs while
    their batches live; a test answers for its own only."""
    _rings_before_test.clear()
    _rings_before_test.update(_ring_mapping_lines())
    yield


def ring_mappings():
    """This test's mappings of ring files (/proc/self/maps, less what the
    process had when the test started): the oracle for 'the main process maps
    no ring', independent of the ring's own records."""
    return [line for line in _ring_mapping_lines() if line not in _rings_before_test]


def ring_files():
    return glob.glob(_ring.name_prefix() + "*")


def loader_for(ds, method, **kw):
    kw.setdefault("num_workers", 2)
    return DataLoader(ds, batch_size=None, multiprocessing_context=method, **kw)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_every_batch_is_rasterios_and_comes_through_the_ring(windows, method):
    """Two epochs with persistent workers; the loop holds each batch until the
    next one arrives (as `for b in loader` does).  Every batch equals rasterio;
    with the default slots (prefetch_factor 2 + the batch held + the previous
    one) no batch needs a fresh buffer, and each worker's ring is mapped once
    in this process."""
    ds = BatchDataset(windows, BATCH, layout="hwc", mean=MEAN, std=STD, shuffle=True, seed=3)
    loader = loader_for(ds, method, persistent_workers=True)
    seen = []
    for epoch in range(2):
        ds.set_epoch(epoch)
        for batch, indices in zip(loader, ds.loader.plan(0)):
            assert_batch_is_rasterios(batch, windows, indices)
            seen.append(batch["index"].tolist())
        assert ds.ring_stats()["rings_mapped"] == 2
    assert sorted(sum(seen, [])) == sorted(list(range(len(windows))) * 2)
    st = ds.ring_stats()
    assert st["ring_batches"] == 2 * len(ds) and st["fresh_batches"] == 0, st
    del batch, loader
    gc.collect()
    assert ds.ring_stats()["rings_mapped"] == 0 and ring_mappings() == []
    assert ring_files() == []


def test_held_batches_stay_correct_and_the_ring_falls_back(windows):
    """The user keeps every batch: each worker's ring runs dry after its slots,
    the rest come in fresh shared tensors (counted, with the reason), nothing
    blocks, and at the end every kept batch still equals rasterio."""
    ds = BatchDataset(windows, BATCH, layout="hwc", mean=MEAN, std=STD, ring_slots=3)
    loader = loader_for(ds, "fork", persistent_workers=True)
    kept = [b for _ in range(2) for b in loader]
    plan = ds.loader.plan(0) * 2                    # persistent workers stay at epoch 0
    assert len(kept) == len(plan)
    for batch, indices in zip(kept, plan):
        assert_batch_is_rasterios(batch, windows, indices)
    st = ds.ring_stats()
    assert st["ring_batches"] == 2 * 3, st                     # workers x slots, then dry
    assert st["fresh_batches"] == len(kept) - 6, st
    assert st["fresh_reasons"] == {"ring dry: all 3 slots held": len(kept) - 6}, st
    del kept, loader
    gc.collect()
    assert ds.ring_stats()["rings_mapped"] == 0 and ring_mappings() == []


def test_dropped_batches_free_their_slots(windows):
    """Two slots per worker, and each batch dropped before asking for the next:
    a slot is free again when its batch is gone, so a one-worker loader with
    prefetch_factor 1 uses the ring for every batch."""
    ds = BatchDataset(windows, BATCH, layout="hwc", mean=MEAN, std=STD, ring_slots=2)
    loader = loader_for(ds, "fork", num_workers=1, prefetch_factor=1)
    n = 0
    it = iter(loader)
    for batch in it:
        assert_batch_is_rasterios(batch, windows)
        del batch
        n += 1
    assert ds.ring_stats()["ring_batches"] == n == len(ds)
    assert ds.ring_stats()["fresh_batches"] == 0


def test_non_persistent_workers_tuples_and_the_window_dataset(windows):
    """New workers every epoch make new rings; the old ones are unmapped once
    their workers are gone.  return_type="tuple" and the batched WindowDataset
    (rasterloader.torch.dataloader) go through rings too."""
    ds = BatchDataset(windows, BATCH, layout="hwc", mean=MEAN, std=STD, return_type="tuple")
    ref = list(BatchDataset(windows, BATCH, layout="hwc", mean=MEAN, std=STD, return_type="tuple"))
    loader = loader_for(ds, "fork", persistent_workers=False)
    for _ in range(3):
        n = 0
        for (x, y), (wx, wy) in zip(loader, ref):
            assert torch.equal(x, wx) and torch.equal(y, wy)
            n += 1
        assert n == len(ref)
        del x, y
    st = ds.ring_stats()
    assert st["ring_batches"] == 3 * len(ds) and st["fresh_batches"] == 0, st
    assert st["rings_mapped"] <= 2, st                  # only the last epoch's may still be
    wd = WindowDataset(windows, layout="hwc", mean=MEAN, std=STD)
    for batch in dataloader(wd, BATCH, shuffle=True, seed=1, num_workers=2,
                            multiprocessing_context="fork"):
        assert_batch_is_rasterios(batch, windows)
    assert wd.ring_stats()["ring_batches"] == len(windows) // BATCH
    del loader, batch
    gc.collect()
    assert ds.ring_stats()["rings_mapped"] == 0 and ring_mappings() == []


def test_a_small_dev_shm_means_no_ring(windows, monkeypatch):
    """The room rule: the rings take at most half of /dev/shm's size (and of what
    is free), shared between the workers; under 2 slots, no ring, every batch
    fresh with the reason.  statvfs is replaced in this process before the
    workers fork, so they see a docker-sized 64 MB /dev/shm."""
    real = os.statvfs

    class Small:
        f_frsize, f_blocks, f_bavail = 4096, (64 << 20) // 4096, (60 << 20) // 4096

    monkeypatch.setattr(os, "statvfs", lambda p: Small() if p == _ring.SHM_DIR else real(p))
    slot = 4 * 64 * 64 * 4 + 2 * 4096 + 4096           # image, mask, index regions (pages)
    assert _ring.ring_slots_for(slot, 4, 2)[0] == 4     # 15 MiB per worker: 4 small slots
    assert _ring.ring_slots_for(7 << 20, 4, 2)[0] == 2  # 2 of 7 MiB
    n, reason = _ring.ring_slots_for(8 << 20, 4, 2)     # 1 of 8 MiB: none
    assert n == 0 and "under 2 slots" in reason, reason
    # One batch of all 48 windows resampled to 256x256: a 51 MiB slot (image 48, mask 3).
    ds = BatchDataset(windows, len(windows), layout="hwc", mean=MEAN, std=STD, out_shape=(256, 256))
    got = list(loader_for(ds, "fork"))
    st = ds.ring_stats()
    assert st["ring_batches"] == 0 and st["fresh_batches"] == len(got) == len(ds) == 1, st
    assert list(st["fresh_reasons"]) == ["no ring: /dev/shm (64 MiB, 60 MiB free) leaves 15 MiB "
                                         "per worker, under 2 slots of 51.0 MiB"], st


class KillingSamples:
    """Samples that SIGKILL the process reading sample ``kill_at`` in a DataLoader
    worker (an OOM kill, say)."""

    def __init__(self, windows, kill_at):
        self.windows, self.kill_at = windows, kill_at

    def __len__(self):
        return len(self.windows)

    def __getitem__(self, i):
        if i == self.kill_at and torch.utils.data.get_worker_info() is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.windows[i]


class RaisingSamples(KillingSamples):
    def __getitem__(self, i):
        if i == self.kill_at and torch.utils.data.get_worker_info() is not None:
            raise ValueError(f"bad sample {i}")
        return self.windows[i]


@pytest.mark.parametrize("how", ["killed", "exception"])
def test_a_failing_worker_leaves_no_ring_behind(windows, how):
    """A worker killed (or raising) mid-epoch, after batches came through its
    ring: the DataLoader raises; no ring file is left in /dev/shm, and once the
    loader is gone this process maps no ring."""
    cls = KillingSamples if how == "killed" else RaisingSamples
    samples = cls([windows[i] for i in range(len(windows))], kill_at=6 * BATCH)
    ds = BatchDataset(samples, BATCH, layout="hwc", mean=MEAN, std=STD)
    got = []
    with pytest.raises((RuntimeError, ValueError)) as e:
        for batch in loader_for(ds, "fork"):
            got.append(batch["index"].tolist())
    assert ("exited unexpectedly" if how == "killed" else "bad sample 24") in str(e.value)
    assert ds.ring_stats()["ring_batches"] >= 4, ds.ring_stats()
    assert ds.ring_stats()["rings_mapped"] >= 1          # the batch still held keeps its ring
    del e, batch
    gc.collect()
    assert ring_files() == []
    assert ds.ring_stats()["rings_mapped"] == 0 and ring_mappings() == []
