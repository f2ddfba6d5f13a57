#!/usr/bin/env python3
"""bench_read_hwc.py - warm read_hwc(out_dtype="float32") against the same read in uint16.

The issue-22 case: random 256x256 windows of a 4-band uint16 DEFLATE pixel-
interleaved file with 512x512 tiles, read twice in one process; the second
pass (every tile in the tile cache, GDAL's block cache for rasterio) is
timed.  Each window is read in every way in turn (read_hwc in the file's
dtype, as float32, as float32 with per-band mean/std; read() CHW in uint16
and float32; rasterio's read(out_dtype="float32")), so all see the same
windows and cache state.  NumPy's copyto of the same uint16 HWC window into
float32 is the reference for the conversion alone.

Prints one markdown table (to stdout, and to --out if given).
--smoke: a small file and a few windows, a few seconds; writes nothing.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import rasterio
from rasterio.transform import Affine
from rasterio.windows import Window

import rasterloader

WIN = 256
MEAN = [1000.0, 1500.0, 2000.0, 2500.0]
STD = [300.0, 400.0, 500.0, 600.0]


def make_file(path, size):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 4000, (4, size, size), dtype=np.uint16)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=4, dtype="uint16",
                       tiled=True, blockxsize=512, blockysize=512, compress="deflate", predictor=2,
                       interleave="pixel", crs="EPSG:32633",
                       transform=Affine(10.0, 0.0, 399960.0, 0.0, -10.0, 5800020.0)) as d:
        d.write(img)


def windows(size, n, seed=7):
    rng = np.random.default_rng(seed)
    return [Window(int(c), int(r), WIN, WIN)
            for c, r in zip(rng.integers(0, size - WIN + 1, n), rng.integers(0, size - WIN + 1, n))]


# (name, method, keywords, bytes per value written)
READS = [
    ("read_hwc(window=w) uint16", "read_hwc", {}, 2),
    ('read_hwc(window=w, out_dtype="float32")', "read_hwc", {"out_dtype": "float32"}, 4),
    ("read_hwc(window=w, mean=, std=) float32", "read_hwc", {"mean": MEAN, "std": STD}, 4),
    ("read(window=w) uint16, CHW", "read", {}, 2),
    ('read(window=w, out_dtype="float32"), CHW', "read", {"out_dtype": "float32"}, 4),
    ('rasterio read(window=w, out_dtype="float32"), CHW', "rasterio", {"out_dtype": "float32"}, 4),
]


def one_read(ds, rio, method, w, pool, kw):
    if method == "read_hwc":
        t = ds.read_hwc(window=w, pool=pool, **kw)
        t.release()
    elif method == "read":
        ds.read(window=w, **kw)
    else:
        rio.read(window=w, **kw)


def timed_pass(ds, rio, wins, pool):
    """Per read shape, the wall us of every window (reads interleaved per window)."""
    us = {name: [] for name, *_ in READS}
    cpu = {name: [] for name, *_ in READS}
    for w in wins:
        for name, method, kw, _ in READS:
            c0, t0 = time.thread_time(), time.perf_counter()
            one_read(ds, rio, method, w, pool, kw)
            us[name].append((time.perf_counter() - t0) * 1e6)
            cpu[name].append((time.thread_time() - c0) * 1e6)
    return us, cpu


def numpy_astype_us(ds, wins):
    out = []
    for w in wins[:200]:
        x = ds.read(window=w).transpose(1, 2, 0).copy()
        dst = np.empty(x.shape, np.float32)
        t0 = time.perf_counter()
        np.copyto(dst, x, casting="unsafe")
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--windows", type=int, default=1000)
    ap.add_argument("--out", help="also write the table here")
    ap.add_argument("--label", default="", help="a note for the table header (e.g. before/after)")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    if a.smoke:
        a.size, a.windows, a.out = 512, 20, None
    rasterloader.set_threads(1)
    with tempfile.TemporaryDirectory(prefix="rl-bench-convert-") as tmp:
        path = os.path.join(tmp, "u16_4b.tif")
        make_file(path, a.size)
        wins = windows(a.size, a.windows)
        pool = None                                    # the default pool, as users read
        with rasterloader.open(path) as ds, rasterio.open(path) as rio:
            timed_pass(ds, rio, wins, pool)            # cold: fills the tile cache, GDAL's block cache
            warm, warm_cpu = timed_pass(ds, rio, wins, pool)
            npy = numpy_astype_us(ds, wins)
    load = os.getloadavg()
    L = [f"Warm read_hwc, {a.windows} random {WIN}x{WIN} windows of a {a.size}x{a.size} 4-band uint16 "
         f"DEFLATE pixel-interleaved file (512x512 tiles), second pass, 1 thread{a.label}; "
         f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", "",
         "| read | median us | mean us | MB/s written | median us, this thread's CPU time |",
         "|---|---:|---:|---:|---:|"]
    for name, _, _, value_nbytes in READS:
        v = warm[name]
        nbytes = WIN * WIN * 4 * value_nbytes
        L.append(f"| {name} | {statistics.median(v):.0f} | {statistics.fmean(v):.0f} | "
                 f"{nbytes / statistics.median(v):.0f} | {statistics.median(warm_cpu[name]):.0f} |")
    L.append(f"| NumPy: copyto(float32 HWC, uint16 HWC), the conversion alone | "
             f"{statistics.median(npy):.0f} | {statistics.fmean(npy):.0f} | "
             f"{WIN * WIN * 16 / statistics.median(npy):.0f} | |")
    text = "\n".join(L) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    if a.smoke:
        assert all(len(v) == a.windows for v in warm.values())
    return 0


if __name__ == "__main__":
    sys.exit(main())
