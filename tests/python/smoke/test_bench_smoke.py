"""`make bench` in small (bench/loader/bench_loader.py --smoke): every reader and
every end-to-end configuration runs on tiny temporary files, and the report has
its tables.  Numbers are not checked here (the machine is shared); the full
bench writes them to bench/results/loader.md."""

import os
import subprocess
import sys

from conftest import FIXTURE_DIR, ROOT, own_arena_env


def test_bench_smoke_runs_every_reader_and_loop():
    env = own_arena_env(RASTER_FIXTURES=FIXTURE_DIR)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "loader", "bench_loader.py"),
                           "--smoke"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for row in ("rasterio read()", "rasterio read(out=)", "tifffile", "rasterloader read()",
                "read_hwc (pool)", "BatchLoader", "DataLoader num_workers=2",
                "rasterloader BatchDataset"):
        assert row in out, row
    assert "GDAL reports 64 MiB in effect" in out


def test_tile_cache_bench_smoke_runs_every_way():
    env = own_arena_env(RASTER_FIXTURES=FIXTURE_DIR)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "tile_cache",
                                                        "bench_tile_cache.py"), "--smoke"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for row in ("rasterio read(out=)", "tile cache off", "tile cache 64 MiB"):
        assert row in proc.stdout, row
    assert "hit rate" in proc.stdout


def test_mosaic_bench_smoke_runs_every_way():
    env = own_arena_env(RASTER_FIXTURES=FIXTURE_DIR)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "mosaic", "bench_mosaic.py"),
                           "--smoke"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for row in ("TorchGeo way (WarpedVRT + merge), 1 process", "Mosaic.read, 1 process",
                "BatchLoader over the Mosaic", "TorchGeo way in DataLoader, 2 workers",
                "BatchDataset over the Mosaic in DataLoader, 2 workers"):
        assert row in proc.stdout, row
    assert "| NO |" not in proc.stdout


def test_convert_bench_smoke_reads_every_way():
    """`make bench-convert SMOKE=1`'s Python half (the C half, bench_convert
    --smoke, is a ctest): warm read_hwc in uint16, float32 and mean/std."""
    env = own_arena_env(RASTER_FIXTURES=FIXTURE_DIR)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "convert", "bench_read_hwc.py"),
                           "--smoke"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for row in ("read_hwc(window=w) uint16", 'read_hwc(window=w, out_dtype="float32")',
                "read_hwc(window=w, mean=, std=) float32", "NumPy: copyto"):
        assert row in proc.stdout, row
