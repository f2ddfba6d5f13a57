"""Distributed data parallel: two processes (torch.multiprocessing.spawn, gloo
backend) read their shards through every loader and train a DDP step on them.
The ranks must get disjoint samples whose union is the epoch, without being
told their rank (the loaders ask torch.distributed)."""

import json
import os
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from conftest import sample_dir

WORLD = 2


def _shards(rank, init_file, out_file, n):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD)
    try:
        import rasterloader
        from rasterloader.torch import BatchDataset, ShardedSampler, WindowDataset, dataloader

        d = sample_dir()
        scenes = [(os.path.join(d, "scene_a.tif"), os.path.join(d, "scene_a_label.tif")),
                  os.path.join(d, "scene_b.tif")]
        samples = rasterloader.RandomWindows(scenes, 32, n, seed=11)
        got = {}
        loader = rasterloader.BatchLoader(samples, 4, shuffle=True, seed=5, mean=1000.0,
                                          std=500.0)
        loader.set_epoch(1)
        model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 1))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        idx = []
        for batch in loader:
            x, _ = batch.torch()
            loss = model(x.mean(dim=(2, 3))).square().mean()      # a DDP step per batch
            opt.zero_grad()
            loss.backward()
            opt.step()
            idx += list(batch.indices)
        got["BatchLoader"] = idx
        bd = BatchDataset(samples, 4, shuffle=True, seed=5)
        bd.set_epoch(1)
        got["BatchDataset"] = sum((b["index"].tolist() for b in torch.utils.data.DataLoader(
            bd, batch_size=None, num_workers=0)), [])
        wd = WindowDataset(samples)
        sampler = ShardedSampler(wd, shuffle=True, seed=5)
        sampler.set_epoch(1)
        got["ShardedSampler"] = list(sampler)
        got["dataloader"] = sum((b["index"].tolist() for b in dataloader(wd, 4, sampler=sampler)),
                                [])
        everything = [None] * WORLD
        dist.all_gather_object(everything, got)
        if rank == 0:
            with open(out_file, "w") as f:
                json.dump(everything, f)
        # Leave together: a rank tearing down gloo while its peer is still in
        # a collective can abort the peer ("terminate called ...").
        dist.barrier()
    except BaseException:
        dist.destroy_process_group()
        raise
    # Even after the barrier, gloo's own threads sometimes abort a rank while
    # the interpreter tears them down ("terminate called without an active
    # exception", about one run in twenty, in destroy_process_group or at
    # exit): the results are written, so leave without running destructors.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@pytest.mark.parametrize("n", [24, 25])
def test_ranks_get_disjoint_shards_whose_union_is_the_epoch(tmp_path, n):
    out = tmp_path / "shards.json"
    mp.spawn(_shards, args=(str(tmp_path / "init"), str(out), n), nprocs=WORLD, join=True)
    ranks = json.loads(out.read_text())
    for mode in ("BatchLoader", "BatchDataset", "ShardedSampler", "dataloader"):
        a, b = (r[mode] for r in ranks)
        assert len(a) == len(b) == -(-n // WORLD), mode       # equal steps on every rank
        assert set(a) | set(b) == set(range(n)), mode          # union: the epoch
        assert len(set(a)) == len(a) and len(set(b)) == len(b), mode
        overlap = set(a) & set(b)
        assert len(overlap) == (-n) % WORLD, mode              # disjoint (padding: one repeat)
    # Every mode sees the same shard on a rank (one seeded epoch order).
    for r in ranks:
        assert r["BatchLoader"] == r["BatchDataset"] == r["ShardedSampler"] == r["dataloader"]
