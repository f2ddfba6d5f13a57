"""Window samplers, epoch order, rank and worker sharding (no process group here;
test_ddp.py runs the real thing)."""

import os

import numpy as np
import pytest
import torch

import rasterloader
from rasterloader._loader import epoch_order, pool_block_nbytes, shard_indices, split_batches
from rasterloader.torch import BatchDataset, ShardedSampler, WindowDataset
from conftest import fixture_path, sample_dir

TILED = "u16_deflate_pred2_tile256_pixel_3b_700x531.tif"      # 256x256 tiles


@pytest.fixture(scope="module")
def scenes():
    d = sample_dir()
    return [(os.path.join(d, "scene_a.tif"), os.path.join(d, "scene_a_label.tif")),
            os.path.join(d, "scene_b.tif")]


def rows(sampler):
    return [(img, mask, (w.col_off, w.row_off, w.width, w.height)) for img, mask, w in sampler]


# ---------------------------------------------------------------- window samplers

def test_random_windows_are_seeded_per_epoch_and_inside(scenes):
    a = rasterloader.RandomWindows(scenes, 100, 500, seed=1)
    b = rasterloader.RandomWindows(scenes, 100, 500, seed=1)
    assert len(a) == 500 and rows(a) == rows(b)
    first = rows(a)
    a.set_epoch(1)
    assert rows(a) != first
    a.set_epoch(0)
    assert rows(a) == first
    assert rows(rasterloader.RandomWindows(scenes, 100, 500, seed=2)) != first
    for img, mask, (c, r, w, h) in first:
        assert 0 <= c <= 1024 - 100 and 0 <= r <= 1024 - 100 and w == h == 100
        assert mask == (scenes[0][1] if img == scenes[0][0] else None)
    # Both sources are drawn, in proportion to their positions (equal here).
    share = sum(img == scenes[0][0] for img, _, _ in first) / 500
    assert 0.35 < share < 0.65


def test_random_windows_tile_aligned(scenes):
    w = rasterloader.RandomWindows(scenes, 128, 200, seed=0, align="tile")
    for _, _, (c, r, _, _) in rows(w):
        assert c % 128 == 0 and r % 128 == 0
        assert c // 256 == (c + 127) // 256 and r // 256 == (r + 127) // 256   # inside one tile
    with pytest.raises(ValueError, match="divide"):
        rasterloader.RandomWindows(scenes, 100, 10, align="tile")


def test_grid_windows_stride_and_edges(scenes):
    g = rasterloader.GridWindows(scenes[1:], 256)
    assert len(g) == 16
    assert {(c, r) for _, _, (c, r, _, _) in rows(g)} == \
        {(c, r) for c in range(0, 1024, 256) for r in range(0, 1024, 256)}
    ov = rasterloader.GridWindows(scenes[1:], 300, stride=200)     # overlapping, edge shifted
    starts = sorted({c for _, _, (c, _, _, _) in rows(ov)})
    assert starts == [0, 200, 400, 600, 724]
    assert len(ov) == 25
    drop = rasterloader.GridWindows(scenes[1:], 300, stride=200, edges="drop")
    assert sorted({c for _, _, (c, _, _, _) in rows(drop)}) == [0, 200, 400, 600]
    both = rasterloader.GridWindows(scenes, (128, 256))
    assert len(both) == 2 * 8 * 4
    assert rows(both)[0][2] == (0, 0, 256, 128)


