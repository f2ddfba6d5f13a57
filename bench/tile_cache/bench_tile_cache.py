#!/usr/bin/env python3
"""Decoded-tile cache benchmark: overlapping windows, with and without caches.

    python bench/tile_cache/bench_tile_cache.py [--data bench/data] [--epochs 2]
        [--out bench/results/tile_cache.md]
    python bench/tile_cache/bench_tile_cache.py --smoke    # a fixture, < 10 s, writes nothing
    python bench/tile_cache/bench_tile_cache.py --hit-cost [--hit-cost-before OLD_BIN]

--hit-cost measures what a hit costs beyond the copy (lookup, pin, release;
no pixel copied) with 1, 2 and 4 reader threads in each of 1 and 2
processes, in the shared arena and the private cache (build/bench/
bench_hit_cost, median of 3 runs), optionally beside the same program built
against an older tree, and writes the section 'Hit cost by readers' of
--out (the rest of the file is kept).

The workload the cache is for: a grid of 256x256 windows at stride 128 (each
512x512 tile is touched by about 25 windows) over the bench image (4096x4096,
4-band uint16, DEFLATE predictor 2, 512x512 tiles: 128 MiB decoded), in a
shuffled order per epoch, as a DataLoader with shuffle=True draws them, read
into a preallocated array on one thread.  Ways, each on fresh datasets:
  rasterio read(out=)        GDAL_CACHEMAX 64 MiB (the loader bench's setting),
                             and 1 GiB (the whole image fits)
  rasterloader read(out=)    tile cache off (the default), 64 MiB, 1 GiB
Reported per way: windows/s of each epoch (the first fills the caches), the
ratio to rasterio at the same cache size, and for rasterloader the cache's
hit rate and bytes held at the end.  The pixels of every way are checked
equal to rasterio's on a sample of windows.
"""

import argparse
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WIN, STRIDE = 256, 128


def grid(width, height):
    return [(c, r) for r in range(0, height - WIN + 1, STRIDE)
            for c in range(0, width - WIN + 1, STRIDE)]


def rasterio_way(path, cache_bytes):
    import rasterio
    from rasterio.windows import Window

    def run(order, out):
        with rasterio.Env(GDAL_CACHEMAX=cache_bytes), rasterio.open(path) as ds:
            times = []
            for epoch in order:
                t0 = time.perf_counter()
                for c, r in epoch:
                    ds.read(window=Window(c, r, WIN, WIN), out=out)
                times.append(len(epoch) / (time.perf_counter() - t0))
            return times, None
    return run


def rasterloader_way(path, cache_bytes):
    import rasterloader
    from rasterio.windows import Window

    def run(order, out):
        rasterloader.set_threads(1)
        rasterloader.set_tile_cache_budget(cache_bytes)
        s0 = rasterloader.tile_cache_stats()
        try:
            with rasterloader.open(path) as ds:
                times = []
                for epoch in order:
                    t0 = time.perf_counter()
                    for c, r in epoch:
                        ds.read(window=Window(c, r, WIN, WIN), out=out)
                    times.append(len(epoch) / (time.perf_counter() - t0))
                s1 = rasterloader.tile_cache_stats()
        finally:
            rasterloader.set_tile_cache_budget(0)
            rasterloader.set_threads(0)
        looks = (s1["hits"] - s0["hits"]) + (s1["misses"] - s0["misses"])
        stats = {"hit_rate": (s1["hits"] - s0["hits"]) / looks if looks else 0.0,
                 "held_mib": s1["bytes_used"] / 2**20}
        return times, stats
    return run


def check_same(path, wins, cache_bytes):
    """A sample of windows, cache on, read twice: equal to rasterio's."""
    import rasterio
    import rasterloader
    from rasterio.windows import Window
    rasterloader.set_tile_cache_budget(cache_bytes)
    try:
        with rasterio.open(path) as a, rasterloader.open(path) as b:
            for _ in range(2):
                for c, r in wins:
                    w = Window(c, r, WIN, WIN)
                    if a.read(window=w).tobytes() != b.read(window=w).tobytes():
                        raise SystemExit(f"window {(c, r)}: rasterloader differs from rasterio")
    finally:
        rasterloader.set_tile_cache_budget(0)


HIT_SECTION = "## Hit cost by readers"


