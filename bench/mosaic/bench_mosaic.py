"""Mosaic benchmark (issue 16): random 256x256 boxes over the two Sentinel-2-like
scenes (data/make_mosaic_fixtures.py: UTM 31N + 32N, five band files each at
10 m and 20 m), read five ways on the same boxes:

- "TorchGeo way": WarpedVRT per band file in the other zone, then
  rasterio.merge.merge per band, stacked (tests/python/mosaic_oracle.py),
  sequential in one process;
- Mosaic.read: rasterloader.Mosaic, sequential in one process;
- BatchLoader over the mosaic (batches of 16, the library's threads, in process);
- the TorchGeo way in a DataLoader with 2 workers (a map-style Dataset of
  boxes, batch 16, default_collate);
- BatchDataset over the mosaic in a DataLoader with 2 workers (batch 16).

Each configuration runs in its own process (PSS measured for it and its
workers every 100 ms).  "pixels equal" compares every box's pixels with the
TorchGeo way's (a sha256 over the boxes in order).  GDAL_CACHEMAX is set to
64 MiB for every process.

    python bench/mosaic/bench_mosaic.py [--boxes 192] [--out bench/results/mosaic.md] [--smoke]
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from peak_pss import PeakPss  # noqa: E402
sys.path.insert(0, os.path.join(ROOT, "data"))
os.environ.setdefault("GDAL_CACHEMAX", "64")

WAYS = ["torchgeo", "mosaic", "batchloader", "torchgeo_dl2", "batchdataset_dl2"]
LABELS = {"torchgeo": "TorchGeo way (WarpedVRT + merge), 1 process",
          "mosaic": "Mosaic.read, 1 process",
          "batchloader": "BatchLoader over the Mosaic (in process, threads)",
          "torchgeo_dl2": "TorchGeo way in DataLoader, 2 workers",
          "batchdataset_dl2": "BatchDataset over the Mosaic in DataLoader, 2 workers"}
BATCH = 16


class _BoxDataset:
    """TorchGeo-style map-style Dataset: index -> the box's [C,H,W] tensor."""

    def __init__(self, scenes, boxes):
        self.scenes, self.boxes, self.oracle = scenes, boxes, None

    def __len__(self):
        return len(self.boxes)

    def __getitem__(self, i):
        import torch
        from mosaic_oracle import TorchGeoWay
        if self.oracle is None:            # opened in the worker, kept (TorchGeo's LRU cache)
            self.oracle = TorchGeoWay(self.scenes)
        a = self.oracle.read(self.boxes[i])
        return torch.from_numpy(a.astype("int32"))   # TorchGeo widens uint16


