"""Integration: a TorchGeo-style RasterDataset written only against rasterio's API
(tests/python/torchgeo_style.py) runs unchanged with rasterloader.open and
rasterloader.WarpedVRT swapped in, and gives the same samples.

Files in two UTM zones (tests/python/utm_scenes.py): the dataset indexes every
file through WarpedVRT (as TorchGeo does), reads the zone-32 file and the 20 m
file through WarpedVRT, merges with rasterio.merge.merge(bounds=, res=,
indexes=), and a torch DataLoader with 2 workers draws TorchGeo's random boxes.
The samples are compared bit for bit; the bench (make bench-torchgeo) runs
the same code at scale.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("rasterio")
torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

import rasterloader  # noqa: E402
import torchgeo_style as tg  # noqa: E402
from conftest import ROOT  # noqa: E402
from utm_scenes import make_scenes  # noqa: E402


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return make_scenes(str(tmp_path_factory.mktemp("tg")), size=300, seed=3)


def _datasets(paths, **kw):
    return (tg.GeoRasterDataset(paths, **kw),
            tg.GeoRasterDataset(paths, open=rasterloader.open, warped_vrt=rasterloader.WarpedVRT,
                                **kw))


def _loader(ds, n, seed, workers=2):
    return DataLoader(ds, batch_size=4, sampler=tg.RandomBoxSampler(ds, 128, n, seed=seed),
                      num_workers=workers, collate_fn=tg.stack_samples)


def test_index_is_rasterios(paths):
    a, b = _datasets(paths)
    assert b.crs == a.crs and b.res == a.res
    assert b.index == a.index          # every file's WarpedVRT bounds, bit for bit


@pytest.mark.parametrize("bands", [None, [3, 1]])
def test_samples_through_a_dataloader_with_2_workers_equal_rasterios(paths, bands):
    a, b = _datasets(paths, bands=bands)
    seen = set()
    for x, y in zip(_loader(a, 16, seed=5), _loader(b, 16, seed=5)):
        assert x["bbox"] == y["bbox"] and x["files"] == y["files"]
        assert x["image"].dtype == y["image"].dtype and x["image"].shape == y["image"].shape
        assert torch.equal(x["image"], y["image"]), x["bbox"]
        seen.update(f for fs in x["files"] for f in fs)
    # the draw covered the reprojected file and the coarser one
    assert any("z32" in f for f in seen) and any("coarse" in f for f in seen)


def test_boxes_over_the_zone_border_and_file_edges(paths):
    """Boxes at the reprojected file's corners and across every pair of files,
    where merge meets partial and sub-pixel windows."""
    a, b = _datasets(paths)
    boxes = []
    for x0, y0, x1, y1, _ in a.index:
        for cx, cy in ((x0, y0), (x0, y1), (x1, y0), (x1, y1)):
            boxes.append((cx - 640.0, cy - 640.0, cx + 640.0, cy + 640.0))
    boxes.append(a.bounds)                       # everything at once
    for box in boxes:
        if not a.intersecting(box):
            continue
        x, y = a[box]["image"], b[box]["image"]
        assert torch.equal(x, y), box


def test_bench_smoke():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "torchgeo",
                                                        "bench_torchgeo.py"), "--smoke"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| rasterio |" in proc.stdout and "| rasterloader |" in proc.stdout
    assert "checksums equal" in proc.stdout
