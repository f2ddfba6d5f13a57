#!/usr/bin/env python3
"""Soak: read many windows in one process and watch its memory stay flat.

    python bench/soak.py [--windows 100000] [--every 1000] [--data DIR]
                         [--tile-cache-mib N] [--out bench/results/soak.md]
                         [--png bench/results/soak.png]
    python bench/soak.py --windows 10000 --json      # the smoke run of `make test`

Windows alternate between the two ways a training loop uses rasterloader:
  read()   Dataset.read(window=...) -> a fresh CHW NumPy array each time
           (the rasterio-style call), summed and dropped;
  tile     Dataset.read_hwc(window=..., mean, std) -> a pooled float32 Tile,
           handed to torch.from_dlpack (no copy), summed and dropped, so the
           pool buffer returns to the pool when the tensor goes;
and every 8th window the pair goes through a BatchLoader batch instead
(image + label mask, pooled, through torch.from_dlpack), and every 8th read()
is a resampled one (half size, average) with its resampled dataset mask.
--tile-cache-mib N turns the decoded-tile cache on (RSS then settles with the
cache full, during the warm-up).  Image windows are
random, over a 4-band uint16 image and its uint8 mask (the bench files when
present, else data/sample).

RSS of the process is logged every --every windows.  Growth is measured from
the end of the warm-up (the first 10% of windows, at least 2 log points):
allocators, per-thread scratch and the pool reach their steady size there;
after it, a leak of even a few bytes per window would show as a slope.  The
run fails (exit 1) if RSS grows by 1 MiB or more after warm-up or if the pool
has bytes in use at the end.
"""

import argparse
import gc
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIN = 256
LIMIT = 1 << 20


def data_files(data_dir):
    """(image, mask) in data_dir: the bench pair, or the sample scene_a pair.
    Without data_dir: bench/data when it has been made, else data/sample."""
    dirs = [data_dir] if data_dir else [os.path.join(ROOT, "bench", "data"),
                                        os.path.join(ROOT, "data", "sample")]
    for d in dirs:
        for img, mask in (("bench_u16_deflate.tif", "bench_mask_u8.tif"),
                          ("scene_a.tif", "scene_a_label.tif")):
            if os.path.exists(os.path.join(d, img)) and os.path.exists(os.path.join(d, mask)):
                return os.path.join(d, img), os.path.join(d, mask)
    sys.exit(f"no bench or sample image + mask pair in {dirs}")


def rss_bytes():
    import psutil
    return psutil.Process().memory_info().rss


def pss_bytes():
    """Proportional set size of the memory the process allocates: anonymous and
    shared memory (the tile-cache arena, split between the processes that map
    it).  File-backed pages (libraries) are left out: their PSS moves with
    whatever else on the machine maps the same files."""
    n = 0
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Pss_Anon:", "Pss_Shmem:")):
                n += int(line.split()[1]) * 1024
    return n


