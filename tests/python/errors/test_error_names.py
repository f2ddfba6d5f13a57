"""Every public entry names the file in its errors.

A band that is not in the file is a BandIndexError (an IndexError, as in
rasterio) naming the file, from read, read_masks, read_hwc and the loaders'
``bands=``/``mask_band=``; an ``out`` or ``out_shape`` of the wrong shape is a
ValueError naming the file.  rasterio raises the same classes for the band
(its message has no file name).
"""

import numpy as np
import pytest
import rasterio

import rasterloader
from rasterloader.errors import BandIndexError
from rasterloader.torch import BatchDataset, WindowDataset
from conftest import fixture_path

PATH = fixture_path("cog_u16_deflate_pred2_tile256_pixel_3b_1024x1024.tif")
WIN = ((0, 8), (0, 8))


@pytest.fixture(scope="module")
def ds():
    with rasterloader.open(PATH) as d:
        yield d


@pytest.mark.parametrize("call", [
    lambda d: d.read(indexes=99, window=WIN),
    lambda d: d.read(indexes=[1, 99], window=WIN),
    lambda d: d.read_masks(99, window=WIN),
    lambda d: d.read_hwc(WIN, indexes=[99]),
], ids=["read", "read-list", "read_masks", "read_hwc"])
def test_band_index_errors_name_the_file(ds, call):
    with pytest.raises(BandIndexError, match="99") as ei:
        call(ds)
    assert PATH in str(ei.value) and isinstance(ei.value, IndexError)
    with rasterio.open(PATH) as src:             # the oracle raises an IndexError too
        with pytest.raises(IndexError):
            src.read(99, window=WIN)


@pytest.mark.parametrize("kwargs", [{"bands": [1, 99]}, {"mask_band": 99}])
def test_loader_band_errors_name_the_file(kwargs):
    samples = [(PATH, PATH, (0, 0, 8, 8))] * 2
    for make in (lambda: rasterloader.BatchLoader(samples, 2, prefetch=0, **kwargs),
                 lambda: BatchDataset(samples, 2, **kwargs).loader,
                 lambda: WindowDataset(samples, **kwargs).reader):
        with pytest.raises(BandIndexError) as ei:
            make().read([0, 1])
        assert PATH in str(ei.value) and "99" in str(ei.value) and ei.value.index == 0


@pytest.mark.parametrize("call", [
    lambda d: d.read(window=WIN, out=np.empty((2, 8, 8), np.uint16)),
    lambda d: d.read(window=WIN, out_shape=(2, 4, 4)),
    lambda d: d.read_masks(window=WIN, out=np.empty((2, 8, 8), np.uint8)),
    lambda d: d.dataset_mask(window=WIN, out=np.empty((2, 8, 8), np.uint8)),
    lambda d: d.read_hwc(WIN, out=np.empty((8, 8, 2), np.uint16)),
    lambda d: d.read(indexes=[], window=WIN),
], ids=["read-out", "read-out_shape", "read_masks-out", "dataset_mask-out", "read_hwc-out",
        "no-indexes"])
def test_shape_errors_name_the_file(ds, call):
    with pytest.raises(ValueError) as ei:
        call(ds)
    assert str(ei.value).startswith(PATH + ": "), str(ei.value)
