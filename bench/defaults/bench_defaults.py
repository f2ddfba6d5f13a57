#!/usr/bin/env python3
"""Defaults benchmark: rasterio against rasterloader.open as a drop-in, each at its defaults.

    python bench/defaults/bench_defaults.py [--data bench/data] [--out bench/results/defaults.md]
    python bench/defaults/bench_defaults.py --smoke      # tiny files and counts, writes nothing

The usual map-style Dataset (random 256x256 windows of a 4-band uint16 DEFLATE
image, 512x512 tiles, and its uint8 mask file; read(), astype(float32),
normalise, torch.from_numpy; default_collate into batches of 32) in a DataLoader
with 0, 2 and 4 workers (fork), run once with rasterio.open and once with
rasterloader.open, nothing tuned: GDAL_CACHEMAX unset (GDAL's default, 5 % of RAM
per process) and rasterloader's tile cache at its default (on, one shared arena
for the machine).  Three regimes:
  one scene     every window from one scene, several epochs;
  corpus        distinct scenes (real copies, not links: GDAL and the tile cache
                both see distinct files) whose decoded size is larger than GDAL's
                default cache of one worker;
  open per item the scene opened in every __getitem__ (with ... as src).
Each configuration runs in a fresh process tree with a cold cache: the tile
cache gets an arena of its own (RASTERLOADER_TILE_CACHE_NAME), unlinked when the
run ends; files are in the page cache for everybody.  Reported: samples/s and the
peak of the summed PSS of the process tree (shared pages, such as the arena,
split between the processes that map them; RSS would count the arena once per
process), with the peak RSS beside it.
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench", "loader"))
WIN = 256
BATCH = 32
MEAN = [1000.0] * 4
STD = [500.0] * 4

REGIMES = [
    ("scene", "one scene read many times"),
    ("corpus", "corpus of distinct scenes"),
    ("open", "file opened in every __getitem__"),
]


def make_corpus(data, n):
    """n real copies of the bench image and mask (distinct inodes)."""
    d = os.path.join(data, "corpus")
    os.makedirs(d, exist_ok=True)
    pairs = []
    for k in range(n):
        pair = []
        for src, name in (("bench_u16_deflate.tif", f"scene_{k}.tif"), ("bench_mask_u8.tif", f"mask_{k}.tif")):
            out = os.path.join(d, name)
            s = os.path.join(data, src)
            if (not os.path.exists(out) or os.path.islink(out)
                    or os.path.getsize(out) != os.path.getsize(s)):
                if os.path.lexists(out):
                    os.unlink(out)
                shutil.copyfile(s, out)
            pair.append(out)
        pairs.append(tuple(pair))
    for img, msk in pairs:                      # page cache warm for everybody
        for p in (img, msk):
            with open(p, "rb") as fh:
                while fh.read(1 << 24):
                    pass
    return pairs


def samples_for(regime, pairs, n, size, seed):
    rng = np.random.default_rng(seed)
    use = pairs if regime == "corpus" else pairs[:1]
    k = rng.integers(0, len(use), n)
    c = rng.integers(0, size - WIN + 1, n)
    r = rng.integers(0, size - WIN + 1, n)
    return [(use[k[i]][0], use[k[i]][1], int(c[i]), int(r[i])) for i in range(n)]


def run_one(kind, regime, workers, samples, epochs):
    """One configuration in this (fresh) process; prints a JSON line."""
    import torch
    from torch.utils.data import DataLoader, Dataset
    from bench_loader import PeakMem
    torch.set_num_threads(1)
    if kind == "rasterio":
        import rasterio
        open_ = rasterio.open
    else:
        import rasterloader
        open_ = rasterloader.open
    mean = torch.tensor(MEAN).view(-1, 1, 1)
    std = torch.tensor(STD).view(-1, 1, 1)
    per_item = regime == "open"

    class Windows(Dataset):
        """The usual Dataset: only the open function differs between the runs."""

        def __init__(self):
            self.handles = None

        def __len__(self):
            return len(samples)

        def read(self, img, msk, win):
            x = torch.from_numpy(img.read(window=win).astype(np.float32))
            y = torch.from_numpy(msk.read(1, window=win))
            return (x - mean) / std, y

        def __getitem__(self, i):
            image, mask, c, r = samples[i]
            win = ((r, r + WIN), (c, c + WIN))
            if per_item:
                with open_(image) as img, open_(mask) as msk:
                    return self.read(img, msk, win)
            if self.handles is None:
                self.handles = {}
            for p in (image, mask):
                if p not in self.handles:
                    self.handles[p] = open_(p)
            return self.read(self.handles[image], self.handles[mask], win)

    loader = DataLoader(Windows(), batch_size=BATCH, num_workers=workers,
                        multiprocessing_context="fork" if workers else None,
                        persistent_workers=workers > 0)
    seen, acc = 0, 0.0
    with PeakMem() as mem:
        t0 = time.perf_counter()
        for _ in range(epochs):
            for x, y in loader:
                acc += float(x.mean()) + float(y.float().mean())   # the "training step"
                seen += x.shape[0]
                del x, y
        dt = time.perf_counter() - t0
    cache = {}
    if kind != "rasterio":
        cache = rasterloader.tile_cache_stats()
    print(json.dumps({"kind": kind, "regime": regime, "workers": workers, "samples": seen, "seconds": dt,
                      "samples_per_s": seen / dt, "peak_rss": mem.rss, "peak_pss": mem.pss, "acc": acc,
                      "cache": {k: cache[k] for k in ("mode", "hits", "misses", "bytes_used", "budget_bytes",
                                                      "attached_processes", "gdal_cache_bytes")
                                if k in cache}}))


def spawn(kind, regime, workers, args, tag):
    env = dict(os.environ)
    env.pop("GDAL_CACHEMAX", None)
    env.pop("RASTERLOADER_TILE_CACHE_BYTES", None)
    env.pop("RASTERLOADER_TILE_CACHE_SHARED", None)
    env["RASTERLOADER_TILE_CACHE_NAME"] = tag          # a cold arena of its own
    cmd = [sys.executable, os.path.abspath(__file__), "--child", kind, regime, str(workers),
           "--data", args.data, "--samples", str(args.samples), "--epochs", str(args.epochs),
           "--corpus", str(args.corpus), "--size", str(args.size)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    for shm in glob.glob("/dev/shm/rasterloader-tc-v*-%d-%s" % (os.getuid(), tag)):
        os.unlink(shm)                     # a worker outlived the run: never reuse it
    if p.returncode != 0:
        raise SystemExit(f"{kind} {regime} {workers}: {p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def gdal_default_cache_mib():
    try:
        from bench_loader import gdal_cachemax_bytes
        b = gdal_cachemax_bytes()
        return b / 2 ** 20 if b else None
    except Exception:
        return None


def report(rows, args, seconds):
    mib = 2 ** 20
    by = {(r["kind"], r["regime"], r["workers"]): r for r in rows}
    gd = gdal_default_cache_mib()
    load = os.getloadavg()[0]
    lines = [
        "# Users' defaults: rasterio against rasterloader.open (drop-in)",
        "",
        f"Made by `make bench-defaults` (bench/defaults/bench_defaults.py) in {seconds / 60:.1f} min: the usual "
        f"map-style Dataset (random {WIN}x{WIN} windows of a {args.size}x{args.size} 4-band uint16 DEFLATE image, "
        "512x512 tiles, and its uint8 mask file; `read()`, `astype(float32)`, normalise, `torch.from_numpy`, "
        f"`default_collate` into batches of {BATCH}) in a DataLoader (fork), once with `rasterio.open` and once "
        "with `rasterloader.open`, nothing tuned: `GDAL_CACHEMAX` unset "
        + (f"(GDAL's default: {gd:.0f} MiB per process here)" if gd else "(GDAL's default, 5 % of RAM per process)")
        + " and the tile cache at its default (on, one shared arena of "
        + f"{max([r['cache'].get('budget_bytes', 0) for r in rows] + [0]) / mib:.0f} MiB, 10 % of RAM). "
        f"{args.samples} samples per epoch ({max(BATCH, args.samples // 3)} when opened per item), "
        f"{args.epochs} epochs; corpus: {args.corpus} real copies "
        f"({args.corpus * args.size * args.size * 8 / mib:.0f} MiB decoded). Each run starts cold in a fresh "
        f"process tree (its own arena); each configuration ran {args.repeat} times, interleaved with the other "
        "reader's runs, and the faster run is shown (with its memory). Peak PSS/RSS: summed over the process "
        f"tree. Load average {load:.2f} at the end: the two cores are shared with other work, so figures move "
        "by tens of percent between runs.",
        "",
        "| regime | workers | rasterio samples/s | drop-in samples/s | ratio | rasterio peak PSS MiB | drop-in peak PSS MiB | PSS ratio | rasterio / drop-in peak RSS MiB | drop-in cache hits |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    met = []
    for regime, label in REGIMES:
        for w in args.workers:
            a, b = by.get(("rasterio", regime, w)), by.get(("rasterloader", regime, w))
            if not a or not b:
                continue
            ratio = b["samples_per_s"] / a["samples_per_s"]
            pss = b["peak_pss"] / a["peak_pss"]
            met.append(ratio >= 1.3 and pss <= 1.0)
            c = b["cache"]
            hr = c.get("hits", 0) / max(1, c.get("hits", 0) + c.get("misses", 0))
            lines.append(f"| {label} | {w} | {a['samples_per_s']:.0f} | {b['samples_per_s']:.0f} | "
                         f"**{ratio:.2f}x** | {a['peak_pss'] / mib:.0f} | {b['peak_pss'] / mib:.0f} | {pss:.2f} | "
                         f"{a['peak_rss'] / mib:.0f} / {b['peak_rss'] / mib:.0f} | {hr:.2f} |")
    lines += [
        "",
        f"Target (a benchmark, not a test): the drop-in at >= 1.3x rasterio's samples/s at <= 1.0x its peak PSS "
        f"in every regime and worker count: met in {sum(met)} of {len(met)} rows.",
        "",
        "Why: GDAL's block cache is per dataset and per process: every worker decodes and keeps its own copy "
        "of the tiles it reads (up to 5 % of RAM each), and a dataset opened per item starts empty. The tile "
        "cache is keyed by the file and shared by every process of the machine: a tile decoded by one worker is "
        "a hit for the others and for the next open, and its memory is paid once.",
    ]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "bench", "data"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "defaults.md"))
    ap.add_argument("--repeat", type=int, default=2,
                    help="runs per configuration, interleaved; the fastest is reported")
    ap.add_argument("--samples", type=int, default=256,
                    help="samples per epoch (a third of them in the open-per-item regime)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--corpus", type=int, default=12)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--workers", type=int, nargs="*", default=[0, 2, 4])
    ap.add_argument("--smoke", action="store_true", help="tiny data and counts; writes nothing")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "REGIME", "WORKERS"))
    a = ap.parse_args()
    if a.child:
        kind, regime, w = a.child
        pairs = [(os.path.join(a.data, "corpus", f"scene_{k}.tif"), os.path.join(a.data, "corpus", f"mask_{k}.tif"))
                 for k in range(a.corpus)]
        n = a.samples if regime != "open" else max(BATCH, a.samples // 3)
        run_one(kind, regime, int(w), samples_for(regime, pairs, n, a.size, seed=7), a.epochs)
        return
    tmp = None
    if a.smoke:
        tmp = tempfile.mkdtemp(prefix="rl-bench-defaults-")
        a.data, a.size, a.samples, a.epochs, a.corpus, a.workers, a.repeat = tmp, 1024, 64, 1, 2, [2], 1
    try:
        from bench_loader import ensure_data
        ensure_data(a.data, a.size)
        make_corpus(a.data, a.corpus)
        t0 = time.time()
        rows = []
        for regime, _ in REGIMES:
            for w in a.workers:
                best = {}
                for rep in range(a.repeat):
                    for kind in ("rasterio", "rasterloader"):
                        r = spawn(kind, regime, w, a, f"bench{os.getpid()}{regime}{w}{kind[:2]}{rep}")
                        print(f"{regime:7s} workers={w} {kind:12s} {r['samples_per_s']:7.0f} samples/s "
                              f"peak PSS {r['peak_pss'] / 2 ** 20:6.0f} MiB  {r['cache']}", flush=True)
                        if kind not in best or r["samples_per_s"] > best[kind]["samples_per_s"]:
                            best[kind] = r
                rows += best.values()
        text = report(rows, a, time.time() - t0)
        if a.smoke:
            assert all(r["samples"] == (a.samples if r["regime"] != "open" else max(BATCH, a.samples // 3))
                       * a.epochs for r in rows), rows
            assert all(r["cache"]["mode"] == "shared" for r in rows if r["kind"] == "rasterloader"), rows
            print(text)
            print("defaults bench smoke: OK")
        else:
            os.makedirs(os.path.dirname(a.out), exist_ok=True)
            with open(a.out, "w") as f:
                f.write(text)
            print(text)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
