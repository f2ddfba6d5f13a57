"""The tile cache inside a container's limits (issue 21), against rasterio:

- a 64 MB /dev/shm (docker's default; a tmpfs mounted in a private mount
  namespace): each torch loader with 2 workers reads every window, equal to
  rasterio's.  The arena used to take 3/4 of what was free, and torch's worker batches,
  which live there too, failed ("unable to allocate shared memory") within
  the first 40 windows;
- a memory cgroup limit of 160 MiB (a real child cgroup, v1 or v2): the
  default budget is RASTER_TILE_CACHE_DEFAULT_PERCENT of it, and a reader that
  fills its cache finishes (it was OOM-killed: the budget was 10 % of the
  host's RAM, and tmpfs pages are charged to the reader's cgroup);
- a DataLoader ending in a worker exception leaves no arena in /dev/shm.

The namespace and cgroup tests need root (as CI runs) and skip with the
kernel's reason otherwise.  The room rule, the cgroup file parsing and a
/dev/shm filling up mid-run are in tests/unit/cache/check_shm_arena_size.c.
"""

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

from conftest import own_arena_env

H, W, BANDS, TILE = 2048, 4096, 4, 256     # 64 MiB decoded: more than the old 40 MB arena


def _write_scene(path):
    """A 4-band uint16 DEFLATE scene, tiled 256: varied enough that no two
    tiles are alike, smooth enough to write in a second."""
    y, x = np.mgrid[0:H, 0:W]
    data = np.stack([((x * (b + 1) + y * 3 + (x * y) % 97) % 65521).astype("uint16")
                     for b in range(BANDS)])
    with rasterio.open(path, "w", driver="GTiff", width=W, height=H, count=BANDS, dtype="uint16",
                       tiled=True, blockxsize=TILE, blockysize=TILE, compress="deflate",
                       predictor=2, crs="EPSG:32633", transform=from_origin(0, 0, 10, 10)) as d:
        d.write(data)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("limits") / "scene.tif")
    _write_scene(path)
    return path


def _default_cache_env():
    """A subprocess environment with an arena of its own and the cache at its
    defaults (what the tests measure), whatever this run's environment says."""
    env = own_arena_env()
    for k in ("RASTERLOADER_TILE_CACHE_BYTES", "RASTERLOADER_TILE_CACHE_SHARED"):
        env.pop(k, None)
    return env


def _run(argv, env, timeout=300):
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)


def _arenas(env):
    """The /dev/shm objects of the arena named by env (any layout version)."""
    return glob.glob(f"/dev/shm/rasterloader-tc-v*-{os.getuid()}-{env['RASTERLOADER_TILE_CACHE_NAME']}")


def _last_json(out):
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------ 64 MB /dev/shm ------------------------------

def _in_small_dev_shm(size="64m"):
    """argv prefix: a private mount namespace with a fresh tmpfs of 'size' on
    /dev/shm, then exec the rest."""
    return ["unshare", "-m", "--propagation", "private", "sh", "-c",
            f'mount -t tmpfs -o size={size} tmpfs /dev/shm && exec "$@"', "sh"]


def _namespace_refusal():
    """None when a private tmpfs on /dev/shm can be mounted, else the reason."""
    if shutil.which("unshare") is None:
        return "no unshare(1)"
    try:
        r = _run(_in_small_dev_shm("1m") + ["true"], os.environ, timeout=60)
    except OSError as e:
        return f"unshare: {e}"
    return None if r.returncode == 0 else f"unshare -m + mount tmpfs refused: {r.stderr.strip()}"


