#!/usr/bin/env python3
"""Where the native loader's time goes, per batch (issue 22, item 4).

    python bench/defaults/loader_breakdown.py [--data bench/data] [--out bench/results/loader_breakdown.md]
    python bench/defaults/loader_breakdown.py --smoke     # tiny file and counts, writes nothing

The native way of bench_defaults.py: rasterloader.torch.BatchDataset reading
batches of 32 random 256x256 windows of one scene (4-band uint16 DEFLATE COG,
512x512 tiles, + its uint8 mask file) as float32 HWC, normalised, with masks,
into shared-memory tensors.  Two measurements:

1. In one process, made to look like a DataLoader worker (get_worker_info()
   answers as for worker 0 of 1, so the dataset allocates shared tensors and
   reads on one thread, as in a worker), warm tile cache: time.perf_counter_ns
   around each step of a batch, every step run over the same batches:
   the sampler (the epoch's plan), resolving the samples, allocating the
   shared tensors, touching their pages once (the first-touch faults a read
   into fresh memory pays), the C read into pre-faulted tensors as float32
   normalised, as uint16 (the conversion is the difference), without the mask
   (the mask read is the difference), the binding's Python around the C call,
   freeing the tensors, and the whole BatchDataset iteration as a worker runs it.
2. A 2-worker DataLoader over the same dataset, each batch stamped in the
   worker (CLOCK_MONOTONIC, the same clock in every process) when its read
   starts and when it is yielded, and in the main process when it arrives:
   the worker-to-main hand-off (pickling the shared tensors, passing their
   descriptors, mapping them in the main process) and the main's wait.

The tile cache gets an arena of its own (RASTERLOADER_TILE_CACHE_NAME),
unlinked at the end.  Nothing here changes the library.
"""

import argparse
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench", "loader"))
sys.path.insert(0, os.path.join(ROOT, "bench", "defaults"))
WIN, BATCH = 256, 32
MEAN, STD = [1000.0] * 4, [500.0] * 4
PAGE = os.sysconf("SC_PAGE_SIZE")


def ns():
    return time.perf_counter_ns()


def med_ms(xs):
    return statistics.median(xs) / 1e6


def scene_samples(data, n, size):
    rng = np.random.default_rng(7)              # the draw of bench_defaults.py's one-scene regime
    img, msk = os.path.join(data, "bench_u16_deflate.tif"), os.path.join(data, "bench_mask_u8.tif")
    c = rng.integers(0, size - WIN + 1, n)
    rng.integers(0, 1, n)                       # bench_defaults draws the scene index first
    r = rng.integers(0, size - WIN + 1, n)
    return [(img, msk, (int(c[i]), int(r[i]), WIN, WIN)) for i in range(n)]


def dataset(samples, **kw):
    from rasterloader.torch import BatchDataset
    args = dict(layout="hwc", out_dtype="float32", mean=MEAN, std=STD, return_type="tuple")
    args.update(kw)
    return BatchDataset(samples, BATCH, **args)


class AsWorker:
    """get_worker_info() of rasterloader.torch answers as in worker 0 of 1."""

    def __enter__(self):
        import rasterloader.torch as rt
        self.rt, self.saved = rt, rt.get_worker_info
        rt.get_worker_info = lambda: types.SimpleNamespace(id=0, num_workers=1)
        return self

    def __exit__(self, *exc):
        self.rt.get_worker_info = self.saved


def touch(t):
    """Write one byte in every page of t: the first-touch faults."""
    t.view(-1).view(__import__("torch").uint8)[::PAGE].fill_(1)


STEP = "the main's training step (x.mean(), y.float().mean()) on mapped tensors"


def training_step(x, y):
    """bench_defaults.py's stand-in for training: one pass over the batch."""
    return float(x.mean()) + float(y.float().mean())


def timed(fn, batches):
    out = []
    for b in batches:
        t0 = ns()
        fn(b)
        out.append(ns() - t0)
    return out


