"""The warm-read benchmark in small (bench/warm/bench_warm.py; `make bench-warm`
runs the full one): every read shape, rasterio and rasterloader, two passes over
a few windows of tiny files, then every shape's warm read checked against
rasterio's pixel for pixel (tile-cache entries hold planes: each shape takes
another path out of them)."""

import os
import subprocess
import sys

from conftest import ROOT


def test_warm_bench_smoke():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "warm", "bench_warm.py"), "--smoke"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "warm bench smoke: OK" in proc.stdout
    assert "| uint8 mask" in proc.stdout