LOADER_RUN = r"""
import json, sys
import numpy as np, rasterio, rasterloader
from rasterio.windows import Window
from torch.utils.data import DataLoader
from rasterloader.torch import BatchDataset, WindowDataset, dataloader
path, kind = sys.argv[1], sys.argv[2]
with rasterio.open(path) as src:
    h, w = src.height, src.width
wins = [(path, None, (c, r, 256, 256)) for r in range(0, h - 255, 128) for c in range(0, w - 255, 128)]
if kind == "WindowDataset":
    dl = DataLoader(WindowDataset(wins, masks=False), batch_size=8, num_workers=2)
elif kind == "BatchDataset":
    dl = DataLoader(BatchDataset(wins, 8, masks=False), batch_size=None, num_workers=2)
else:
    dl = dataloader(WindowDataset(wins, masks=False), 8, num_workers=2)
seen, bad = set(), []
with rasterio.open(path) as src:
    for b in dl:
        for k, i in enumerate(b["index"].tolist()):
            c, r = wins[i][2][:2]
            want = src.read(window=Window(c, r, 256, 256)).astype("float32")
            if not np.array_equal(b["image"][k].numpy(), want):
                bad.append(i)
            seen.add(i)
s = rasterloader.tile_cache_stats()
print(json.dumps({"windows": len(wins), "seen": len(seen), "bad": bad[:5], "mode": s["mode"],
                  "reason": s["reason"]}))
"""


@pytest.mark.parametrize("kind", ["WindowDataset", "BatchDataset", "dataloader"])
def test_torch_loaders_read_every_window_in_a_64mb_dev_shm(scene, kind):
    refusal = _namespace_refusal()
    if refusal:
        print(f"SKIP: {refusal}")
        pytest.skip(refusal)
    r = _run(_in_small_dev_shm() + [sys.executable, "-c", LOADER_RUN, scene, kind], _default_cache_env())
    assert r.returncode == 0, r.stderr[-3000:]
    got = _last_json(r)
    assert got["seen"] == got["windows"] == 465 and got["bad"] == [], got
    # /dev/shm is too small to share: a private cache in each process, with the reason.
    assert got["mode"] == "private" and "/dev/shm is small (64 MiB" in got["reason"], got


# ------------------------------ memory cgroup -------------------------------

LIMIT = 160 << 20
DEFAULT_PERCENT = 10        # RASTER_TILE_CACHE_DEFAULT_PERCENT (include/rasterloader.h)


class _Cgroup:
    """A parent cgroup limited to LIMIT and an unlimited child to run in (so
    the limit is found by walking up), v2 when the unified hierarchy has the
    memory controller, else v1's memory hierarchy."""

    def __init__(self, tag):
        v2 = "/sys/fs/cgroup"
        unified = "memory" in _read(os.path.join(v2, "cgroup.controllers")).split()
        self.parent = os.path.join(v2, tag) if unified else os.path.join(v2, "memory", tag)
        self.child = os.path.join(self.parent, "reader")
        os.mkdir(self.parent)
        try:
            if unified:
                _write(os.path.join(self.parent, "memory.max"), str(LIMIT))
                _write(os.path.join(self.parent, "memory.swap.max"), "0", missing_ok=True)
                _write(os.path.join(self.parent, "cgroup.subtree_control"), "+memory")
            else:
                _write(os.path.join(self.parent, "memory.limit_in_bytes"), str(LIMIT))
            os.mkdir(self.child)
        except OSError:
            self.remove()
            raise

    def enter(self):
        """preexec_fn: the subprocess moves itself into the child cgroup."""
        _write(os.path.join(self.child, "cgroup.procs"), str(os.getpid()))

    def remove(self):
        for d in (self.child, self.parent):
            if os.path.isdir(d):
                os.rmdir(d)


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _write(path, text, missing_ok=False):
    try:
        with open(path, "w") as f:
            f.write(text)
    except FileNotFoundError:
        if not missing_ok:
            raise


READER_RUN = r"""
import hashlib, json, sys
import numpy as np, rasterloader
h = hashlib.sha256()
for path in sys.argv[1:]:
    with rasterloader.open(path) as ds:
        for r in range(0, ds.height, 256):
            for c in range(0, ds.width, 256):
                h.update(np.ascontiguousarray(ds.read(window=((r, r + 256), (c, c + 256)))).tobytes())
s = rasterloader.tile_cache_stats()
print(json.dumps({"sha": h.hexdigest(), "budget": s["budget_bytes"], "mode": s["mode"],
                  "misses": s["misses"], "evictions": s["evictions"]}))
"""