def in_process(samples, nbatches):
    """Step times (ns lists) of one emulated worker, warm cache."""
    import torch
    from rasterloader import _core
    from rasterloader.torch import shared_empty
    res = {}
    ds = dataset(samples)
    lo = ds.loader
    t0 = ns()
    plan = lo.plan()
    res["sampler: the epoch's plan (BatchLoader.plan), per batch"] = [(ns() - t0) / len(plan)]
    batches = plan[:nbatches]
    h, w, c = lo.height, lo.width, lo.channels
    with AsWorker():
        for _ in ds:                                       # warm: every tile of the plan decoded
            pass
        lo.threads = 1
        res["BatchDataset iteration as a worker runs it (total)"] = []
        it = iter(ds)
        for _ in batches:
            t0 = ns()
            next(it)
            res["BatchDataset iteration as a worker runs it (total)"].append(ns() - t0)
        allocs, faults, frees = [], [], []
        for _ in batches:
            t0 = ns()
            img, m = shared_empty((BATCH, h, w, c), torch.float32), shared_empty((BATCH, h, w), torch.uint8)
            t1 = ns()
            touch(img)
            touch(m)
            t2 = ns()
            del img, m
            t3 = ns()
            allocs.append(t1 - t0)
            faults.append(t2 - t1)
            frees.append(t3 - t2)
        res["shared-tensor allocation (image 32 MiB + mask 2 MiB)"] = allocs
        res["first-touch page faults of those tensors"] = faults
        img, m = shared_empty((BATCH, h, w, c), torch.float32), shared_empty((BATCH, h, w), torch.uint8)
        touch(img), touch(m)
        res["touching them again (mapped: what a reused buffer pays)"] = timed(
            lambda b: (touch(img), touch(m)), batches)
        del img, m
        res["freeing them (munmap, close)"] = frees
        import rasterloader.torch as rt
        if hasattr(rt, "_batch_buffers"):                             # a rasterloader with batch rings
            ring_ds = dataset(samples)
            rt._batch_buffers(ring_ds, lo, BATCH, "hwc", False, BATCH)  # makes the ring (once)
            res["a batch ring slot instead (take a free slot, make its views)"] = timed(
                lambda b: rt._batch_buffers(ring_ds, lo, BATCH, "hwc", False, BATCH), batches)
        img, m = torch.empty((BATCH, h, w, c)), torch.empty((BATCH, h, w), dtype=torch.uint8)
        img16 = torch.empty((BATCH, h, w, c), dtype=torch.uint16)
        touch(img), touch(m), touch(img16)
        ds16 = dataset(samples, out_dtype="uint16", mean=None, std=None)
        ds_nomask = dataset(samples, masks=False)
        for d in (ds16, ds_nomask):
            d.loader.threads = 1
        res["read_into, float32 normalised + mask (pre-faulted)"] = timed(
            lambda b: lo.read_into(b, img, m, layout="bhwc"), batches)
        res["read_into, uint16 + mask (pre-faulted)"] = timed(
            lambda b: ds16.loader.read_into(b, img16, m, layout="bhwc"), batches)
        res["read_into, float32 normalised, no mask (pre-faulted)"] = timed(
            lambda b: ds_nomask.loader.read_into(b, img, None, layout="bhwc"), batches)
        res["resolving the samples (WindowReader._items)"] = timed(lo._items, batches)
        items = [lo._items(b) for b in batches]
        kw = lo._read_kwargs()
        res["the C call alone (_core.read_batch, items resolved)"] = timed(
            lambda k: _core.read_batch(items[k], out=img, mask_out=m, validity_out=None, layout="bhwc",
                                       threads=1, **kw), range(len(items)))
        res["torch.tensor(indices) and the result tuple"] = timed(lambda b: (torch.tensor(b), (img, m)), batches)
        src = np.empty(BATCH * h * w * c * 4, np.uint8)
        dst = np.empty_like(src)
        src.fill(1), dst.fill(1)
        res[STEP] = timed(lambda b: training_step(img, m), batches)
        fresh = []
        for b in batches:
            t0 = ns()
            x, y = shared_empty((BATCH, h, w, c), torch.float32), shared_empty((BATCH, h, w), torch.uint8)
            lo.read_into(b, x, y, layout="bhwc")
            fresh.append(ns() - t0)
            del x, y
        res["allocation + read_into fresh shared tensors (faults inside the read)"] = fresh
        res["memcpy limit: copying the 32 MiB float32 batch (NumPy)"] = timed(lambda b: np.copyto(dst, src), batches)
    return res


