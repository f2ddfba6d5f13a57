"""The shared tile cache across PID namespaces (issue 21, D2): two jobs in PID namespaces of
their own (`unshare -p -f --mount-proc`, as two containers with docker --ipc=host) share
/dev/shm and one arena name; in each, processes attach, read random windows and end, two at
a time, 30 times over, with the arena's race windows widened
(RASTERLOADER_TILE_CACHE_TEST_SLEEP_US) and a budget of three tiles (constant evictions).
Every read is compared with rasterio's.  Liveness judged by pid in the caller's namespace
made each job reclaim the other's live slots and overwrite the tiles they were copying: 10
to 37 wrong windows per run of 600 reads before the OFD-lock liveness (8 runs), none after.

Needs root (unshare); skipped with the reason where the kernel refuses."""

import json
import os
import subprocess
import sys

import pytest

from conftest import arena_paths, fixture_path, own_arena_env

NAME = "u16_deflate_pred2_tile256_pixel_3b_700x531.tif"
JOB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ns_churn_job.py")
CHILDREN, READS = 30, 10


def _unshare_refusal():
    if os.getuid() != 0:
        return "needs root for unshare -p"
    try:
        r = subprocess.run(["unshare", "-p", "-f", "--mount-proc", "true"], capture_output=True, text=True,
                           timeout=60)
    except FileNotFoundError:
        return "no unshare(1)"
    return None if r.returncode == 0 else "unshare -p -f --mount-proc refused: " + r.stderr.strip()


def test_two_jobs_in_pid_namespaces_never_read_a_wrong_pixel():
    refusal = _unshare_refusal()
    if refusal:
        pytest.skip(refusal)
    env = own_arena_env(RASTERLOADER_TILE_CACHE_BYTES="1300K", RASTERLOADER_TILE_CACHE_TEST_SLEEP_US="1000")
    jobs = [subprocess.Popen(["unshare", "-p", "-f", "--mount-proc", sys.executable, JOB, fixture_path(NAME),
                              str(CHILDREN), str(READS), str(seed)], env=env, stdout=subprocess.PIPE, text=True)
            for seed in (1, 2)]
    try:
        outs = [j.communicate(timeout=300)[0] for j in jobs]   # a deadlock guard, not a measure
    finally:
        for j in jobs:
            j.kill()
        for shm in arena_paths(env["RASTERLOADER_TILE_CACHE_NAME"]):
            os.unlink(shm)              # the children that _exit leave it when last
    for j, out in zip(jobs, outs):
        assert j.returncode == 0, out
        r = json.loads(out.strip().splitlines()[-1])
        assert r["pid"] == 1                                    # it did run in a namespace of its own
        assert r["children"] == CHILDREN, r                     # none crashed
        assert r["shared"] == CHILDREN and r["hits"] > 0, r     # they did share the arena
        assert r["wrong"] == 0 and r["errors"] == 0, r
