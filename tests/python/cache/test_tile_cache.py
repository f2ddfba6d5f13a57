"""set_tile_cache_budget(): with the decoded-tile cache on, overlapping windows
read exactly what rasterio reads, cold and warm, through read() and the
BatchLoader; the stats count hits; entries outlive the dataset (they are keyed by
the file); budget 0 turns it off and frees it.  Each test puts the budget back
as it found it (the cache is on by default; test_tile_cache_shared.py)."""

import numpy as np
import pytest
from rasterio.windows import Window

import rasterloader
from conftest import GOOD, assert_same, fixture_path

COMPRESSED_NATIVE = [e["name"] for e in GOOD
                     if "_none_" not in e["name"] and e["name"].endswith(".tif")
                     and "jpeg" not in e["name"] and "palette" not in e["name"]
                     and "nbits" not in e["name"]][:12]


@pytest.fixture(autouse=True)
def restore_budget():
    before = rasterloader.tile_cache_stats()["budget_bytes"]
    yield
    rasterloader.set_tile_cache_budget(before)


@pytest.fixture
def cache_on():
    rasterloader.set_tile_cache_budget(0)           # empty
    rasterloader.set_tile_cache_budget(128 << 20)
    yield


def overlapping_windows(h, w, n=12, seed=0):
    rng = np.random.default_rng(seed)
    size_h, size_w = max(1, h // 3), max(1, w // 3)
    wins = []
    for _ in range(n):
        r = int(rng.integers(0, h - size_h + 1))
        c = int(rng.integers(0, w - size_w + 1))
        wins.append(Window(c, r, size_w, size_h))
    return wins + wins      # the second half can only hit


@pytest.mark.parametrize("name", COMPRESSED_NATIVE)
def test_cached_reads_equal_rasterio(name, rio, cache_on):
    src = rio(name)
    with rasterloader.open(fixture_path(name)) as ds:
        before = rasterloader.tile_cache_stats()
        for win in overlapping_windows(src.height, src.width):
            assert_same(ds.read(window=win), src.read(window=win))
        after = rasterloader.tile_cache_stats()
    assert after["inserts"] > before["inserts"]
    assert after["hits"] > before["hits"]
    assert rasterloader.tile_cache_stats()["entries"] == after["entries"]    # closed: kept


def test_loader_batches_equal_rasterio_with_the_cache(rio, cache_on):
    name = "u16_deflate_pred2_tile256_pixel_3b_700x531.tif"
    src = rio(name)
    wins = overlapping_windows(src.height, src.width, n=8, seed=3)
    wins = [Window(w.col_off, w.row_off, 96, 80) for w in wins]
    samples = [(fixture_path(name), None, (w.col_off, w.row_off, w.width, w.height)) for w in wins]
    with rasterloader.WindowReader(samples, out_dtype="uint16", pool_bytes=16 << 20) as r:
        batch = r.read(list(range(len(samples))))
        got = np.from_dlpack(batch.image)
        for i, w in enumerate(wins):
            assert_same(got[i], np.moveaxis(src.read(window=w), 0, -1))
        del got
        batch.release()
    assert rasterloader.tile_cache_stats()["hits"] > 0


def test_budget_zero_turns_it_off_and_frees_it():
    rasterloader.set_tile_cache_budget(0)
    rasterloader.set_tile_cache_budget(64 << 20)
    name = "u8_deflate_pred2_tile512_band_3b_1024x768.tif"
    with rasterloader.open(fixture_path(name)) as ds:
        ds.read(window=Window(0, 0, 300, 300))
        assert rasterloader.tile_cache_stats()["bytes_used"] > 0
        rasterloader.set_tile_cache_budget(0)
        s = rasterloader.tile_cache_stats()
        assert s["budget_bytes"] == 0 and s["bytes_used"] == 0 and s["entries"] == 0
        before = s["misses"] + s["hits"]
        ds.read(window=Window(0, 0, 300, 300))
        s = rasterloader.tile_cache_stats()
        assert s["misses"] + s["hits"] == before        # not consulted at all
    with pytest.raises((OverflowError, TypeError)):
        rasterloader.set_tile_cache_budget(-1)