def handoff(samples, nbatches, workers):
    """Per-batch stamps of a DataLoader run: worker read, hand-off, main wait."""
    import torch
    from torch.utils.data import DataLoader

    base = dataset(samples)

    class Stamped(torch.utils.data.IterableDataset):
        def __iter__(self):
            gen = iter(base)
            sent = 0
            while True:
                t0 = time.monotonic_ns()
                try:
                    image, mask = next(gen)
                except StopIteration:
                    return
                t1 = time.monotonic_ns()
                yield image, mask, torch.tensor([t0, t1, sent], dtype=torch.int64)
                sent = time.monotonic_ns() - t1            # the worker's side of the hand-off

    loader = DataLoader(Stamped(), batch_size=None, num_workers=workers, multiprocessing_context="fork",
                        persistent_workers=True)
    handoff.ring_stats = getattr(base, "ring_stats", lambda: {})
    rows = []
    for epoch in range(2):                                  # the first is cold; the second is measured
        rows = []
        t_start = time.monotonic_ns()
        it = iter(loader)
        while True:
            t0 = time.monotonic_ns()
            try:
                x, y, st = next(it)
            except StopIteration:
                break
            t1 = time.monotonic_ns()
            acc = training_step(x, y)
            t2 = time.monotonic_ns()
            del x, y
            t3 = time.monotonic_ns()
            s = st.tolist()
            rows.append({"read": s[1] - s[0], "latency": t1 - s[1], "worker_send": s[2], "wait": t1 - t0,
                         "handoff": t1 - max(s[1], t0), "step": t2 - t1, "free": t3 - t2})
            if len(rows) >= nbatches and epoch == 1:
                break
        seconds = (time.monotonic_ns() - t_start) / 1e9
    del it, loader
    handoff.ring = handoff.ring_stats()
    return rows, len(rows) * BATCH / seconds, acc


