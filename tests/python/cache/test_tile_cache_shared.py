"""The decoded-tile cache at its defaults: on, keyed by the file, one shared-memory
arena per user that every process attaches to.  A tile decoded in one process is a
hit in a spawned or forkserver-started one (both ways); a file opened again hits; a
file rewritten in place misses and reads its new pixels (against rasterio); an arena
with a corrupted header or of another owner is refused with the reason, and the
process falls back to a private cache."""

import multiprocessing as mp
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from rasterio.windows import Window

import rasterloader
from conftest import arena_paths, assert_same, fixture_path

NAME = "u16_deflate_pred2_tile256_pixel_3b_700x531.tif"
OTHER = "u16_zstd_pred2_tile256_pixel_3b_700x531_bigtiff.tif"    # same shape, other pixels


def read_all(path):
    with rasterloader.open(path) as ds:
        return ds.read()


def child_reads(path):
    """In a fresh process: read every tile, return (hits, misses, mode) deltas."""
    s0 = rasterloader.tile_cache_stats()
    read_all(path)
    s1 = rasterloader.tile_cache_stats()
    return s1["hits"] - s0["hits"], s1["misses"] - s0["misses"], s1["mode"], s1["attached_processes"]


def empty_cache():
    rasterloader.set_tile_cache_budget(0)
    rasterloader.set_tile_cache_budget(256 << 20)


def test_on_by_default_shared():
    s = rasterloader.tile_cache_stats()
    assert s["mode"] == "shared", s["reason"]
    assert os.environ["RASTERLOADER_TILE_CACHE_NAME"] in s["name"]
    assert str(os.getuid()) in s["name"]
    assert s["budget_bytes"] > 0
    assert s["gdal_cache_bytes"] == -1 or s["gdal_cache_bytes"] > 32 << 20   # GDAL's, not shrunk


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_tile_decoded_here_is_a_hit_in_a_new_process_and_back(method):
    path = fixture_path(NAME)
    empty_cache()
    read_all(path)
    ctx = mp.get_context(method)
    with ctx.Pool(1) as pool:
        hits, misses, mode, attached = pool.apply(child_reads, (path,))
        assert mode == "shared" and misses == 0 and hits > 0
        assert attached >= 2                       # this process and the child
        empty_cache()
        hits, misses, _, _ = pool.apply(child_reads, (path,))
        assert misses > 0                          # the child decodes
    s0 = rasterloader.tile_cache_stats()
    read_all(path)
    s1 = rasterloader.tile_cache_stats()
    assert s1["misses"] == s0["misses"] and s1["hits"] > s0["hits"]


def test_open_in_every_getitem_hits(rio):
    empty_cache()
    src = rio(NAME)
    wins = [Window(c, r, 96, 80) for c, r in [(0, 0), (300, 200), (600, 400), (10, 450)]]
    for rep in range(2):
        s0 = rasterloader.tile_cache_stats()
        for w in wins:
            with rasterloader.open(fixture_path(NAME)) as ds:
                assert_same(ds.read(window=w), src.read(window=w))
        s1 = rasterloader.tile_cache_stats()
    assert s1["misses"] == s0["misses"] and s1["hits"] >= len(wins)


def test_a_file_rewritten_in_place_misses(tmp_path):
    import rasterio
    path = str(tmp_path / "scene.tif")
    shutil.copyfile(fixture_path(NAME), path)
    empty_cache()
    read_all(path)
    ino = os.stat(path).st_ino
    with open(path, "r+b") as f, open(fixture_path(OTHER), "rb") as g:   # same inode
        f.truncate(0)
        f.write(g.read())
    assert os.stat(path).st_ino == ino
    s0 = rasterloader.tile_cache_stats()
    got = read_all(path)
    assert rasterloader.tile_cache_stats()["misses"] > s0["misses"]
    with rasterio.open(fixture_path(OTHER)) as src:
        assert_same(got, src.read())


# GDAL's cache limit before rasterloader's first open, from the GDAL it runs on.
_GDAL_CACHE_MAX = ("import ctypes, os; g = ctypes.CDLL(rasterloader._GDAL['libraries']['gdal'], "
                   "mode=os.RTLD_NOLOAD); g.GDALGetCacheMax64.restype = ctypes.c_int64; "
                   "before = g.GDALGetCacheMax64(); ")