def _rasterio_digest(paths):
    h = hashlib.sha256()
    for path in paths:
        with rasterio.open(path) as src:
            for r in range(0, src.height, 256):
                for c in range(0, src.width, 256):
                    h.update(np.ascontiguousarray(src.read(window=Window(c, r, 256, 256))).tobytes())
    return h.hexdigest()


def test_default_budget_follows_the_cgroup_memory_limit_and_the_reader_finishes(scene, tmp_path):
    # Three copies (three file identities): 192 MiB of distinct decoded tiles,
    # more than the limit, which the old default budget (10 % of RAM) would cache.
    paths = [scene] + [str(tmp_path / f"copy{i}.tif") for i in (1, 2)]
    for p in paths[1:]:
        shutil.copyfile(scene, p)
    env = _default_cache_env()
    tag = f"rl-test-{os.getpid()}-{env['RASTERLOADER_TILE_CACHE_NAME']}"
    try:
        cg = _Cgroup(tag)
    except OSError as e:
        print(f"SKIP: cannot create a memory cgroup: {e}")
        pytest.skip(f"cannot create a memory cgroup: {e}")
    try:
        r = subprocess.run([sys.executable, "-c", READER_RUN] + paths, env=env, capture_output=True,
                           text=True, timeout=300, preexec_fn=cg.enter)
    finally:
        for arena in _arenas(env):      # a killed reader leaves it (charged to the cgroup)
            os.unlink(arena)
        cg.remove()
    assert r.returncode == 0, f"reader ended with {r.returncode} (-9: OOM-killed): {r.stderr[-2000:]}"
    got = _last_json(r)
    assert got["budget"] == LIMIT // 100 * DEFAULT_PERCENT // 4096 * 4096, got   # whole pages
    # The cache was full.  (Private where the host's /dev/shm is too small to share.)
    assert got["mode"] in ("shared", "private") and got["evictions"] > 0, got
    assert got["sha"] == _rasterio_digest(paths)


# ------------------------------ worker exception ----------------------------

RAISING_RUN = r"""
import glob, os, sys, torch, rasterloader
from torch.utils.data import DataLoader, Dataset
path, shm = sys.argv[1], sys.argv[2]
class D(Dataset):
    def __len__(self): return 64
    def __getitem__(self, i):
        if i == 9:
            raise ValueError("bad sample 9")
        with rasterloader.open(path) as ds:
            x = ds.read(window=((0, 256), (i * 32, i * 32 + 256)))
        assert glob.glob(shm)           # the workers made the arena and read through it
        return torch.from_numpy(x.astype("float32"))
if __name__ == "__main__":
    for x in DataLoader(D(), batch_size=2, num_workers=2, multiprocessing_context=sys.argv[3]):
        pass
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_dataloader_ending_in_a_worker_exception_leaves_no_arena(scene, tmp_path, method):
    """The main process never reads; the exception ends the program while the
    workers wait for work, and multiprocessing's exit handler SIGTERMs them
    (torch's handler _exit()s: no detach).  The main process removes the
    arena at exit since no live process is attached to it."""
    v = os.statvfs("/dev/shm")
    if v.f_blocks * v.f_frsize < 128 << 20:
        print("SKIP: /dev/shm is under 128 MiB: no shared arena is made")
        pytest.skip("/dev/shm is under 128 MiB: no shared arena is made")
    env = _default_cache_env()
    shm = f"/dev/shm/rasterloader-tc-v*-{os.getuid()}-{env['RASTERLOADER_TILE_CACHE_NAME']}"
    script = tmp_path / "raising.py"        # spawn re-imports the main module
    script.write_text(RAISING_RUN)
    try:
        r = _run([sys.executable, str(script), scene, shm, method], env)
        assert r.returncode != 0 and "ValueError: bad sample 9" in r.stderr, r.stderr[-3000:]
        assert "AssertionError" not in r.stderr, r.stderr[-3000:]
        assert _arenas(env) == []
    finally:
        for arena in _arenas(env):
            os.unlink(arena)