def report(res, rows, rate, args, up0, up1):
    per = lambda k: med_ms(res[k])                 # noqa: E731
    total = per("BatchDataset iteration as a worker runs it (total)")
    c_f32 = per("read_into, float32 normalised + mask (pre-faulted)")
    items = per("resolving the samples (WindowReader._items)")
    wrapper = c_f32 - items - per("the C call alone (_core.read_batch, items resolved)")
    ring = "a batch ring slot instead (take a free slot, make its views)"
    buffers = [("the batch's buffers: a ring slot (take, views)", per(ring))] if ring in res else [
        ("shared-tensor allocation", per("shared-tensor allocation (image 32 MiB + mask 2 MiB)")),
        ("first-touch page faults", per("first-touch page faults of those tensors"))]
    parts = [
        ("sampler (epoch plan, per batch)", per("sampler: the epoch's plan (BatchLoader.plan), per batch")),
    ] + buffers + [
        ("resolving samples (Python)", per("resolving the samples (WindowReader._items)")),
        ("C read, uint16 + mask (cache hits, place)", per("read_into, uint16 + mask (pre-faulted)") - items - wrapper),
        ("conversion to float32 + normalisation (float32 read - uint16 read)",
         c_f32 - per("read_into, uint16 + mask (pre-faulted)")),
        ("binding Python around the C call (read_into - _items - C call)", wrapper),
        ("torch.tensor(indices), result tuple", per("torch.tensor(indices) and the result tuple")),
    ]
    mask = c_f32 - per("read_into, float32 normalised, no mask (pre-faulted)")
    explained = sum(v for _, v in parts)
    lines = [
        "# Where the native loader's time goes, per batch",
        "",
        f"Made by `make bench-breakdown` (bench/defaults/loader_breakdown.py): the native way of "
        "bench/results/defaults.md, `rasterloader.torch.BatchDataset(layout=\"hwc\", out_dtype=\"float32\", "
        f"mean, std)`, batches of {BATCH} random {WIN}x{WIN} windows of the one-scene regime's draw "
        f"({args.samples} samples of the {args.size}x{args.size} 4-band uint16 DEFLATE COG, 512x512 tiles, and "
        "its uint8 mask file), warm tile cache (its default budget, an arena of its own). Median over "
        f"{args.batches} batches, ms per batch of {BATCH}.",
        "",
        f"`uptime` before: `{up0}`",
        "",
        f"`uptime` after: `{up1}`",
        "",
        "## 1. One process, as a worker (one read thread, shared tensors), step by step",
        "",
        "| step | ms per batch | us per sample |",
        "|---|---:|---:|",
    ]
    for k, v in res.items():
        m = med_ms(v)
        lines.append(f"| {k} | {m:.2f} | {m * 1000 / BATCH:.0f} |")
    lines += [
        "",
        "Attribution of the whole iteration (each row a difference or a direct measurement above):",
        "",
        "| share | ms per batch | % of the iteration |",
        "|---|---:|---:|",
    ]
    for name, v in parts:
        lines.append(f"| {name} | {v:.2f} | {100 * v / total:.0f} % |")
    lines += [
        f"| unexplained (iteration - the rows above) | {total - explained:.2f} | "
        f"{100 * (total - explained) / total:.0f} % |",
        f"| **whole iteration** | **{total:.2f}** | 100 % |",
        "",
        ("With batch rings the iteration reads into a slot of the worker's ring, mapped and pre-faulted "
         "once: allocation, first touch and freeing (the rows above, what a fresh shared tensor costs: the "
         "fallback when no slot is free) are not paid per batch. " if ring in res else "")
        + "Without a ring slot, freeing the batch's tensors (the row above) is paid in the worker once the "
        "batch is sent and again in the main process when it drops the batch (section 2).",
        "",
        f"The mask read within the C read (float32 with mask - float32 without): {mask:.2f} ms per batch "
        f"({mask * 1000 / BATCH:.0f} us per sample).",
        "",
    ]
    if rows:
        g = lambda k: med_ms([r[k] for r in rows])      # noqa: E731
        mx = lambda k: max(r[k] for r in rows) / 1e6     # noqa: E731
        lines += [
            f"## 2. DataLoader, {args.workers} workers, second epoch ({len(rows)} batches)",
            "",
            f"{rate:.0f} samples/s in the main process. Stamps: CLOCK_MONOTONIC in the worker when its read "
            "starts and when it yields the batch, in the main process when `next()` returns it. "
            f"Batch rings (both epochs): {ring_note()}.",
            "",
            "| per batch | median ms | max ms |",
            "|---|---:|---:|",
            f"| worker: BatchDataset step (alloc + read + pack) | {g('read'):.2f} | {mx('read'):.2f} |",
            f"| worker: from yield until it asks for the next batch (pickle, put on the queue) | "
            f"{g('worker_send'):.2f} | {mx('worker_send'):.2f} |",
            f"| hand-off latency: worker yield to main's `next()` returning (queue, unpickle; without a ring "
            "slot also fd passing, mmap) | "
            f"{g('latency'):.2f} | {mx('latency'):.2f} |",
            f"| hand-off proper: from the later of (worker yield, main calling `next()`) to `next()` returning | "
            f"{g('handoff'):.2f} | {mx('handoff'):.2f} |",
            f"| main: waiting in `next()` | {g('wait'):.2f} | {mx('wait'):.2f} |",
            f"| main: the training step (x.mean(), y.float().mean()), the main's first touch of the batch | "
            f"{g('step'):.2f} | {mx('step'):.2f} |",
            f"| main: dropping the batch (munmap; a ring slot: its release into the pipe) | {g('free'):.2f} | "
            f"{mx('free'):.2f} |",
            "",
            f"The same training step on tensors already mapped (section 1) takes {per(STEP):.2f} ms: the rest "
            f"of the main's step, {g('step') - per(STEP):.2f} ms, is "
            + ("not a first touch when the batch came by ring slot (mapped and faulted in once per ring): "
               "cache misses on a batch another core wrote, and the load. "
               if (getattr(handoff, "ring", None) or {}).get("ring_batches") else
               "its first touch of the batch's shared pages. ") +
            "The worker's put is asynchronous (a feeder thread pickles the batch), so the time from its yield "
            "until it asks for the next batch is mostly waiting for the main to request one (DataLoader keeps "
            "2 batches per worker in flight).",
            f"With {args.workers} workers each producing a batch every {g('read') + g('worker_send'):.1f} ms, the "
            f"ceiling is {args.workers * BATCH * 1000 / (g('read') + g('worker_send')):.0f} samples/s on "
            f"{args.workers} free cores; the in-process iteration alone gives {BATCH * 1000 / total:.0f} samples/s "
            "per core.",
            "",
            "Fresh shared memory for every batch (the loader before batch rings; now the fallback when no slot "
            "is free), added up (wall ms per batch; section 2's figures are inflated by the 3 processes sharing 2 cores): allocation "
            f"{per('shared-tensor allocation (image 32 MiB + mask 2 MiB)'):.1f} + the worker's first touch "
            f"{per('first-touch page faults of those tensors'):.1f} + the worker's free "
            f"{per('freeing them (munmap, close)'):.1f} + the hand-off proper {g('handoff'):.1f} + the main's first "
            f"touch {g('step') - per(STEP):.1f} + the main's munmap {g('free'):.1f} = "
            f"**{per('shared-tensor allocation (image 32 MiB + mask 2 MiB)') + per('first-touch page faults of those tensors') + per('freeing them (munmap, close)') + g('handoff') + g('step') - per(STEP) + g('free'):.1f}**"
            f", against {c_f32:.1f} for the float32 read itself into mapped memory; touching mapped pages "
            f"again costs {per('touching them again (mapped: what a reused buffer pays)'):.2f}.",
        ]
    return "\n".join(lines) + "\n"