def _stats_in_fresh_process(tag, extra_env=None, gdal_cache=False):
    env = dict(os.environ, RASTERLOADER_TILE_CACHE_NAME=tag, **(extra_env or {}))
    code = ("import json, rasterloader; %sds = rasterloader.open(%r); ds.read(); "
            "s = rasterloader.tile_cache_stats(); %sprint(json.dumps(s))"
            % (_GDAL_CACHE_MAX if gdal_cache else "", fixture_path(NAME),
               "s['gdal_cache_max_before_open'] = before; " if gdal_cache else ""))
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    import json
    return json.loads(out.stdout.strip().splitlines()[-1])


def _leave_an_arena(tag, extra_env=None):
    """A process that makes the arena and dies (SIGKILL) while attached."""
    env = dict(os.environ, RASTERLOADER_TILE_CACHE_NAME=tag, **(extra_env or {}))
    code = ("import os, signal, rasterloader; rasterloader.open(%r).read(); "
            "os.kill(os.getpid(), signal.SIGKILL)" % fixture_path(NAME))
    subprocess.run([sys.executable, "-c", code], env=env)
    [s] = arena_paths(tag)
    return s


def test_a_corrupted_header_is_refused_with_the_reason():
    tag = "corrupt%d" % os.getpid()
    shm = _leave_an_arena(tag)
    try:
        assert _stats_in_fresh_process(tag)["mode"] == "shared"     # intact: replaced
        _leave_an_arena(tag)
        with open(shm, "r+b") as f:
            f.write(b"garbage!")                                     # the magic number
        s = _stats_in_fresh_process(tag)
        assert s["mode"] == "private" and "bad magic" in s["reason"], s
        assert s["hits"] == 0 and s["misses"] > 0                    # the private cache serves
    finally:
        os.unlink(shm)


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another uid needs root")
def test_an_arena_of_another_owner_is_refused_with_the_reason():
    tag = "owner%d" % os.getpid()
    shm = _leave_an_arena(tag)
    try:
        os.chown(shm, 65534, 65534)
        s = _stats_in_fresh_process(tag)
        assert s["mode"] == "private" and "belongs to uid 65534" in s["reason"], s
        os.chown(shm, os.getuid(), os.getgid())
        os.chmod(shm, 0o644)
        s = _stats_in_fresh_process(tag)
        assert s["mode"] == "private" and "accessible to other users" in s["reason"], s
    finally:
        os.unlink(shm)


def test_the_environment_turns_it_off_or_private():
    s = _stats_in_fresh_process("off%d" % os.getpid(), {"RASTERLOADER_TILE_CACHE_BYTES": "0"})
    assert s["mode"] == "off" and s["budget_bytes"] == 0 and s["hits"] + s["misses"] == 0
    s = _stats_in_fresh_process("priv%d" % os.getpid(), {"RASTERLOADER_TILE_CACHE_SHARED": "0",
                                                          "RASTERLOADER_TILE_CACHE_BYTES": "64M"})
    assert s["mode"] == "private" and s["budget_bytes"] == 64 << 20 and s["misses"] > 0


def test_workers_that_end_with_os_exit_leave_no_arena_behind():
    """DataLoader workers end with os._exit(): the package's multiprocessing hook
    detaches them, and the last one unlinks the arena (the main process never read)."""
    tag = "exit%d" % os.getpid()
    code = f"""
import glob, os, torch, rasterloader
from torch.utils.data import DataLoader, Dataset
class D(Dataset):
    def __len__(self): return 8
    def __getitem__(self, i):
        with rasterloader.open({fixture_path(NAME)!r}) as ds:
            return torch.from_numpy(ds.read(window=((0, 64), (i * 64, i * 64 + 64))).astype('float32'))
for x in DataLoader(D(), batch_size=2, num_workers=2, multiprocessing_context="fork"):
    assert glob.glob({"/dev/shm/rasterloader-tc-v*-%d-%s" % (os.getuid(), tag)!r})  # the workers share it
"""
    env = dict(os.environ, RASTERLOADER_TILE_CACHE_NAME=tag)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300)
    assert not arena_paths(tag)


