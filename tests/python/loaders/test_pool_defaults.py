"""Default pools fit the reads they serve.

A WindowReader (the reading half of BatchLoader, used by rasterloader.torch)
that was given no pool makes its own for 4 batches of the request it serves:
an 8-sample read used to be refused by a pool sized for 4 single samples
(4.25 MiB).  The size classes come from C (raster_pool_block_nbytes), not a
Python copy.  Pixels are compared with rasterio.
"""

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

import rasterloader
from rasterloader import _core
from rasterloader._loader import WindowReader, pool_block_nbytes
from conftest import fixture_path

COG = fixture_path("cog_u16_deflate_pred2_tile256_pixel_3b_1024x1024.tif")


def _want(windows):
    with rasterio.open(COG) as src:
        return np.stack([src.read(window=Window(*w)).transpose(1, 2, 0) for w in windows])


def test_window_reader_default_pool_fits_an_8_sample_read():
    windows = [(c, r, 256, 256) for r in (0, 256) for c in (0, 256, 512, 768)]
    reader = WindowReader([(COG, None, w) for w in windows], out_dtype="uint16")
    first = reader.read([0])                       # the pool made for one-sample reads
    small = reader.pool.budget_bytes
    assert small == 4 * reader.batch_nbytes(1)
    batch = reader.read(list(range(8)))            # refused before (8 samples > 4.25 MiB)
    assert np.array_equal(batch.numpy()[0], _want(windows))
    assert reader.pool.budget_bytes == 4 * reader.batch_nbytes(8) > small
    assert np.array_equal(first.numpy()[0], _want(windows[:1]))   # old pool's batch still valid
    again = reader.read(list(range(4)))            # smaller reads keep the bigger pool
    assert reader.pool.budget_bytes == 4 * reader.batch_nbytes(8)
    del first, batch, again
    reader.close()


def test_explicit_pool_bytes_is_kept():
    """pool_bytes= is the caller's bound: it is never grown, so a read that
    does not fit says so."""
    reader = WindowReader([(COG, None, (0, 0, 256, 256))] * 8, out_dtype="uint16",
                          pool_bytes=2 << 20)
    with pytest.raises(rasterloader.errors.RasterMemoryError, match="budget"):
        reader.read(list(range(8)))
    assert reader.pool.budget_bytes == 2 << 20


def test_size_classes_come_from_c():
    for n in (1, 64, 65, 256, 257, 1000, 1 << 20, (1 << 20) + 1, 3 * 2**30 + 7):
        assert pool_block_nbytes(n) == _core.pool_block_nbytes(n) >= n
    assert pool_block_nbytes(0) == 0


def test_read_hwc_larger_than_the_default_pool_says_how(monkeypatch):
    """A read_hwc larger than the default pool's whole budget names the file
    and the way out (pool=, out=, RASTERLOADER_POOL_BYTES)."""
    from rasterloader import _pool
    monkeypatch.setenv("RASTERLOADER_POOL_BYTES", "1M")
    monkeypatch.setattr(_pool, "_pool", None)        # a default pool made from the setting
    with rasterloader.open(COG) as ds:
        with pytest.raises(rasterloader.errors.RasterMemoryError) as ei:
            ds.read_hwc(((0, 1024), (0, 1024)))
        msg = str(ei.value)
        assert COG in msg and "RASTERLOADER_POOL_BYTES" in msg and "pool=" in msg
        out = np.empty((1024, 1024, 3), np.uint16)
        ds.read_hwc(((0, 1024), (0, 1024)), out=out)       # the way out works
        assert np.array_equal(out, _want([(0, 0, 1024, 1024)])[0])