def ring_note():
    st = getattr(handoff, "ring", None)
    if not st:
        return "none (a rasterloader without them)"
    return (f"{st['ring_batches']} batches by ring slot, {st['fresh_batches']} in fresh shared tensors "
            f"{st['fresh_reasons'] or ''}, {st['ring_slots']} slots per worker")


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "bench", "data"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "loader_breakdown.md"))
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--samples", type=int, default=8192)
    ap.add_argument("--batches", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    tmp = None
    if a.smoke:
        tmp = tempfile.mkdtemp(prefix="rl-bench-breakdown-")
        a.data, a.size, a.samples, a.batches = tmp, 1024, 128, 3
    name = os.environ.setdefault("RASTERLOADER_TILE_CACHE_NAME", f"rl-bench-breakdown-{os.getpid()}")
    os.environ.pop("RASTERLOADER_TILE_CACHE_BYTES", None)
    os.environ.pop("GDAL_CACHEMAX", None)
    try:
        from bench_loader import ensure_data
        ensure_data(a.data, a.size)
        import torch
        torch.set_num_threads(1)
        samples = scene_samples(a.data, a.samples, a.size)
        up0 = uptime()
        res = in_process(samples, a.batches)
        rows, rate, _ = handoff(samples, a.batches, a.workers)
        up1 = uptime()
        text = report(res, rows, rate, a, up0, up1)
        print(text)
        if a.smoke:
            assert len(rows) == a.batches, rows
            print("breakdown bench smoke: OK")
        else:
            with open(a.out, "w") as f:
                f.write(text)
    finally:
        for shm in glob.glob("/dev/shm/rasterloader-tc-v*-%d-%s" % (os.getuid(), name)):
            os.unlink(shm)
        if tmp:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
