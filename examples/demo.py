#!/usr/bin/env python3
"""rasterloader demo: the three ways a PyTorch user reads raster windows, side by side.

Random 256x256 windows of the scenes in data/sample (4-band uint16 image + its 1-band
uint8 label raster on the same grid) go to a DataLoader (batches of 16, 2 persistent
workers, so that a worker's caches live across epochs, as in `make bench-defaults`), read
three ways, each at its defaults (GDAL_CACHEMAX unset, the tile cache on):

  rasterio      the usual map-style Dataset: rasterio.open per worker, read(),
                astype(float32), torch.from_numpy; default_collate makes the batch;
  drop-in       the same Dataset code with rasterloader.open instead of rasterio.open;
  BatchDataset  the native way: rasterloader.torch.BatchDataset in the DataLoader's
                workers (batch_size=None), whole float32 batches read in one C call
                straight into tensors made in shared memory.

    python examples/demo.py [--samples 1024] [--workers 2] [--batch 16]

Each way runs in a fresh process tree (its tile cache in an arena of its own, so
every way starts cold) for three passes over the same windows: the first epoch
(cold caches) and the second (warm) are timed with a trivial training step (the
bench's: a mean of the batch); the third is not timed and checksums every batch,
so that the three ways are shown to give identical pixels on the same windows.
Memory is the peak PSS of the process tree (the main process and its workers;
PSS splits shared pages, such as the tile cache or the batch tensors, between
the processes that map them).  These are short runs on small scenes: the real
measurements are `make bench-defaults` (bench/results/defaults.md) and `make bench`.
"""

import argparse
import glob
import hashlib
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "data", "sample")
sys.path.insert(0, os.path.join(ROOT, "bench"))
WIN = 256
WAYS = [("rasterio", "rasterio Dataset"), ("dropin", "drop-in rasterloader.open"),
        ("native", "rasterloader BatchDataset")]


def scenes():
    pairs = []
    for img in sorted(glob.glob(os.path.join(SAMPLE, "scene_*.tif"))):
        if img.endswith("_label.tif"):
            continue
        label = img[:-4] + "_label.tif"
        if os.path.exists(label):
            pairs.append((img, label))
    if not pairs:
        sys.exit(f"no scene_X.tif + scene_X_label.tif pairs in {SAMPLE}")
    return pairs


def windows(pairs, n, seed=0):
    """n (image, label, col, row) picks, the same for every way."""
    import numpy as np
    import rasterio
    sizes = []
    for img, _ in pairs:
        with rasterio.open(img) as ds:
            sizes.append((ds.height, ds.width))
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(len(pairs)))
        h, w = sizes[k]
        out.append((*pairs[k], int(rng.integers(0, w - WIN + 1)), int(rng.integers(0, h - WIN + 1))))
    return out


def dataset_loader(open_, picks, workers, batch):
    """The usual map-style Dataset; rasterio and the drop-in differ only in open_."""
    import numpy as np
    import torch
    from torch.utils.data import DataLoader, Dataset

    class Windows(Dataset):
        def __init__(self):
            self.handles = None             # opened in each worker: rasterio is not fork-safe

        def __len__(self):
            return len(picks)

        def __getitem__(self, i):
            if self.handles is None:
                self.handles = {}
            image, label, col, row = picks[i]
            for path in (image, label):
                if path not in self.handles:
                    self.handles[path] = open_(path)
            w = ((row, row + WIN), (col, col + WIN))
            x = torch.from_numpy(self.handles[image].read(window=w).astype(np.float32))
            y = torch.from_numpy(self.handles[label].read(1, window=w))
            return x, y

    return DataLoader(Windows(), batch_size=batch, num_workers=workers, persistent_workers=workers > 0)


def native_loader(picks, workers, batch):
    """rasterloader.torch.BatchDataset at its defaults: float32 [B,C,H,W] + uint8 [B,H,W]."""
    from torch.utils.data import DataLoader
    from rasterloader.torch import BatchDataset
    samples = [(image, label, (col, row, WIN, WIN)) for image, label, col, row in picks]
    ds = BatchDataset(samples, batch, return_type="tuple")
    return DataLoader(ds, batch_size=None, num_workers=workers, persistent_workers=workers > 0)


