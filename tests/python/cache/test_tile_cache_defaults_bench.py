"""The defaults benchmark in small (bench/defaults/bench_defaults.py; `make
bench-defaults` runs the full one): every regime with 2 workers, rasterio and the
rasterloader.open drop-in at their defaults, on tiny files; each run reads every
sample and the drop-in's workers use the shared arena."""

import os
import subprocess
import sys

from conftest import ROOT


def test_defaults_bench_smoke():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "defaults", "bench_defaults.py"),
                           "--smoke"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "defaults bench smoke: OK" in proc.stdout
