"""The soak in small (bench/soak.py; `make soak` runs 100k windows): 10k windows
through read() (some resampled, with resampled masks), pooled tiles via
torch.from_dlpack and BatchLoader batches, in a fresh process, with the tile cache
off, on at 2 MiB (a few tiles, so it churns) and at the library's default (on, in
the shared arena), must leave RSS and PSS flat after warm-up (< 1 MiB growth) and
the pools with nothing in use."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, own_arena_env, sample_dir


@pytest.mark.parametrize("cache_mib", [0, 2, -1])
def test_soak_10k_windows_rss_is_flat(cache_mib):
    env = own_arena_env()
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "soak.py"), "--windows", "10000",
         "--every", "500", "--window", "128", "--data", sample_dir(), "--json",
         "--tile-cache-mib", str(cache_mib)],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.stdout, proc.stderr
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    mib = 2 ** 20
    curve = [(n, round(rss / mib, 2)) for n, rss, _ in r["log"]]
    assert r["growth_after_warmup"] < mib, curve
    assert r["pss_growth_after_warmup"] < mib, [round(p / mib, 2) for p in r["pss_log"]]
    assert r["pool_bytes_in_use"] == 0 and r["pool_buffers_outstanding"] == 0
    assert r["pool_block_mallocs"] <= 4          # the pools reused their blocks
    if cache_mib:
        assert r["tile_cache_hits"] > 0
    if cache_mib < 0:
        assert r["tile_cache_mode"] == "shared"
    assert proc.returncode == 0, proc.stderr