def run_one(way, fixtures, nboxes, seed):
    import numpy as np
    import rasterloader
    from make_mosaic_fixtures import make_mosaic_fixtures, scene_paths
    make_mosaic_fixtures(fixtures)
    scenes = scene_paths(fixtures)
    m = rasterloader.Mosaic(scenes)
    boxes = [b for _, _, b in rasterloader.RandomGeoWindows(m, 256, nboxes, seed=seed)]
    import torch  # noqa: F401  (imported before timing: every training loop has it already)
    h = hashlib.sha256()
    with PeakPss(period=0.1) as mem:
        t0 = time.perf_counter()
        if way == "torchgeo":
            from mosaic_oracle import TorchGeoWay
            o = TorchGeoWay(scenes)
            for b in boxes:
                h.update(o.read(b).astype(np.uint16).tobytes())
        elif way == "mosaic":
            for b in boxes:
                h.update(m.read(b).tobytes())
        elif way == "batchloader":
            s = rasterloader.RandomGeoWindows(m, 256, nboxes, seed=seed)
            ld = rasterloader.BatchLoader(s, BATCH, out_dtype="uint16", masks=False)
            for batch in ld:
                x = np.from_dlpack(batch.image)
                h.update(np.ascontiguousarray(x.transpose(0, 3, 1, 2)).tobytes())
        elif way in ("torchgeo_dl2", "batchdataset_dl2"):
            from torch.utils.data import DataLoader
            if way == "torchgeo_dl2":
                dl = DataLoader(_BoxDataset(scenes, boxes), batch_size=BATCH, num_workers=2)
                for x in dl:
                    h.update(x.numpy().astype(np.uint16).tobytes())
            else:
                from rasterloader.torch import BatchDataset
                s = rasterloader.RandomGeoWindows(m, 256, nboxes, seed=seed)
                ds = BatchDataset(s, batch_size=BATCH, out_dtype="uint16", masks=False)
                got = {}
                for batch in DataLoader(ds, batch_size=None, num_workers=2):
                    for k, i in enumerate(batch["index"].tolist()):
                        got[i] = batch["image"][k].numpy().tobytes()
                for i in range(len(boxes)):
                    h.update(got[i])
        dt = time.perf_counter() - t0
    print(json.dumps(dict(way=way, reads_per_s=len(boxes) / dt, seconds=dt, peak_pss=mem.pss,
                          digest=h.hexdigest(), boxes=len(boxes))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--boxes", type=int, default=192)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=int, default=2, help="runs per way (best reported)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "mosaic.md"))
    ap.add_argument("--smoke", action="store_true", help="16 boxes, 1 run, report to a temp file")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    a = ap.parse_args()
    fixtures = os.environ.get("RASTER_FIXTURES", os.path.join(ROOT, "data", "fixtures"))
    if a.one:
        return run_one(a.one, fixtures, a.boxes, a.seed)
    if a.smoke:
        a.boxes, a.runs = 16, 1
        import tempfile
        a.out = os.path.join(tempfile.mkdtemp(), "mosaic.md")
    rows = {}
    for run in range(a.runs):
        for way in WAYS:
            p = subprocess.run([sys.executable, __file__, "--one", way, "--boxes", str(a.boxes),
                                "--seed", str(a.seed)], capture_output=True, text=True)
            if p.returncode != 0:
                sys.stderr.write(p.stderr)
                return 1
            r = json.loads(p.stdout.strip().splitlines()[-1])
            print(f"run {run}: {LABELS[way]}: {r['reads_per_s']:.1f} reads/s, peak PSS "
                  f"{r['peak_pss'] / 2**20:.0f} MiB", flush=True)
            rows.setdefault(way, []).append(r)
    ref = rows["torchgeo"][0]["digest"]
    best = {w: max(rs, key=lambda r: r["reads_per_s"]) for w, rs in rows.items()}
    base, base_dl = best["torchgeo"]["reads_per_s"], best["torchgeo_dl2"]["reads_per_s"]
    load = os.getloadavg()
    lines = [
        "# Mosaic benchmark (issue 16)", "",
        f"`make bench-mosaic` ({' '.join(sys.argv[1:]) or 'defaults'}): {a.boxes} random 256x256 "
        "boxes (RandomGeoWindows, seed "
        f"{a.seed}) over two Sentinel-2-like scenes in UTM 31N and 32N (five band files each: "
        "B02, B03, B04 at 10 m, B8A, B11 at 20 m; uint16, DEFLATE pred 2, 256x256 tiles), on "
        "the 31N 10 m grid. Each way in its own process; best of "
        f"{a.runs} runs; GDAL_CACHEMAX=64 MiB; 2 cores shared with other work (load average "
        f"{load[0]:.1f} at the end). PSS: the process and its workers, every 100 ms.", "",
        "| way | reads/s (best) | all runs | vs TorchGeo way, same setting | peak PSS (MiB) "
        "| pixels equal |",
        "|---|---:|---|---:|---:|---|"]
    for w in WAYS:
        b = best[w]
        vs = b["reads_per_s"] / (base_dl if w.endswith("_dl2") else base)
        runs = ", ".join(f"{r['reads_per_s']:.1f}" for r in rows[w])
        lines.append(f"| {LABELS[w]} | {b['reads_per_s']:.1f} | {runs} | {vs:.1f}x | "
                     f"{max(r['peak_pss'] for r in rows[w]) / 2**20:.0f} | "
                     f"{'yes' if all(r['digest'] == ref for r in rows[w]) else 'NO'} |")
    lines += ["", "\"vs TorchGeo way\": in-process ways against the sequential TorchGeo way, the "
              "DataLoader ways against the TorchGeo way in the same DataLoader. The BatchLoader "
              "row is against the sequential TorchGeo way (issue 16's target compares it with "
              "the TorchGeo way in a DataLoader with 2 workers: "
              f"{best['batchloader']['reads_per_s'] / base_dl:.1f}x).", ""]
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {a.out}")
    return 0 if all(r["digest"] == ref for rs in rows.values() for r in rs) else 1


if __name__ == "__main__":
    sys.exit(main())
