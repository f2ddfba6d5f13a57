"""One job of the PID-namespace test (test_tile_cache_namespaces.py), also runnable by hand:

    unshare -p -f --mount-proc python tests/python/cache/ns_churn_job.py FIXTURE CHILDREN READS SEED

Churn of processes on the shared tile cache: CHILDREN processes, two alive at a time,
each attaches to the arena named by RASTERLOADER_TILE_CACHE_NAME, reads READS random
windows and ends (every other one leaves the arena first, the rest end with os._exit()
as a killed worker would, leaving their slot to be swept).  Every read is compared with
the oracle (rasterio, read once before any child starts).  Prints one JSON line:
{"reads": n, "children": children that reported, "wrong": windows with a wrong pixel,
"errors": failed reads, "hits": arena hits (machine-wide deltas, summed), "shared": children in
shared mode, "pid": ...}.
A bounded number of reads, not a duration; the environment's
RASTERLOADER_TILE_CACHE_TEST_SLEEP_US widens the arena's race windows.
"""

import json
import os
import random
import sys

import numpy as np
import rasterio
from rasterio.windows import Window

import rasterloader
from rasterloader import _core


def child(path, oracle, reads, seed, out_fd, leave):
    rng = random.Random(seed)
    h, w = oracle.shape[1:]
    wrong = errors = 0
    s0 = rasterloader.tile_cache_stats()
    try:
        with rasterloader.open(path) as ds:
            for _ in range(reads):
                ww, wh = rng.randint(1, 300), rng.randint(1, 300)
                c, r = rng.randint(0, w - ww), rng.randint(0, h - wh)
                try:
                    got = ds.read(window=Window(c, r, ww, wh))
                except Exception:  # a spurious decode error is a failure too
                    errors += 1
                    continue
                wrong += not np.array_equal(got, oracle[:, r:r + wh, c:c + ww])
    except Exception:
        errors += 1
    s1 = rasterloader.tile_cache_stats()
    shared = s1["mode"] == "shared"
    os.write(out_fd, b"%d %d %d %d\n" % (wrong, errors, s1["hits"] - s0["hits"] if shared else 0, shared))
    if leave:
        _core._tile_cache_detach()
    os._exit(0)


def main():
    path, nchildren, reads, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    with rasterio.open(path) as src:
        oracle = src.read()
    rd, wr = os.pipe()
    alive = set()
    for i in range(nchildren):
        while len(alive) >= 2:
            pid, _ = os.wait()
            alive.discard(pid)
        pid = os.fork()
        if pid == 0:
            os.close(rd)
            child(path, oracle, reads, seed * 1000 + i, wr, leave=i % 2 == 0)
        alive.add(pid)
    while alive:
        pid, _ = os.wait()
        alive.discard(pid)
    os.close(wr)
    with os.fdopen(rd) as f:
        lines = f.read().split()
    rows = [[int(x) for x in lines[i:i + 4]] for i in range(0, len(lines), 4)]
    print(json.dumps({"reads": nchildren * reads, "children": len(rows), "wrong": sum(r[0] for r in rows),
                      "errors": sum(r[1] for r in rows), "hits": sum(r[2] for r in rows),
                      "shared": sum(r[3] for r in rows), "pid": os.getpid()}))


if __name__ == "__main__":
    main()
