"""read_hwc(): native HWC reads into caller arrays/tensors (in place) or pooled Tiles."""

import numpy as np
import pytest
import torch
from rasterio.windows import Window

import rasterloader
from conftest import GOOD, assert_same

NAMES = [e["name"] for e in GOOD if e["height"] >= 40
         and e["width"] >= 40][::4]
W = Window(7, 5, 33, 29)


def hwc(a):
    return np.ascontiguousarray(np.moveaxis(a, 0, -1))


@pytest.mark.parametrize("out_dtype", [None, "float32", "uint16", "float64"])
@pytest.mark.parametrize("name", NAMES)
def test_tile_equals_rasterio(rio, rl, pool, name, out_dtype):
    want = hwc(rio(name).read(window=W, out_dtype=out_dtype))
    with rl(name).read_hwc(window=W, out_dtype=out_dtype, pool=pool) as tile:
        assert tile.shape == want.shape and tile.dtype == want.dtype.name
        assert_same(np.asarray(memoryview(tile)), want)
        assert_same(tile.numpy(), want)
    assert pool.stats()["bytes_in_use"] == 0


@pytest.mark.parametrize("name", NAMES)
def test_out_numpy_in_place(rio, rl, name):
    want = hwc(rio(name).read(window=W, out_dtype="float32"))
    out = np.zeros(want.shape, np.float32)
    assert rl(name).read_hwc(window=W, out=out) is out
    assert_same(out, want)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.uint16, torch.float16,
                                   torch.float32, torch.float64])
def test_out_torch_in_place(rio, rl, dtype):
    name = NAMES[0]
    c = rl(name).count
    t = torch.zeros((W.height, W.width, c), dtype=dtype)
    ptr = t.data_ptr()
    assert rl(name).read_hwc(window=W, out=t) is t
    assert t.data_ptr() == ptr
    np_dt = str(dtype).replace("torch.", "")
    src = rio(name).read(window=W).astype(np.float64)
    want = hwc(src.astype(np_dt) if np_dt == "float16" else
               rio(name).read(window=W, out_dtype=np_dt))
    assert_same(t.numpy(), want)


def test_out_torch_strided_views(rio, rl):
    """A channel-first tensor seen as HWC (permute) and a crop of a bigger tensor are
    written in place through their strides."""
    name = NAMES[0]
    c = rl(name).count
    want = hwc(rio(name).read(window=W))
    chw = torch.zeros((c, W.height, W.width), dtype=torch.from_numpy(want).dtype)
    rl(name).read_hwc(window=W, out=chw.permute(1, 2, 0))
    assert np.array_equal(chw.permute(1, 2, 0).numpy(), want)
    big = torch.zeros((W.height + 10, W.width + 20, c), dtype=chw.dtype)
    rl(name).read_hwc(window=W, out=big[3:3 + W.height, 5:5 + W.width])
    assert np.array_equal(big[3:3 + W.height, 5:5 + W.width].numpy(), want)
    assert big[:3].abs().sum() == 0 and big[:, :5].abs().sum() == 0


def test_out_torch_wrong_shape_and_grad(rl):
    ds = rl(NAMES[0])
    with pytest.raises(ValueError, match="shape"):
        ds.read_hwc(window=W, out=torch.zeros((W.height, W.width, ds.count + 1)))
    with pytest.raises(ValueError, match="needs uint8"):
        ds._core.read_masks_into((0, 0, 4, 4), torch.zeros((4, 4)), None, "hw",
                                 rule=rasterloader._core.MASKS_DATASET)
    with pytest.raises((RuntimeError, BufferError)):   # torch refuses to export grad tensors
        ds.read_hwc(window=W, out=torch.zeros((W.height, W.width, ds.count),
                                              requires_grad=True))


def test_single_band_2d_out(rio, rl):
    name = NAMES[0]
    out = np.zeros((W.height, W.width), rio(name).dtypes[0])
    rl(name).read_hwc(window=W, indexes=1, out=out)
    assert_same(out, rio(name).read(1, window=W))


def test_indexes_and_repeats(rio, rl, pool):
    name = next(e["name"] for e in GOOD if e["count"] >= 3)
    want = hwc(rio(name).read([3, 1, 1], window=W))
    with rl(name).read_hwc(window=W, indexes=[3, 1, 1], pool=pool) as t:
        assert_same(t.numpy(), want)
    with rl(name).read_hwc(window=W, indexes=2, pool=pool) as t:
        assert t.shape == (W.height, W.width, 1)


def test_scale_offset_and_mean_std(rio, rl, pool):
    name = next(e["name"] for e in GOOD if e["count"] >= 3 and e["dtype"] == "uint16")
    src = hwc(rio(name).read(window=W)).astype(np.float64)
    n = src.shape[2]
    scale, offset = [0.5, 2.0, 1e-4, 3.0][:n], [1.0, -3.0, 0.25, 7.5][:n]
    with rl(name).read_hwc(window=W, scale=scale, offset=offset, pool=pool) as t:
        assert t.dtype == "float32"
        want = src * np.array(scale) + np.array(offset)
        assert_same(t.numpy(), want.astype(np.float32))
    mean, std = 1000.0, 250.0
    with rl(name).read_hwc(window=W, mean=mean, std=std, pool=pool) as t:
        want = src * (1.0 / std) + (-mean / std)
        assert_same(t.numpy(), want.astype(np.float32))
    with rl(name).read_hwc(window=W, mean=mean, std=std, out_dtype="float16", pool=pool) as t:
        assert_same(t.numpy(), (src * (1.0 / std) + (-mean / std)).astype(np.float16))


def test_boundless_hwc(rio, rl, pool):
    name = NAMES[0]
    ds = rio(name)
    w = Window(ds.width - 10, -4, 30, 20)
    for fill in (None, 9):
        want = hwc(ds.read(window=w, boundless=True, fill_value=fill))
        with rl(name).read_hwc(window=w, boundless=True, fill_value=fill, pool=pool) as t:
            assert_same(t.numpy(), want)


def test_default_pool_is_used(rl):
    pool = rasterloader.default_pool()
    before = pool.stats()["acquires"]
    t = rl(NAMES[0]).read_hwc(window=W)
    assert pool.stats()["acquires"] == before + 1
    t.release()
    assert rasterloader.default_pool() is pool


def test_overlapping_strides_are_refused(rl):
    """A broadcast (stride-0) tensor would make several pixels share one element."""
    ds = rl(NAMES[0])
    t = torch.zeros((1, 1, ds.count), dtype=torch.float32).expand(W.height, W.width, ds.count)
    with pytest.raises(ValueError, match="overlap"):
        ds.read_hwc(window=W, out=t)