def test_tile_windows_follow_each_files_tiles(scenes):
    t = rasterloader.TileWindows(scenes)                   # the tile size: 256
    assert len(t) == 2 * 16
    small = rasterloader.TileWindows([fixture_path(TILED)], 128)
    for _, _, (c, r, w, h) in rows(small):
        assert c % 128 == 0 and r % 128 == 0 and c + w <= 700 and r + h <= 531
    assert len(small) == (700 // 128) * (531 // 128)
    big = rasterloader.TileWindows(scenes[1:], 512)        # whole tiles, two by two
    assert len(big) == 4
    with pytest.raises(ValueError, match="tile"):
        rasterloader.TileWindows(scenes, 200)


# ---------------------------------------------------------------- order and shards

def test_epoch_order_is_a_seeded_permutation():
    assert epoch_order(10).tolist() == list(range(10))
    a = epoch_order(1000, 3, shuffle=True, seed=7)
    assert sorted(a.tolist()) == list(range(1000))
    assert np.array_equal(a, epoch_order(1000, 3, shuffle=True, seed=7))
    assert not np.array_equal(a, epoch_order(1000, 4, shuffle=True, seed=7))


@pytest.mark.parametrize("n", [12, 13, 1, 0])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_shards_partition_the_epoch(n, world):
    order = epoch_order(n, 0, shuffle=True, seed=1)
    padded = [shard_indices(order, r, world).tolist() for r in range(world)]
    dropped = [shard_indices(order, r, world, pad=False).tolist() for r in range(world)]
    assert len({len(s) for s in padded}) == 1 and len({len(s) for s in dropped}) == 1
    flat = sum(padded, [])
    assert set(flat) == set(range(n))                      # union = the epoch
    assert len(flat) - n == (-n) % world if n else len(flat) == 0   # pad < world
    flat = sum(dropped, [])
    assert len(flat) == len(set(flat)) == n - n % world    # disjoint, tail dropped
    if n % world == 0:
        assert sorted(sum(padded, [])) == list(range(n))   # disjoint and complete


def test_sharded_sampler_matches_shard_indices():
    ds = list(range(50))
    for world in (1, 2, 4):
        shards = []
        for r in range(world):
            s = ShardedSampler(ds, shuffle=True, seed=3, rank=r, world_size=world)
            s.set_epoch(2)
            got = list(s)
            assert len(got) == len(s)
            shards.append(got)
        assert set(sum(shards, [])) == set(range(50))
        if 50 % world == 0:
            assert sorted(sum(shards, [])) == list(range(50))
    s = ShardedSampler(ds, shuffle=True, seed=3, rank=0, world_size=2)
    e0 = list(s)
    s.set_epoch(1)
    assert list(s) != e0
    with pytest.raises(ValueError):
        ShardedSampler(ds, rank=2, world_size=2)


def test_split_batches_and_workers():
    idx = np.arange(23)
    b = split_batches(idx, 5)
    assert [len(x) for x in b] == [5, 5, 5, 5, 3]
    assert [len(x) for x in split_batches(idx, 5, drop_last=True)] == [5, 5, 5, 5]
    w0 = split_batches(idx, 5, worker=(0, 2))
    w1 = split_batches(idx, 5, worker=(1, 2))
    assert [x[0] for x in w0] == [0, 10, 20] and [x[0] for x in w1] == [5, 15]


def test_pool_block_nbytes_matches_the_pool():
    """The loader sizes its pool with this; the pool itself charges whole blocks."""
    pool = rasterloader.BufferPool(64 << 20)
    with rasterloader.open(fixture_path(TILED)) as ds:
        for h, w in ((1, 1), (1, 65), (10, 100), (100, 257), (300, 400)):
            tile = ds.read_hwc(window=((0, h), (0, w)), indexes=1, out_dtype="uint8", pool=pool)
            assert pool.stats()["bytes_in_use"] == pool_block_nbytes(h * w), (h, w)
            tile.release()
    pool.close()
    assert [pool_block_nbytes(n) for n in (0, 1, 64, 65, 256, 257, 320, 321, 1024, 1025)] == \
        [0, 64, 64, 128, 256, 320, 320, 384, 1024, 1280]


def test_loader_and_batch_dataset_shard_by_rank_and_worker(scenes):
    samples = rasterloader.RandomWindows(scenes, 64, 37, seed=4)
    plans = []
    for rank in range(2):
        lo = rasterloader.BatchLoader(samples, 4, shuffle=True, seed=8, rank=rank, world_size=2,
                                      prefetch=0)
        plan = lo.plan()
        assert len(plan) == len(lo) == 5
        # Two DataLoader workers deal the same plan between them.
        w = [rasterloader.BatchLoader(samples, 4, shuffle=True, seed=8, rank=rank,
                                      world_size=2, worker=(k, 2), prefetch=0).plan()
             for k in range(2)]
        assert sorted(w[0] + w[1]) == sorted(plan) and not set(map(tuple, w[0])) & \
            set(map(tuple, w[1]))
        plans.append(sum(plan, []))
    assert set(plans[0]) | set(plans[1]) == set(range(37))
    assert len(plans[0]) == len(plans[1]) == 19                 # padded: one seen twice
    bd = BatchDataset(samples, 4, shuffle=True, seed=8, rank=1, world_size=2)
    got = [b["index"].tolist() for b in torch.utils.data.DataLoader(
        bd, batch_size=None, num_workers=2, multiprocessing_context="fork")]
    assert got == rasterloader.BatchLoader(samples, 4, shuffle=True, seed=8, rank=1,
                                           world_size=2, prefetch=0).plan()


def test_window_dataset_epochs_redraw(scenes):
    samples = rasterloader.RandomWindows(scenes, 64, 8, seed=0)
    ds = WindowDataset(samples)
    sampler = ShardedSampler(ds, shuffle=False, rank=0, world_size=1)
    sampler.set_epoch(0)
    a = ds[0]["image"].clone()
    sampler.set_epoch(1)                                          # redraws the windows
    assert not torch.equal(ds[0]["image"], a)
