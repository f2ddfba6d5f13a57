"""`make bench-remote` in small (bench/remote/bench_remote.py --smoke, < 20 s): nginx
and the latency proxy on 127.0.0.1, every method reads the same windows of the
fixture COG through the proxy, and the script checks every window against a local
read (it exits non-zero on a mismatch).  Numbers are checked only where latency
decides them: a sequential reader pays the 20 ms per request, the batch loader
overlaps them.  The full bench writes bench/results/remote.md."""

import json
import os
import subprocess
import sys

import pytest

from conftest import FIXTURE_DIR, ROOT, own_arena_env

sys.path.insert(0, os.path.join(ROOT, "tests", "remote"))
import httpd  # noqa: E402


@pytest.mark.skipif(not httpd.Nginx.available(), reason="nginx is not installed (nginx-light)")
def test_bench_remote_smoke():
    env = own_arena_env(RASTER_FIXTURES=FIXTURE_DIR)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "remote", "bench_remote.py"),
                           "--smoke", "--json", "--delay-ms", "20"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = {r["method"].split(",")[0] + ("" if r["threads"] > 1 else " seq"): r
           for r in json.loads(proc.stdout)["results"]}
    seq = res["rasterio seq"]
    threaded = [res["rasterloader (GDAL reader)"], res["BatchLoader (GDAL reader)"]]
    for r in res.values():
        assert 0 < r["requests_per_window"] <= 4, r
    # 20 ms per request: a sequential reader waits for each of its requests;
    # rasterloader's threads overlap them.
    assert seq["ms_per_window"] >= 0.9 * 20 * seq["requests_per_window"], seq
    assert min(r["ms_per_window"] for r in threaded) < seq["ms_per_window"], (threaded, seq)
