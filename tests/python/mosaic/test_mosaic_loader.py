"""Geo samples (mosaic, label or None, bounds) in the loaders, against the
TorchGeo way (tests/python/mosaic_oracle.py) and rasterio.merge on the label
raster: BatchLoader pooled batches, BatchDataset in DataLoader workers,
WindowDataset, label_fill, validity, mean/std, the samplers' boxes, epoch
seeding and DDP sharding."""

import os
import sys

import numpy as np
import pytest
import rasterio
import rasterio.merge
from torch.utils.data import DataLoader

import rasterloader
from rasterloader.torch import BatchDataset, WindowDataset
from conftest import FIXTURE_DIR, ROOT

sys.path.insert(0, os.path.join(ROOT, "data"))
from make_mosaic_fixtures import label_path, make_mosaic_fixtures, scene_paths  # noqa: E402
from mosaic_oracle import TorchGeoWay  # noqa: E402

make_mosaic_fixtures(FIXTURE_DIR)
SCENES = scene_paths(FIXTURE_DIR)
LABEL = label_path(FIXTURE_DIR)


@pytest.fixture(scope="module")
def mosaic():
    with rasterloader.Mosaic(SCENES) as m:
        yield m


@pytest.fixture(scope="module")
def oracle():
    o = TorchGeoWay(SCENES)
    yield o
    o.close()


@pytest.fixture(scope="module")
def label_src():
    with rasterio.open(LABEL) as src:
        yield src


def label_oracle(src, box, fill=0):
    dest, _ = rasterio.merge.merge([src], bounds=box, res=src.res, nodata=fill)
    return dest[0]


def test_batch_loader_images_labels_validity(mosaic, oracle, label_src):
    s = rasterloader.RandomGeoWindows(mosaic, 96, count=10, seed=1, label=LABEL)
    loader = rasterloader.BatchLoader(s, 4, with_validity=True)
    seen = 0
    for batch in loader:
        x, y, v = (np.from_dlpack(t) for t in (batch.image, batch.mask, batch.validity))
        assert x.shape[1:] == (96, 96, 5) and x.dtype == np.float32 and y.dtype == np.uint8
        for k, i in enumerate(batch.indices):
            box = s[i][2]
            want = oracle.read(box)
            assert np.array_equal(x[k], want.transpose(1, 2, 0).astype(np.float32))
            assert np.array_equal(y[k], label_oracle(label_src, box))
            assert np.array_equal(v[k], np.where((want != 0).any(0), 255, 0))
            seen += 1
    assert seen == 10


def test_no_label_mask_is_validity_and_label_fill(mosaic, oracle, label_src):
    left, bottom, right, top = mosaic.bounds
    # Half outside the label raster (which spans the mosaic's bounds): label_fill there.
    boxes = [(left - 480, top - 960, left + 480, top), (right - 480, bottom, right + 480, bottom + 960)]
    samples = [(mosaic, None, boxes[0]), (mosaic, LABEL, boxes[1])]
    r = rasterloader.WindowReader(samples, out_dtype="uint16", label_fill=255)
    b = r.read([0, 1])
    x, y = np.from_dlpack(b.image), np.from_dlpack(b.mask)
    want0 = oracle.read(boxes[0])
    assert np.array_equal(x[0], want0.transpose(1, 2, 0))
    assert np.array_equal(y[0], np.where((want0 != 0).any(0), 255, 0))
    lab = label_oracle(label_src, boxes[1], fill=255)
    assert (lab == 255).any()
    assert np.array_equal(y[1], lab)


def test_mean_std(mosaic, oracle):
    s = rasterloader.GridGeoWindows(mosaic, 64, 700)
    mean, std = [1000.0, 2000.0, 3000.0, 4000.0, 5000.0], [10.0, 20.0, 30.0, 40.0, 50.0]
    r = rasterloader.WindowReader(s, mean=mean, std=std, masks=False)
    b = r.read([0, 1])
    x = np.from_dlpack(b.image)
    for k in range(2):
        raw = oracle.read(s[k][2]).transpose(1, 2, 0).astype(np.float64)
        assert np.array_equal(x[k], ((raw - mean) / std).astype(np.float32))


def test_batch_dataset_in_workers_and_window_dataset(mosaic, oracle):
    g = rasterloader.GridGeoWindows(mosaic, 64, 600)
    ds = BatchDataset(g, batch_size=3, out_dtype="uint16")
    n = 0
    for batch in DataLoader(ds, batch_size=None, num_workers=2):
        for k, i in enumerate(batch["index"].tolist()):
            assert np.array_equal(batch["image"][k].numpy(), oracle.read(g[i][2]))
            n += 1
    assert n == len(g)
    wd = WindowDataset(g, out_dtype="uint16")
    item = wd[len(g) - 1]
    assert np.array_equal(item["image"].numpy(), oracle.read(g[len(g) - 1][2]))


def test_random_geo_windows_boxes_and_epochs(mosaic):
    s = rasterloader.RandomGeoWindows(mosaic, 100, count=50, seed=3)
    a = [s[i][2] for i in range(len(s))]
    assert a == [rasterloader.RandomGeoWindows(mosaic, 100, count=50, seed=3)[i][2]
                 for i in range(50)]
    fps = mosaic.footprints
    for box in a:
        assert box[2] - box[0] == 1000.0 and box[3] - box[1] == 1000.0
        assert any(f.left <= box[0] and box[2] <= f.right and f.bottom <= box[1] and box[3] <= f.top
                   and ((box[0] - f.left) / 10.0).is_integer() for f in fps), box
    s.set_epoch(1)
    assert [s[i][2] for i in range(50)] != a


def test_grid_geo_windows_cover_each_footprint(mosaic):
    g = rasterloader.GridGeoWindows(mosaic, 256, 200)
    boxes = [g[i][2] for i in range(len(g))]
    for f in mosaic.footprints:
        mine = [b for b in boxes if f.left <= b[0] and b[2] <= f.right + 1e-6
                and f.bottom - 1e-6 <= b[1] and b[3] <= f.top]
        assert mine
        assert min(b[0] for b in mine) == f.left and max(b[3] for b in mine) == f.top
        assert f.right - max(b[2] for b in mine) < 10.0      # last column shifted to the edge
        assert min(b[1] for b in mine) - f.bottom < 10.0


def test_ddp_shards_are_disjoint_and_cover_the_epoch(mosaic):
    g = rasterloader.GridGeoWindows(mosaic, 64, 900)
    seen = []
    for rank in range(2):
        ld = rasterloader.BatchLoader(g, 2, rank=rank, world_size=2, pad=False, shuffle=True,
                                      seed=5, prefetch=0, masks=False)
        ld.set_epoch(2)
        seen.append([i for b in ld.plan() for i in b])
    assert not set(seen[0]) & set(seen[1])
    assert len(seen[0]) == len(seen[1]) == len(g) // 2


def test_bad_geo_input(mosaic):
    s = rasterloader.GridGeoWindows(mosaic, 64, 900)
    with pytest.raises(ValueError, match="Mosaic\\(bands=...\\)"):
        rasterloader.WindowReader(s, bands=[1])
    with pytest.raises(TypeError, match="Mosaic"):
        rasterloader.RandomGeoWindows(SCENES, 64, 3)
    with pytest.raises(ValueError, match="size"):
        rasterloader.GridGeoWindows(mosaic, 0)