def make_loader(way, picks, workers, batch):
    if way == "native":
        return native_loader(picks, workers, batch)
    if way == "rasterio":
        import rasterio
        return dataset_loader(rasterio.open, picks, workers, batch)
    import rasterloader
    return dataset_loader(rasterloader.open, picks, workers, batch)


def run_one(way, n, workers, batch):
    """One way in this fresh process: two timed epochs, one checksummed epoch."""
    import torch
    from peak_pss import PeakPss

    torch.set_num_threads(1)
    picks = windows(scenes(), n)
    loader = make_loader(way, picks, workers, batch)
    rates, acc = [], 0.0
    with PeakPss(period=0.25) as mem:
        for _ in range(2):
            seen, t0 = 0, time.perf_counter()
            for x, y in loader:
                acc += float(x.mean()) + float(y.float().mean())   # the "training step"
                seen += x.shape[0]
            rates.append(seen / (time.perf_counter() - t0))
    hits = None
    if way != "rasterio":                  # the arena's counters, summed over its processes
        import rasterloader
        c = rasterloader.tile_cache_stats()
        hits = c["hits"] / max(1, c["hits"] + c["misses"])
    digest = hashlib.sha1()
    for x, y in loader:
        digest.update(x.contiguous().numpy().tobytes())
        digest.update(y.contiguous().numpy().tobytes())
    print(json.dumps({"way": way, "first": rates[0], "warm": rates[1], "pss": mem.pss,
                      "hits": hits, "sha1": digest.hexdigest()}))


def spawn(way, args):
    env = dict(os.environ)
    # Each way starts cold: a tile-cache arena of its own (the budget stays the default).
    tag = f"demo-{os.getpid()}-{way}"
    env["RASTERLOADER_TILE_CACHE_NAME"] = tag
    cmd = [sys.executable, os.path.abspath(__file__), "--run", way, "--samples", str(args.samples),
           "--workers", str(args.workers), "--batch", str(args.batch)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for shm in glob.glob(f"/dev/shm/rasterloader-tc-v*-{os.getuid()}-{tag}"):
        os.unlink(shm)                     # a worker outlived the run: leave nothing behind
    if p.returncode != 0:
        sys.exit(f"{way} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def report(results):
    base = results["rasterio"]
    print(f"{'way':<28}{'epoch 1':>10}{'epoch 2':>10}{'vs rasterio':>13}{'peak PSS':>10}{'tile cache':>12}")
    print(f"{'':<28}{'samples/s':>10}{'samples/s':>10}{'(epoch 2)':>13}{'MiB':>10}{'hit rate':>12}")
    for way, name in WAYS:
        r = results[way]
        hits = "-" if r["hits"] is None else f"{r['hits']:.2f}"
        print(f"{name:<28}{r['first']:>10.0f}{r['warm']:>10.0f}{r['warm'] / base['warm']:>12.2f}x"
              f"{r['pss'] / 2**20:>10.0f}{hits:>12}")
    same = len({r["sha1"] for r in results.values()}) == 1
    print("pixels: " + " ".join(f"{way} {r['sha1'][:12]}" for way, r in results.items())
          + (" -> identical on every window" if same else " -> PIXELS DIFFER"))
    return same


NOTE = """\
note: a short run on two small scenes (8 MiB decoded each) that every cache holds after the
first epoch (GDAL's block cache in each worker, rasterloader's tile cache shared by the
workers), on whatever else the machine is doing: figures move by tens of percent between
runs. The drop-in runs the same per-sample Python (astype, from_numpy, default_collate), so
it can only gain what the read costs; BatchDataset reads whole batches in C straight into
shared-memory tensors, with no per-sample Python and no collate copy. The real measurements
are the bench targets: `make bench-defaults` (bench/results/defaults.md: one scene, a corpus
larger than GDAL's cache, open per item) and `make bench` (bench/results/)."""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--run", choices=[w for w, _ in WAYS], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run:
        run_one(args.run, args.samples, args.workers, args.batch)
        return
    pairs = scenes()
    print(f"rasterloader demo: {args.samples} random {WIN}x{WIN} windows (image + label) of "
          f"{len(pairs)} scenes in {os.path.relpath(SAMPLE, ROOT)}, DataLoader batch {args.batch}, "
          f"{args.workers} persistent workers, each way at its defaults in a fresh process tree",
          flush=True)
    results = {}
    for way, name in WAYS:
        results[way] = spawn(way, args)
    same = report(results)
    print(NOTE)
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
