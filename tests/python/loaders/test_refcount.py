"""Flat over many reads: Python refcounts, pool bytes and exports go back to where they were."""

import gc
import sys

import numpy as np
import torch

import rasterloader
from conftest import sample_dir


def test_10k_tile_reads_leave_nothing_behind():
    ds = rasterloader.open(f"{sample_dir()}/scene_a.tif")
    pool = rasterloader.BufferPool(8 << 20)
    refs = (sys.getrefcount(ds), sys.getrefcount(ds._core), sys.getrefcount(pool))
    for i in range(10_000):
        r, c = (i * 37) % 960, (i * 53) % 960
        tile = ds.read_hwc(window=((r, r + 32), (c, c + 32)), pool=pool)
        if i % 3 == 0:
            x = torch.from_dlpack(tile)
        elif i % 3 == 1:
            x = np.from_dlpack(tile)
        else:
            x = memoryview(tile)
        del x, tile
    gc.collect()
    assert (sys.getrefcount(ds), sys.getrefcount(ds._core), sys.getrefcount(pool)) == refs
    s = pool.stats()
    assert s["bytes_in_use"] == 0 and s["buffers_outstanding"] == 0
    assert s["exports_outstanding"] == 0 and s["acquires"] == 10_000
    assert s["peak_bytes_in_use"] <= 3 * 32 * 32 * 4 * 2 + 4096
    ds.close()


def test_10k_reads_into_out_keep_refcounts():
    ds = rasterloader.open(f"{sample_dir()}/scene_a.tif")
    out = np.empty((32, 32, 4), np.float32)
    t = torch.empty((32, 32, 4), dtype=torch.float32)
    refs = (sys.getrefcount(out), sys.getrefcount(t), sys.getrefcount(ds))
    for i in range(5_000):
        ds.read_hwc(window=((i % 900, i % 900 + 32), (0, 32)), out=out)
        ds.read_hwc(window=((i % 900, i % 900 + 32), (0, 32)), out=t)
    assert (sys.getrefcount(out), sys.getrefcount(t), sys.getrefcount(ds)) == refs
    ds.close()


def test_exports_do_not_touch_python_refcounts():
    ds = rasterloader.open(f"{sample_dir()}/scene_a.tif")
    pool = rasterloader.BufferPool(1 << 20)
    tile = ds.read_hwc(window=((0, 16), (0, 16)), pool=pool)
    before = sys.getrefcount(tile)
    caps = [tile.__dlpack__(max_version=(1, 0)) for _ in range(100)]
    assert sys.getrefcount(tile) == before
    assert pool.stats()["exports_outstanding"] == 100
    del caps
    assert pool.stats()["exports_outstanding"] == 0
    tile.release()
    ds.close()