def soak(n, every, data_dir=None, win=WIN, seed=0, tile_cache_mib=0):
    import torch
    import rasterloader
    from rasterio.enums import Resampling

    torch.set_num_threads(1)
    if tile_cache_mib >= 0:                  # else: the default (on, shared arena)
        rasterloader.set_tile_cache_budget(tile_cache_mib << 20)
    img_path, mask_path = data_files(data_dir)
    ds = rasterloader.open(img_path)
    pool = rasterloader.BufferPool(64 << 20)
    h, w = ds.height, ds.width
    win = min(win, h, w)
    rng = np.random.default_rng(seed)
    cols = rng.integers(0, w - win + 1, n)
    rows = rng.integers(0, h - win + 1, n)
    mean, std = [1000.0] * ds.count, [500.0] * ds.count
    batch_samples = [(img_path, mask_path, (int(cols[i]), int(rows[i]), win, win))
                     for i in range(0, n, 8)]
    loader = rasterloader.BatchLoader(batch_samples, 2, mean=mean, std=std, prefetch=0,
                                      threads=1)
    log, pss_log = [], []
    checksum = 0.0
    t0 = time.perf_counter()
    k = 0
    for i in range(n):
        window = ((int(rows[i]), int(rows[i]) + win), (int(cols[i]), int(cols[i]) + win))
        if i % 16 == 0 and k + 1 < len(batch_samples):
            batch = loader.read([k, k + 1])
            x, y = batch.torch()
            checksum += float(x[0, 0, 0, 0]) + float(y[0, 0, 0])
            del batch, x, y
            k += 2
        elif i % 8 == 4:
            # Resampled: half size, average, with the resampled dataset mask.
            a = ds.read(window=window, out_shape=(ds.count, win // 2, win // 2),
                        resampling=Resampling.average)
            m = ds.dataset_mask(window=window, out_shape=(win // 2, win // 2))
            checksum += float(a[0, 0, 0]) + float(m[0, 0])
            del a, m
        elif i % 2 == 0:
            a = ds.read(window=window)
            checksum += float(a[0, 0, 0])
            del a
        else:
            t = torch.from_dlpack(ds.read_hwc(window=window, mean=mean, std=std, pool=pool))
            checksum += float(t[0, 0, 0])
            del t
        if (i + 1) % every == 0:
            gc.collect()
            log.append((i + 1, rss_bytes(), time.perf_counter() - t0))
            pss_log.append(pss_bytes())
    gc.collect()
    end_pool = pool.stats()
    end_loader = loader.pool.stats()
    loader.close()
    ds.close()
    cache = rasterloader.tile_cache_stats()
    if tile_cache_mib >= 0:
        rasterloader.set_tile_cache_budget(0)
    warm = max(2, len(log) // 10)
    base = log[warm - 1][1] if len(log) >= warm else log[0][1]
    growth = max(r for _, r, _ in log[warm - 1:]) - base if log else 0
    pss_growth = max(pss_log[warm - 1:]) - pss_log[warm - 1] if len(pss_log) >= warm else 0
    return {
        "windows": n, "window": win, "image": os.path.relpath(img_path, ROOT),
        "mask": os.path.relpath(mask_path, ROOT), "seconds": time.perf_counter() - t0,
        "log": log, "warmup_windows": log[warm - 1][0] if log else 0,
        "rss_start": log[0][1] if log else 0, "rss_after_warmup": base,
        "rss_end": log[-1][1] if log else 0, "growth_after_warmup": growth,
        "pool_bytes_in_use": end_pool["bytes_in_use"] + end_loader["bytes_in_use"],
        "pool_buffers_outstanding": end_pool["buffers_outstanding"]
        + end_loader["buffers_outstanding"],
        "pool_block_mallocs": end_pool["block_mallocs"] + end_loader["block_mallocs"],
        "pss_log": pss_log, "pss_growth_after_warmup": pss_growth,
        "tile_cache_mib": tile_cache_mib, "tile_cache_hits": cache["hits"],
        "tile_cache_misses": cache["misses"], "tile_cache_mode": cache["mode"],
        "tile_cache_bytes_used": cache["bytes_used"],
        "checksum": checksum,
    }


def write_report(r, out_md, out_png):
    mib = 2 ** 20
    xs = [x for x, _, _ in r["log"]]
    ys = [v / mib for _, v, _ in r["log"]]
    if out_png:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(8, 3.6))
        ax.plot(xs, ys, lw=1.5)
        ax.axvline(r["warmup_windows"], color="grey", ls=":", lw=1)
        ax.set_xlabel("windows read")
        ax.set_ylabel("RSS (MiB)")
        ax.set_title(f"rasterloader soak: {r['windows']} windows of {r['window']}x{r['window']}")
        lo, hi = min(ys), max(ys)
        ax.set_ylim(lo - 5, hi + 5)
        fig.tight_layout()
        fig.savefig(out_png, dpi=110)
    lines = [
        "# Soak: RSS over a long read loop",
        "",
        f"`python bench/soak.py --windows {r['windows']} --data {os.path.dirname(r['image'])}` "
        "(`make soak`): random "
        f"{r['window']}x{r['window']} windows of `{r['image']}` (mask `{r['mask']}`), "
        "alternating `Dataset.read()` (fresh CHW array; every 8th a resampled read to half "
        "size with its resampled dataset mask), `read_hwc()` pooled tiles through "
        "`torch.from_dlpack`, and every 16th window a 2-sample `BatchLoader` batch "
        "(image + mask) through `torch.from_dlpack`"
        + (f"; tile cache {r['tile_cache_mib']} MiB (`--tile-cache-mib`: {r['tile_cache_hits']} "
           f"hits, {r['tile_cache_misses']} misses)" if r["tile_cache_mib"] else "; tile cache off")
        + ". One process, RSS sampled every "
        f"{r['log'][1][0] - r['log'][0][0] if len(r['log']) > 1 else 0} windows after `gc.collect()`.",
        "",
        f"![RSS over the soak]({os.path.basename(out_png)})" if out_png else "",
        "",
        "| | value |",
        "|---|---|",
        f"| windows | {r['windows']} in {r['seconds']:.0f} s |",
        f"| RSS at the first sample | {r['rss_start'] / mib:.1f} MiB |",
        f"| RSS after warm-up ({r['warmup_windows']} windows) | {r['rss_after_warmup'] / mib:.2f} MiB |",
        f"| RSS at the end | {r['rss_end'] / mib:.2f} MiB |",
        f"| largest growth after warm-up | {r['growth_after_warmup'] / 1024:.0f} KiB "
        f"({'OK' if r['growth_after_warmup'] < LIMIT else 'FAIL'}, limit 1 MiB) |",
        f"| pool bytes in use at the end | {r['pool_bytes_in_use']} |",
        f"| pool blocks ever allocated | {r['pool_block_mallocs']} |",
        "",
        "| windows | RSS MiB |",
        "|---:|---:|",
    ]
    step = max(1, len(r["log"]) // 20)
    for x, v, _ in r["log"][::step]:
        lines.append(f"| {x} | {v / mib:.2f} |")
    with open(out_md, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--windows", type=int, default=100_000)
    ap.add_argument("--every", type=int, default=1000)
    ap.add_argument("--data", help="directory with bench_u16_deflate.tif + bench_mask_u8.tif "
                    "(or scene_a.tif + scene_a_label.tif)")
    ap.add_argument("--window", type=int, default=WIN)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "soak.md"))
    ap.add_argument("--png", default=os.path.join(ROOT, "bench", "results", "soak.png"))
    ap.add_argument("--json", action="store_true", help="print the result as JSON, write nothing")
    ap.add_argument("--tile-cache-mib", type=int, default=0,
                    help="decoded-tile cache budget (0: off, the soak's default; -1: the library's "
                    "default, on in the shared arena)")
    a = ap.parse_args()
    r = soak(a.windows, a.every, a.data, a.window, tile_cache_mib=a.tile_cache_mib)
    ok = (r["growth_after_warmup"] < LIMIT and r["pss_growth_after_warmup"] < LIMIT
          and r["pool_bytes_in_use"] == 0)
    if a.json:
        print(json.dumps(r))
    else:
        os.makedirs(os.path.dirname(a.out), exist_ok=True)
        write_report(r, a.out, a.png)
        print(open(a.out).read())
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