def test_a_leftover_arena_of_dead_processes_is_replaced_not_reused():
    """A process SIGKILLed while attached leaves its arena; the next process to attach finds
    no live process in it, unlinks it and makes a new one sized for its own budget (it was
    reused with its old size and tiles), and its stats say so."""
    tag = "left%d" % os.getpid()
    shm = _leave_an_arena(tag, {"RASTERLOADER_TILE_CACHE_BYTES": "64M"})
    try:
        with open(shm, "rb") as old:            # the old object, held to see what becomes of it
            s = _stats_in_fresh_process(tag, {"RASTERLOADER_TILE_CACHE_BYTES": "32M"})
            assert os.fstat(old.fileno()).st_nlink == 0, s               # unlinked
        assert s["mode"] == "shared", s
        assert "removed a leftover arena (64 MiB" in s["reason"], s
        assert s["capacity_bytes"] <= 32 << 20, s                        # made anew, for this budget
        assert s["hits"] == 0 and s["misses"] > 0, s                     # none of the old tiles
        assert s["attached_processes"] == 1, s
        assert not arena_paths(tag)             # and that process, the last, removed its own
    finally:
        for p in arena_paths(tag):
            os.unlink(p)


_HOLDER = """
import json, sys, rasterloader
def stats():
    print(json.dumps(rasterloader.tile_cache_stats()), flush=True)
rasterloader.open(sys.argv[1]).read()
stats()
while sys.stdin.readline().strip() == "again":
    rasterloader.open(sys.argv[1]).read()
    stats()
"""


def test_past_the_last_process_slot_a_process_reads_uncached_within_the_budget():
    """With every process slot held (two, by the test knob; 512 by default), one process more
    stays attached without a slot: it reads uncached (no hit, no insert, no private cache of
    the whole budget as before) with the reason in its stats, and gets a slot, and hits, once
    a holder leaves."""
    tag = "slots%d" % os.getpid()
    env = dict(os.environ, RASTERLOADER_TILE_CACHE_NAME=tag, RASTERLOADER_TILE_CACHE_TEST_NPROCS="2",
               RASTERLOADER_TILE_CACHE_BYTES="64M")
    import json
    procs, seen = [], []
    try:
        for _ in range(3):      # one after the other: each has read and reported before the next
            procs.append(subprocess.Popen([sys.executable, "-c", _HOLDER, fixture_path(NAME)], env=env,
                                          text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE))
            seen.append(json.loads(procs[-1].stdout.readline()))
        held, extra = seen[:2], seen[2]
        assert [h["mode"] for h in held] == ["shared", "shared"] and held[1]["attached_processes"] == 2
        assert extra["mode"] == "shared", extra
        assert "all 2 process slots" in extra["reason"], extra
        assert extra["inserts"] == held[1]["inserts"] and extra["hits"] == held[1]["hits"], extra
        assert extra["bytes_used"] == held[1]["bytes_used"] and extra["budget_bytes"] == 64 << 20, extra
        procs[0].communicate("stop\n", timeout=120)                    # a holder leaves
        procs[2].stdin.write("again\n")
        procs[2].stdin.flush()
        after = json.loads(procs[2].stdout.readline())
        assert after["reason"] == "" and after["attached_processes"] == 2, after
        assert after["hits"] > extra["hits"] and after["misses"] == extra["misses"], after
    finally:
        for p in procs:
            p.kill()
            p.wait()
        for p in arena_paths(tag):
            os.unlink(p)


def test_gdal_block_cache_is_left_to_rasterio_and_the_user():
    """The package runs on rasterio's GDAL: its block cache stays what GDAL (5 %
    of RAM by default) or the user (GDAL_CACHEMAX) made it, never shrunk."""
    s = _stats_in_fresh_process("gc%d" % os.getpid(), {}, gdal_cache=True)   # inherits our environment
    assert s["gdal_cache_bytes"] == s["gdal_cache_max_before_open"] > 0
    if "GDAL_CACHEMAX" not in os.environ:
        assert s["gdal_cache_bytes"] > 32 << 20          # GDAL's default, not the C library's 32 MiB
    s = _stats_in_fresh_process("gd%d" % os.getpid(), {"GDAL_CACHEMAX": "64"})   # MB, GDAL's unit
    assert s["gdal_cache_bytes"] == 64 << 20
