#!/usr/bin/env python3
"""bench_batch.py - the BatchDataset batch read of `make bench-breakdown`, float32 mean/std against uint16.

    python bench/convert/bench_batch.py [--data DIR] [--batches N]

The native loader's read (bench/defaults/loader_breakdown.py's "read_into ...
(pre-faulted)" rows): batches of 32 random 256x256 windows of the one-scene
draw (4-band uint16 DEFLATE COG, 512x512 tiles, + its uint8 mask), warm tile
cache, one read thread, into pre-faulted tensors, as float32 with per-band
mean/std and as uint16, the two reads interleaved batch by batch.  Timed per
batch in this thread's CPU time (the machine is shared: CPU time is what the
read costs, wall time what it waited too) and wall time, medians.  The
conversion's share is the difference of the two reads.  Run it twice, with
RASTERLOADER_CONVERT_TABLES=0 (the direct kernels) and without (lookup
tables, lib/common/convert.h), to compare.
"""
import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench", "defaults"))
sys.path.insert(0, os.path.join(ROOT, "bench", "loader"))

import torch  # noqa: E402

import loader_breakdown as lb  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "bench", "data"))
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--batches", type=int, default=48)
    a = ap.parse_args()
    from bench_loader import ensure_data
    ensure_data(a.data, a.size)
    samples = lb.scene_samples(a.data, lb.BATCH * a.batches, a.size)
    f32, u16 = lb.dataset(samples), lb.dataset(samples, out_dtype="uint16", mean=None, std=None)
    lo, lo16 = f32.loader, u16.loader
    lo.threads = lo16.threads = 1
    batches = lo.plan()[:a.batches]
    h, w, c = lo.height, lo.width, lo.channels
    img, m = torch.empty((lb.BATCH, h, w, c)), torch.empty((lb.BATCH, h, w), dtype=torch.uint8)
    img16 = torch.empty((lb.BATCH, h, w, c), dtype=torch.uint16)
    for t in (img, m, img16):
        lb.touch(t)
    for b in batches:                       # warm: every tile decoded, tables built
        lo.read_into(b, img, m, layout="bhwc")
        lo16.read_into(b, img16, m, layout="bhwc")
    cpu = {"f32": [], "u16": []}
    wall = {"f32": [], "u16": []}
    for b in batches:
        for key, fn in (("f32", lambda: lo.read_into(b, img, m, layout="bhwc")),
                        ("u16", lambda: lo16.read_into(b, img16, m, layout="bhwc"))):
            c0, t0 = time.thread_time(), time.perf_counter()
            fn()
            wall[key].append((time.perf_counter() - t0) * 1e3)
            cpu[key].append((time.thread_time() - c0) * 1e3)
    med = {k: (statistics.median(cpu[k]), statistics.median(wall[k])) for k in cpu}
    tables = os.environ.get("RASTERLOADER_CONVERT_TABLES", "") != "0"
    load = os.getloadavg()
    print(f"tables {'on' if tables else 'off'}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"median of {a.batches} batches, ms per batch (CPU / wall): "
          f"float32 mean/std + mask {med['f32'][0]:.2f} / {med['f32'][1]:.2f}, "
          f"uint16 + mask {med['u16'][0]:.2f} / {med['u16'][1]:.2f}, "
          f"difference (the conversion) {med['f32'][0] - med['u16'][0]:.2f} / {med['f32'][1] - med['u16'][1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
