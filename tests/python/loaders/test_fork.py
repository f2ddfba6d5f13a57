"""A dataset and a pool made before fork() work in forked torch DataLoader workers."""

import multiprocessing
import os

import numpy as np
import pytest
import rasterio
import torch
from torch.utils.data import DataLoader, Dataset

import rasterloader
from conftest import sample_dir

WINDOWS = [((r, r + 64), (c, c + 64)) for r in (0, 200, 700) for c in (10, 500, 960)]


class Windows(Dataset):
    def __init__(self, ds, pool):
        self.ds, self.pool = ds, pool

    def __len__(self):
        return len(WINDOWS)

    def __getitem__(self, i):
        tile = self.ds.read_hwc(window=WINDOWS[i], pool=self.pool, out_dtype="float32")
        x = torch.from_dlpack(tile)
        chw = torch.from_numpy(self.ds.read(window=WINDOWS[i]).astype(np.int32))
        return x, chw, os.getpid()


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork")
def test_dataloader_fork_workers():
    path = f"{sample_dir()}/scene_a.tif"
    ds = rasterloader.open(path)
    pool = rasterloader.BufferPool(16 << 20)
    ds.read(window=((0, 8), (0, 8)))                 # the parent has used its handles
    ds.read_hwc(window=((0, 8), (0, 8)), pool=pool).release()
    loader = DataLoader(Windows(ds, pool), batch_size=3, num_workers=2,
                        multiprocessing_context="fork")
    pids = set()
    with rasterio.open(path) as ref:
        for k, (x, chw, pid) in enumerate(loader):
            pids.update(pid.tolist())
            for j in range(x.shape[0]):
                want = ref.read(window=WINDOWS[k * 3 + j])
                assert np.array_equal(x[j].numpy(), np.moveaxis(want, 0, -1).astype(np.float32))
                assert np.array_equal(chw[j].numpy(), want.astype(np.int32))
    assert os.getpid() not in pids and len(pids) == 2
    # The parent's objects are untouched by what the workers did.
    assert pool.stats()["bytes_in_use"] == 0
    assert ds.read(window=((0, 4), (0, 4))).shape == (4, 4, 4)
    ds.close()


def test_plain_fork_child_reads():
    path = f"{sample_dir()}/scene_a.tif"
    ds = rasterloader.open(path)
    want = ds.read(window=((10, 30), (40, 60)))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:   # child: reuse the parent's dataset and default pool
        try:
            ok = np.array_equal(ds.read(window=((10, 30), (40, 60))), want)
            t = ds.read_hwc(window=((10, 30), (40, 60)))
            ok = ok and np.array_equal(t.numpy(), np.moveaxis(want, 0, -1))
            os.write(w, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(w)
    assert os.read(r, 1) == b"1"
    os.waitpid(pid, 0)
    ds.close()
