#!/usr/bin/env python3
"""bench_warm.py - warm reads (every tile cached) per read shape: rasterio, rasterloader, memcpy.

    python bench/warm/bench_warm.py [--data bench/data] [--out bench/results/warm_reads.md]
    python bench/warm/bench_warm.py --smoke        # a small file, a few windows, pixels checked
                                                   # against rasterio; writes nothing

Issue 22, items 1 and 5: one process, N random 256x256 windows of the bench
image (4096x4096, 4-band uint16 DEFLATE, pixel-interleaved, 512x512 tiles:
data/make_fixtures.py --bench, made on first use) and of its 1-band uint8 mask
file.  Each window is read in every shape in turn, by rasterio and by
rasterloader, so all see the same windows and cache state; the first pass
fills the caches (GDAL's block cache, rasterloader's tile cache), the SECOND
pass is timed.  Both at their defaults: GDAL_CACHEMAX unset (5 % of RAM per
process), the tile cache at its default budget (an arena of its own,
RASTERLOADER_TILE_CACHE_NAME, so a user's arena is never touched).

Beside them, the memcpy limit of the bytes each read returns, measured with
NumPy in the same run on the same windows: np.copyto of the window out of an
in-memory array that already has the layout and dtype the read returns (the
least any reader must do: move those bytes once).  Wall microseconds per read,
median (mean in brackets).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

os.environ.pop("GDAL_CACHEMAX", None)         # rasterio at its default

import numpy as np
import rasterio
from rasterio.windows import Window

import rasterloader

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WIN = 256
IMAGE, MASK = "bench_u16_deflate.tif", "bench_mask_u8.tif"


def ensure_data(data_dir, size):
    """The bench image and mask (make_fixtures.py --bench, seeded); a no-op when up to date."""
    fixtures = os.environ.get("RASTER_FIXTURES") or os.path.join(ROOT, "data", "fixtures")
    subprocess.run([sys.executable, os.path.join(ROOT, "data", "make_fixtures.py"), "--out", fixtures,
                    "--bench", data_dir, "--bench-size", str(size)], check=True, stdout=subprocess.DEVNULL)
    for name in (IMAGE, MASK):                 # in the page cache for both readers
        with open(os.path.join(data_dir, name), "rb") as fh:
            while fh.read(1 << 24):
                pass


def make_small(data_dir, size):
    """Smoke data: the bench files' layout at 'size', random pixels (nothing else written)."""
    rng = np.random.default_rng(1)
    common = dict(driver="GTiff", width=size, height=size, tiled=True, blockxsize=512, blockysize=512,
                  compress="deflate")
    with rasterio.open(os.path.join(data_dir, IMAGE), "w", count=4, dtype="uint16", interleave="pixel",
                       predictor=2, **common) as d:
        d.write(rng.integers(0, 4000, (4, size, size), dtype=np.uint16))
    with rasterio.open(os.path.join(data_dir, MASK), "w", count=1, dtype="uint8", **common) as d:
        d.write(rng.integers(0, 10, (1, size, size), dtype=np.uint8))


def windows(size, n, seed=22):
    rng = np.random.default_rng(seed)
    return [Window(int(c), int(r), WIN, WIN)
            for c, r in zip(rng.integers(0, size - WIN + 1, n), rng.integers(0, size - WIN + 1, n))]


def rl_hwc(ds, w):
    t = ds.read_hwc(window=w)                  # a pooled Tile, given back as a loader does
    t.release()


# (name, rasterio read, rasterloader read, memcpy source key, values returned per pixel, value bytes)
SHAPES = [
    ("`read(window=w)` 4 bands CHW",
     lambda rio, w: rio["img"].read(window=w), lambda rl, w: rl["img"].read(window=w), "chw", 4, 2),
    ("`read(2, window=w)` one band of four",
     lambda rio, w: rio["img"].read(2, window=w), lambda rl, w: rl["img"].read(2, window=w), "plane", 1, 2),
    ('`read(window=w, out_dtype="float32")`',
     lambda rio, w: rio["img"].read(window=w, out_dtype="float32"),
     lambda rl, w: rl["img"].read(window=w, out_dtype="float32"), "chw_f32", 4, 4),
    ("`read_hwc(window=w)` vs rasterio `read` + contiguous HWC transpose",
     lambda rio, w: np.ascontiguousarray(rio["img"].read(window=w).transpose(1, 2, 0)),
     lambda rl, w: rl_hwc(rl["img"], w), "hwc", 4, 2),
    ("uint8 mask `read(1, window=w)`",
     lambda rio, w: rio["mask"].read(1, window=w), lambda rl, w: rl["mask"].read(1, window=w), "mask", 1, 1),
]


def timed_pass(rio, rl, wins):
    us = {name: ([], []) for name, *_ in SHAPES}
    for w in wins:
        for name, rio_read, rl_read, *_ in SHAPES:
            t0 = time.perf_counter()
            rio_read(rio, w)
            t1 = time.perf_counter()
            rl_read(rl, w)
            t2 = time.perf_counter()
            us[name][0].append((t1 - t0) * 1e6)
            us[name][1].append((t2 - t1) * 1e6)
    return us


def memcpy_sources(rio):
    """Whole-image arrays in each returned layout and dtype (the memcpy limit's sources)."""
    chw = rio["img"].read()
    return {"chw": chw, "plane": chw[1], "chw_f32": chw.astype(np.float32),
            "hwc": np.ascontiguousarray(chw.transpose(1, 2, 0)), "mask": rio["mask"].read(1)}