def hit_cost_run(binary, mode, procs, threads, iters):
    """Median of 3 runs: (hits/s over all readers, ns per hit per reader)."""
    runs = []
    for _ in range(3):
        out = subprocess.run([binary, mode, str(procs), str(threads), str(iters)], check=True,
                             capture_output=True, text=True).stdout.split()
        runs.append((float(out[5]), float(out[6])))
    runs.sort()
    return runs[1]


def hit_cost(args):
    configs = [(p, t) for p in (1, 2) for t in (1, 2, 4)]
    bins = [("after", args.hit_cost_bin)]
    if args.hit_cost_before:
        bins.insert(0, ("before", args.hit_cost_before))
    res = {}
    for mode in ("shared", "private"):          # before and after side by side: the load drifts
        for p, t in configs:
            for label, binary in bins:
                res[label, mode, p, t] = hit_cost_run(binary, mode, p, t, args.hit_cost_iters)
                hs, ns = res[label, mode, p, t]
                print(f"{label:6s} {mode:7s} procs {p} threads {t}: {hs / 1e3:8.0f}K hits/s "
                      f"{ns:7.0f} ns/hit", flush=True)
    up = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    head = "| cache | processes x readers | " + " | ".join(
        f"{lb} hits/s | {lb} ns/hit" for lb, _ in bins) + (" | after / before |" if len(bins) > 1 else "")
    lines = [HIT_SECTION, "",
             f"Made by `bench/tile_cache/bench_tile_cache.py --hit-cost` (build/bench/bench_hit_cost, "
             f"{args.hit_cost_iters} lookups per reader over 64 cached 4 KiB segments, every one a hit; "
             "lookup, pin and release only, no pixel copied; median of 3 runs).  hits/s counts every "
             "reader of every process; ns/hit is one reader's loop time per hit, waiting for a core "
             "included (the machine has 2 cores, so 4 and 8 readers time-share).  "
             f"`uptime` at the end: {up}.", "", head,
             "|---|---|" + "---:|---:|" * len(bins) + ("---:|" if len(bins) > 1 else "")]
    for mode in ("shared", "private"):
        for p, t in configs:
            cells = [f"{res[lb, mode, p, t][0] / 1e3:.0f}K | {res[lb, mode, p, t][1]:.0f}" for lb, _ in bins]
            ratio = (f" | {res['after', mode, p, t][0] / res['before', mode, p, t][0]:.2f}x"
                     if len(bins) > 1 else "")
            lines.append(f"| {mode} | {p} x {t} | " + " | ".join(cells) + ratio + " |")
    lines += ["", "Before (main at ae937af): a shared-arena hit took the process's mutex and the arena's "
              "fcntl lock for the lookup and again for the release (4 system calls, every reader of "
              "every process in turn); a private-cache hit took the cache's one mutex twice.  After: "
              "a shared hit is a lock-free walk, a hazard word published and checked against the "
              "entry's generation, and a compare-and-swap to release it (shm_arena.c's header "
              "comment); a private hit locks one of 32 stripes of the table, twice."]
    text = open(args.out).read() if os.path.exists(args.out) else ""
    if HIT_SECTION in text:
        text = text[:text.index(HIT_SECTION)].rstrip("\n") + "\n"
    with open(args.out, "w") as f:
        f.write((text + "\n" if text else "") + "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "bench", "data"))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "tile_cache.md"))
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--hit-cost", action="store_true", help="only the 'Hit cost by readers' section")
    ap.add_argument("--hit-cost-bin", default=os.path.join(ROOT, "build", "bench", "bench_hit_cost"))
    ap.add_argument("--hit-cost-before", help="bench_hit_cost built against the tree to compare with")
    ap.add_argument("--hit-cost-iters", type=int, default=200000)
    args = ap.parse_args()
    if args.hit_cost:
        hit_cost(args)
        return

    if args.smoke:
        fixtures = os.environ.get("RASTER_FIXTURES") or os.path.join(ROOT, "data", "fixtures")
        path = os.path.join(fixtures, "u16_deflate_pred2_tile256_pixel_3b_700x531.tif")
        sizes = {"1 MiB": 1 << 20, "64 MiB": 64 << 20}
    else:
        subprocess.run([sys.executable, os.path.join(ROOT, "data", "make_fixtures.py"), "--out",
                        os.environ.get("RASTER_FIXTURES") or os.path.join(ROOT, "data", "fixtures"),
                        "--bench", args.data, "--bench-size", "4096"],
                       check=True, stdout=subprocess.DEVNULL)
        path = os.path.join(args.data, "bench_u16_deflate.tif")
        with open(path, "rb") as fh:                  # page cache warm for everybody
            while fh.read(1 << 24):
                pass
        sizes = {"64 MiB": 64 << 20, "1 GiB": 1 << 30}

    import rasterio
    with rasterio.open(path) as ds:
        width, height, count = ds.width, ds.height, ds.count
        dtype = ds.dtypes[0]
    wins = grid(width, height)
    rng = np.random.default_rng(0)
    order = [[wins[i] for i in rng.permutation(len(wins))] for _ in range(args.epochs)]
    out = np.empty((count, WIN, WIN), dtype)
    check_same(path, order[0][:40], 64 << 20)

    ways = [("rasterio read(out=)", f"GDAL_CACHEMAX {k}", rasterio_way(path, v), k)
            for k, v in sizes.items()]
    ways += [("rasterloader read(out=)", "tile cache off", rasterloader_way(path, 0), None)]
    ways += [("rasterloader read(out=)", f"tile cache {k}", rasterloader_way(path, v), k)
             for k, v in sizes.items()]
    rows, base = [], {}
    for name, cache, run, size in ways:
        times, stats = run(order, out)
        if name.startswith("rasterio"):
            base[size] = times
        rows.append((name, cache, times, stats, size))
        print(f"{name:26s} {cache:20s} " + " ".join(f"{t:8.1f}" for t in times)
              + (f"  hit rate {stats['hit_rate']:.2f}" if stats else ""), flush=True)
    if args.smoke:
        return

    la = os.getloadavg()[0]
    lines = ["# Decoded-tile cache: overlapping windows", "",
             f"Made by `make bench-cache` (bench/tile_cache/bench_tile_cache.py): {len(wins)} "
             f"windows of {WIN}x{WIN} at stride {STRIDE} over {os.path.basename(path)} "
             f"({width}x{height}, {count} bands {dtype}, 512x512 tiles, DEFLATE predictor 2, "
             f"{width * height * count * 2 / 2**20:.0f} MiB decoded), shuffled anew each epoch, "
             f"read(out=) on one thread, fresh datasets per way.  Load average {la:.2f} at the end.",
             "",
             "| reader | cache | " + " | ".join(f"epoch {i + 1} windows/s" for i in range(args.epochs))
             + " | last epoch vs rasterio, same cache size | hit rate | held at the end |",
             "|---|---|" + "---:|" * args.epochs + "---:|---:|---:|"]
    for name, cache, times, stats, size in rows:
        ref = base.get(size) or base[list(sizes)[0]]
        ratio = f"{times[-1] / ref[-1]:.2f}x" if not name.startswith("rasterio") else "1.00x"
        if size is None:
            ratio = f"{times[-1] / base[list(sizes)[0]][-1]:.2f}x (vs {list(sizes)[0]})"
        lines.append(f"| {name} | {cache} | " + " | ".join(f"{t:.0f}" for t in times)
                     + f" | {ratio} | " + (f"{stats['hit_rate']:.2f} | {stats['held_mib']:.0f} MiB |"
                                           if stats else "- | - |"))
    lines += ["", "Every way's pixels were checked equal to rasterio's on 40 windows, read twice "
              "with the cache on.  The tile cache holds decoded tiles with their rows finished "
              "(predictor undone), so a hit costs one copy into the destination.  Its entries "
              "are pixel-interleaved, the layout of read_hwc() and the BatchLoader, so a hit "
              "into rasterio's CHW also deinterleaves (SSE2 for uint16 x 4), while GDAL splits a "
              "pixel-interleaved tile into one block per band when it decodes, so its CHW hit is "
              "a plain copy: that is the gap in the last row.  A miss decodes the rows GDAL "
              "would (the whole tile), so later windows in it hit.  Off by default: a "
              "random-window loader over more data than the budget gains nothing (see "
              "loader.md)."]
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    old = open(args.out).read() if os.path.exists(args.out) else ""
    kept = "\n" + old[old.index(HIT_SECTION):] if HIT_SECTION in old else ""   # --hit-cost's section
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n" + kept)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