def memcpy_us(src, wins):
    """np.copyto of each window out of 'src' into a fresh array of its shape."""
    out = []
    for w in wins:
        r, c = w.row_off, w.col_off
        part = src[..., r:r + WIN, c:c + WIN] if src.ndim != 3 or src.shape[2] != 4 else src[r:r + WIN, c:c + WIN]
        t0 = time.perf_counter()
        dst = np.empty(part.shape, part.dtype)
        np.copyto(dst, part)
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def same_pixels(paths, wins):
    """Smoke: every shape's warm rasterloader read equals rasterio's, pixel for pixel."""
    with rasterio.open(paths["img"]) as ri, rasterio.open(paths["mask"]) as rm, \
            rasterloader.open(paths["img"]) as li, rasterloader.open(paths["mask"]) as lm:
        for w in wins:
            chw = ri.read(window=w)
            assert np.array_equal(li.read(window=w), chw)
            assert np.array_equal(li.read(2, window=w), chw[1])
            assert np.array_equal(li.read(window=w, out_dtype="float32"), ri.read(window=w, out_dtype="float32"))
            t = li.read_hwc(window=w)
            assert np.array_equal(t.numpy(), chw.transpose(1, 2, 0))
            t.release()
            assert np.array_equal(lm.read(1, window=w), rm.read(1, window=w))


def cell(v):
    return f"{statistics.median(v):.0f} ({statistics.fmean(v):.0f})"


def table(us, lim, n, size, label):
    up = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    rev = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True,
                         text=True).stdout.strip()
    st = rasterloader.tile_cache_stats() if hasattr(rasterloader, "tile_cache_stats") else None
    L = [f"Warm reads{label}: {n} random {WIN}x{WIN} windows, second pass, one process, 1 thread, "
         f"of a {size}x{size} 4-band uint16 DEFLATE pixel-interleaved COG (512x512 tiles) and its 1-band uint8 "
         f"mask; rasterio {rasterio.__version__} (GDAL {rasterio.__gdal_version__}, GDAL_CACHEMAX unset), "
         f"rasterloader at git {rev} (tile cache at its defaults"
         + (f", mode {st['mode']}" if isinstance(st, dict) and "mode" in st else "") + ").", "",
         f"`uptime`: {up}", "",
         "Wall us per read, median (mean). ratio = rasterio / rasterloader (> 1: rasterloader faster); "
         "memcpy = NumPy copying the bytes the read returns, same windows, same run; "
         "x memcpy = rasterloader / memcpy.", "",
         "| read shape | bytes | rasterio | rasterloader | ratio | memcpy | x memcpy |",
         "|---|---:|---:|---:|---:|---:|---:|"]
    for name, _, _, key, nv, vb in SHAPES:
        a, b = us[name]
        ratio = statistics.median(a) / statistics.median(b)
        x = statistics.median(b) / statistics.median(lim[key])
        L.append(f"| {name} | {WIN * WIN * nv * vb // 1024} KiB | {cell(a)} | {cell(b)} | {ratio:.2f}x | "
                 f"{cell(lim[key])} | {x:.2f} |")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "bench", "data"))
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--windows", type=int, default=2000)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "warm_reads.md"))
    ap.add_argument("--label", default="", help="a note for the header (e.g. before/after)")
    ap.add_argument("--smoke", action="store_true", help="1024x1024 data in a temporary directory, 20 windows; "
                    "writes nothing")
    a = ap.parse_args()
    if a.smoke:
        import tempfile
        tmp = tempfile.TemporaryDirectory(prefix="rl-bench-warm-")
        a.data, a.size, a.windows, a.out = tmp.name, 1024, 20, None
        make_small(a.data, a.size)
    else:
        ensure_data(a.data, a.size)
    rasterloader.set_threads(1)
    wins = windows(a.size, a.windows)
    paths = {"img": os.path.join(a.data, IMAGE), "mask": os.path.join(a.data, MASK)}
    rio = {k: rasterio.open(p) for k, p in paths.items()}
    rl = {k: rasterloader.open(p) for k, p in paths.items()}
    timed_pass(rio, rl, wins)                  # cold: fills GDAL's block cache and the tile cache
    us = timed_pass(rio, rl, wins)
    for d in list(rio.values()) + list(rl.values()):
        d.close()
    with rasterio.open(paths["img"]) as img, rasterio.open(paths["mask"]) as mask:
        src = memcpy_sources({"img": img, "mask": mask})
    lim = {k: memcpy_us(v, wins) for k, v in src.items()}
    text = table(us, lim, a.windows, a.size, a.label)
    print(text)
    if a.smoke:
        assert all(len(v[0]) == len(v[1]) == a.windows for v in us.values())
        same_pixels(paths, wins)
        print("warm bench smoke: OK")
        return 0
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    before = os.path.join(ROOT, "bench", "warm", "before.md")
    with open(a.out, "w") as f:
        f.write(f"# Warm reads per read shape (issue 22, items 1 and 5)\n\n`make bench-warm` "
                f"(bench/warm/bench_warm.py).\n\n## This build\n\n{text}")
        if os.path.exists(before):
            with open(before) as b:
                f.write(f"\n## Before (bench/warm/before.md)\n\n{b.read()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
