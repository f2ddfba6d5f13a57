"""Bad input at every public entry: the right exception class and a message that says what
was wrong.  (test_errors.py covers the statuses of the C library; this file is the
argument checking in front of it: wrong types, shapes, dtypes, windows, closed objects.)
Every case is one row: (callable, exception class, a regex the message must match).
"""

import math

import numpy as np
import pytest

import rasterloader
from rasterloader import errors
from rasterloader import Window
from conftest import GOOD, fixture_path

NAME = next(e["name"] for e in GOOD if e["count"] == 3 and e["dtype"] == "uint8"
            and e["name"].endswith(".tif"))
W = ((0, 4), (0, 4))


@pytest.fixture(scope="module")
def ds():
    d = rasterloader.open(fixture_path(NAME))
    yield d
    d.close()


def check(call, exc, match):
    with pytest.raises(exc) as ei:
        call()
    assert ei.value is not None and __import__("re").search(match, str(ei.value)), \
        f"{type(ei.value).__name__}: {ei.value!s} lacks /{match}/"
    return ei.value


# --------------------------------------------------------------------- open

OPEN_CASES = [
    ("none", lambda: rasterloader.open(None), TypeError, "str, bytes or os.PathLike"),
    ("int", lambda: rasterloader.open(3), TypeError, "str, bytes or os.PathLike"),
    ("nul byte", lambda: rasterloader.open("a\0b.tif"), ValueError, "null"),
    ("empty", lambda: rasterloader.open(""), ValueError, "empty path"),
    ("directory", lambda: rasterloader.open("/tmp"), errors.FormatError, "not recognized"),
    ("missing", lambda: rasterloader.open("/nonexistent/x.tif"), FileNotFoundError, "no such file"),
    ("write mode", lambda: rasterloader.open(fixture_path(NAME), "w"), ValueError, "only reads"),
    ("reader", lambda: rasterloader.open(fixture_path(NAME), reader="fast"), ValueError,
     "reader must be"),
]


@pytest.mark.parametrize("call,exc,match", [c[1:] for c in OPEN_CASES], ids=[c[0] for c in OPEN_CASES])
def test_open_bad_input(call, exc, match):
    check(call, exc, match)


# --------------------------------------------------------------------- read()

def read_cases(ds):
    n = ds.count
    ro = np.empty((n, 4, 4), np.uint8)
    ro.flags.writeable = False
    return [
        ("indexes str", lambda: ds.read("1", window=W), TypeError, "indexes must be an int"),
        ("indexes float", lambda: ds.read(1.5, window=W), TypeError, "indexes must be an int"),
        ("indexes float in list", lambda: ds.read([1, 2.0], window=W), TypeError,
         "indexes must be an int"),
        ("indexes None in list", lambda: ds.read([None], window=W), TypeError,
         "indexes must be an int"),
        ("indexes bool", lambda: ds.read(True, window=W), TypeError, "indexes must be an int"),
        ("indexes nested", lambda: ds.read([[1]], window=W), TypeError, "indexes must be an int"),
        ("indexes 0", lambda: ds.read(0, window=W), IndexError, "out of range"),
        ("indexes negative", lambda: ds.read([-1], window=W), IndexError, "out of range"),
        ("indexes past count", lambda: ds.read([1, n + 1], window=W), IndexError, "out of range"),
        ("indexes empty", lambda: ds.read([], window=W), ValueError, "No indexes"),
        ("window str", lambda: ds.read(window="0,0,4,4"), TypeError, "window must be a Window"),
        ("window int", lambda: ds.read(window=5), TypeError, "window must be a Window"),
        ("window 3-tuple", lambda: ds.read(window=(0, 0, 4)), errors.WindowError, "window tuple"),
        ("window flat 4-tuple", lambda: ds.read(window=(0, 0, 4, 4)), errors.WindowError,
         "window tuple"),
        ("window rows 3 long", lambda: ds.read(window=((0, 1, 2), (0, 4))), errors.WindowError,
         "start and stop"),
        ("window rows set", lambda: ds.read(window=({0, 1}, (0, 4))), errors.WindowError,
         "must be a slice"),
        ("window nan", lambda: ds.read(window=((math.nan, 4), (0, 4))), errors.WindowError, "NaN"),
        ("window str bound", lambda: ds.read(window=(("0", 4), (0, 4))), TypeError,
         "must be numbers"),
        ("Window nan", lambda: ds.read(window=Window(0, 0, math.nan, 4)), errors.WindowError, "NaN"),
        ("resampled boundless absurd",
         lambda: ds.read(window=Window(-1e300, 0, 4.5, 4), boundless=True, resampling=1),
         errors.WindowError, "absurdly large"),
        ("out list", lambda: ds.read(window=W, out=[[0]]), TypeError, "numpy array"),
        ("resampled out 1-d", lambda: ds.read(window=W, out=np.empty((n * 20,), np.uint8)),
         ValueError, "does not match"),
        ("out wrong band count", lambda: ds.read(window=W, out=np.empty((n + 1, 4, 4), np.uint8)),
         ValueError, "does not match"),
        ("out 1-d", lambda: ds.read(window=W, out=np.empty(n * 16, np.uint8)), ValueError,
         "does not match"),
        ("out complex", lambda: ds.read(window=W, out=np.empty((n, 4, 4), np.complex64)), ValueError,
         "does not write"),
        ("out object", lambda: ds.read(window=W, out=np.empty((n, 4, 4), object)), ValueError,
         "does not write"),
        ("out big-endian", lambda: ds.read(window=W, out=np.empty((n, 4, 4), ">u2")), ValueError,
         "native-endian"),
        ("out read-only", lambda: ds.read(window=W, out=ro), ValueError, "not writable"),
        ("out and out_shape", lambda: ds.read(window=W, out=np.empty((n, 4, 4), np.uint8),
                                              out_shape=(n, 4, 4)), ValueError, "exclusive"),
        ("out_dtype junk", lambda: ds.read(window=W, out_dtype="junk"), TypeError, "not understood"),
        ("out_dtype complex", lambda: ds.read(window=W, out_dtype="complex64"), ValueError,
         "does not write"),
        ("out_shape junk", lambda: ds.read(window=W, out_shape="ab"), ValueError, "invalid literal"),
        ("resampling warp-only", lambda: ds.read(window=W, out_shape=(n, 8, 8), resampling=8),
         errors.InvalidArgumentError, "resampling 8"),
        ("resampling junk", lambda: ds.read(window=W, out_shape=(n, 8, 8), resampling="x"),
         TypeError, "Resampling value"),
        ("out_shape 4-d", lambda: ds.read(window=W, out_shape=(1, n, 8, 8)), ValueError,
         "does not match"),
        ("fill_value str", lambda: ds.read(window=((-2, 2), (0, 4)), boundless=True, fill_value="x"),
         ValueError, "convert string to float"),
        ("boundless absurd", lambda: ds.read(window=((0, 10 ** 12), (0, 10 ** 12)), boundless=True),
         (ValueError, MemoryError), "too big|Unable to allocate"),
    ]


def test_read_bad_input(ds):
    for name, call, exc, match in read_cases(ds):
        try:
            check(call, exc, match)
        except AssertionError as e:
            raise AssertionError(f"read: {name}: {e}") from None
        except Exception as e:
            raise AssertionError(f"read: {name}: raised {type(e).__name__}: {e}") from None


# ----------------------------------------------------------- read_masks / dataset_mask

def mask_cases(ds):
    n = ds.count
    return [
        ("read_masks indexes 0", lambda: ds.read_masks(0, window=W), IndexError, "out of range"),
        ("read_masks indexes str", lambda: ds.read_masks("12", window=W), TypeError,
         "indexes must be an int"),
        ("read_masks out list", lambda: ds.read_masks(window=W, out=[0]), TypeError, "numpy array"),
        ("read_masks out float", lambda: ds.read_masks(window=W, out=np.empty((n, 4, 4), np.float32)),
         ValueError, "needs uint8"),
        ("read_masks out bands", lambda: ds.read_masks(window=W, out=np.empty((n + 1, 4, 4), np.uint8)),
         ValueError, "does not match"),
        ("read_masks window", lambda: ds.read_masks(window="x"), TypeError, "window must be"),
        ("read_masks exclusive", lambda: ds.read_masks(window=W, out=np.empty((n, 4, 4), np.uint8),
                                                       out_shape=(4, 4)), ValueError, "exclusive"),
        ("dataset_mask out list", lambda: ds.dataset_mask(window=W, out=[[0]]), TypeError,
         "numpy array"),
        ("dataset_mask out float", lambda: ds.dataset_mask(window=W, out=np.empty((4, 4), np.float64)),
         ValueError, "needs uint8"),
        ("dataset_mask resampled boundless absurd",
         lambda: ds.dataset_mask(window=Window(0, -1e300, 4, 4), out=np.empty((3, 3), np.uint8),
                                 boundless=True),
         errors.WindowError, "absurdly large"),
        ("read_masks resampling junk",
         lambda: ds.read_masks(window=W, out_shape=(3, 3), resampling="x"), TypeError,
         "Resampling value"),
        ("dataset_mask window nan", lambda: ds.dataset_mask(window=((0, math.nan), (0, 4))),
         errors.WindowError, "NaN"),
    ]


def test_mask_bad_input(ds):
    for name, call, exc, match in mask_cases(ds):
        try:
            check(call, exc, match)
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None
        except Exception as e:
            raise AssertionError(f"{name}: raised {type(e).__name__}: {e}") from None


# --------------------------------------------------------------------- read_hwc

def hwc_cases(ds):
    import torch
    n = ds.count
    return [
        ("out_dtype complex", lambda: ds.read_hwc(window=W, out_dtype="complex128"),
         errors.InvalidArgumentError, "dtype 'complex128' is not one of"),
        ("out_dtype junk", lambda: ds.read_hwc(window=W, out_dtype="junk"), TypeError,
         "not understood"),
        ("pool str", lambda: ds.read_hwc(window=W, pool="pool"), TypeError, "BufferPool"),
        ("timeout str", lambda: ds.read_hwc(window=W, timeout="1"), TypeError,
         "timeout must be None"),
        ("timeout negative", lambda: ds.read_hwc(window=W, timeout=-1), ValueError, ">= 0"),
        ("timeout nan", lambda: ds.read_hwc(window=W, timeout=math.nan), ValueError, ">= 0"),
        ("scale str", lambda: ds.read_hwc(window=W, scale="x"), ValueError,
         "scale must be a number or a sequence of numbers"),
        ("scale length", lambda: ds.read_hwc(window=W, scale=[1.0] * (n + 2)), ValueError,
         r"scale has %d values but .* has %d channel\(s\)" % (n + 2, n)),
        ("scale and mean", lambda: ds.read_hwc(window=W, scale=2.0, mean=1.0), ValueError, "not both"),
        ("std zero", lambda: ds.read_hwc(window=W, std=[1.0, 0.0, 1.0][:n] or 0.0), ValueError,
         "nonzero"),
        ("indexes 0", lambda: ds.read_hwc(window=W, indexes=0), IndexError, "out of range"),
        ("indexes str", lambda: ds.read_hwc(window=W, indexes="1"), TypeError,
         "indexes must be an int"),
        ("empty window", lambda: ds.read_hwc(window=((0, 0), (0, 4))), errors.WindowError, "empty"),
        ("window nan", lambda: ds.read_hwc(window=((0, 4), (math.nan, 4))), errors.WindowError, "NaN"),
        ("out list", lambda: ds.read_hwc(window=W, out=[0] * 48), TypeError,
         "writable numpy array or torch tensor"),
        ("out CHW", lambda: ds.read_hwc(window=W, out=np.empty((n, 4, 4), np.uint8)), ValueError,
         r"needs \(4, 4, %d\)" % n),
        ("out 4-d", lambda: ds.read_hwc(window=W, out=np.empty((1, 4, 4, n), np.uint8)), ValueError,
         "needs"),
        ("out 0-size", lambda: ds.read_hwc(window=W, out=np.empty((0, 4, n), np.uint8)), ValueError,
         "needs"),
        ("out int64", lambda: ds.read_hwc(window=W, out=np.empty((4, 4, n), np.int64)), ValueError,
         "format"),
        ("out reversed", lambda: ds.read_hwc(window=W, out=np.empty((4, 4, n), np.uint8)[::-1]),
         ValueError, "negative stride"),
        ("out overlapping", lambda: ds.read_hwc(window=W, out=np.lib.stride_tricks.as_strided(
            np.empty(64, np.uint8), (4, 4, n), (0, n, 1))), errors.InvalidArgumentError, "overlap"),
        ("out bytes", lambda: ds.read_hwc(window=W, out=bytes(48)), ValueError, "not writable|needs"),
        ("out dtype mismatch", lambda: ds.read_hwc(window=W, out=np.empty((4, 4, n), np.uint8),
                                                   out_dtype="float32"), ValueError, "out_dtype"),
        ("torch complex", lambda: ds.read_hwc(window=W, out=torch.empty(4, 4, n, dtype=torch.complex64)),
         ValueError, "does not write"),
        ("torch bool", lambda: ds.read_hwc(window=W, out=torch.empty(4, 4, n, dtype=torch.bool)),
         ValueError, "does not write"),
        ("torch requires_grad", lambda: ds.read_hwc(window=W, out=torch.empty(
            4, 4, n, dtype=torch.float32, requires_grad=True)), BufferError, "gradient"),
        ("torch shape", lambda: ds.read_hwc(window=W, out=torch.empty(4, 4, n + 1, dtype=torch.uint8)),
         ValueError, "needs"),
    ]


def test_read_hwc_bad_input(ds):
    for name, call, exc, match in hwc_cases(ds):
        try:
            check(call, exc, match)
        except AssertionError as e:
            raise AssertionError(f"read_hwc: {name}: {e}") from None
        except Exception as e:
            raise AssertionError(f"read_hwc: {name}: raised {type(e).__name__}: {e}") from None


def test_read_hwc_strided_torch_out_is_written(ds):
    """Not an error: a transposed or strided tensor is a valid view and gets the pixels."""
    import torch
    want = ds.read_hwc(window=W).numpy().copy()
    t = torch.zeros(ds.count, 4, 4, dtype=torch.uint8).permute(1, 2, 0)
    ds.read_hwc(window=W, out=t)
    assert np.array_equal(t.numpy(), want)


# --------------------------------------------------------------------- pools and tiles

POOL_CASES = [
    ("negative", lambda: rasterloader.BufferPool(-1), errors.InvalidArgumentError, "must be > 0"),
    ("zero", lambda: rasterloader.BufferPool(0), errors.InvalidArgumentError, "must be > 0"),
    ("2**70", lambda: rasterloader.BufferPool(2 ** 70), errors.InvalidArgumentError, "address space"),
    ("-2**70", lambda: rasterloader.BufferPool(-2 ** 70), errors.InvalidArgumentError, "must be > 0"),
    ("str", lambda: rasterloader.BufferPool("1M"), TypeError, "must be an int"),
    ("float", lambda: rasterloader.BufferPool(1.5e6), TypeError, "must be an int"),
    ("none", lambda: rasterloader.BufferPool(None), TypeError, "must be an int"),
    ("no args", lambda: rasterloader.BufferPool(), TypeError, "budget_bytes"),
    ("Tile()", lambda: rasterloader.Tile(), TypeError, "cannot be created directly"),
]


@pytest.mark.parametrize("call,exc,match", [c[1:] for c in POOL_CASES], ids=[c[0] for c in POOL_CASES])
def test_pool_and_tile_constructors(call, exc, match):
    check(call, exc, match)


def test_pool_budget_is_exact():
    with rasterloader.BufferPool(12345) as p:
        assert p.budget_bytes == 12345


def test_tile_bad_input_and_after_release(ds):
    tile = ds.read_hwc(window=W)
    check(lambda: tile.__dlpack__(None), TypeError, "positional")
    check(lambda: tile.__dlpack__(max_version="1.0"), TypeError, "max_version")
    check(lambda: tile.__dlpack__(max_version=(1,)), TypeError, "max_version")
    check(lambda: tile.__dlpack__(stream=1), ValueError, "stream must be None")
    check(lambda: tile.__dlpack__(dl_device=(2, 0)), BufferError, "CPU")
    check(lambda: tile.__dlpack__(dl_device="cpu"), TypeError, "dl_device")
    check(lambda: tile.__dlpack__(copy="yes"), TypeError, "copy must be")
    tile.release()
    tile.release()                       # idempotent
    assert tile.released
    check(tile.numpy, BufferError, "released")
    check(lambda: tile.__dlpack__(), BufferError, "released")
    check(lambda: np.from_dlpack(tile), BufferError, "released")


def test_closed_pool_and_dataset():
    d = rasterloader.open(fixture_path(NAME))
    p = rasterloader.BufferPool(1 << 20)
    tile = d.read_hwc(window=W, pool=p)
    p.close()
    p.close()                            # idempotent
    check(lambda: d.read_hwc(window=W, pool=p), errors.ClosedError, "closed")
    check(p.stats, errors.ClosedError, "closed")
    assert tile.numpy().shape == (4, 4, d.count)   # a tile outlives its pool
    tile.release()
    d.close()
    d.close()
    for call in (lambda: d.read(window=W), lambda: d.read_masks(window=W),
                 lambda: d.dataset_mask(window=W), lambda: d.read_hwc(window=W),
                 lambda: d.read_hwc(window=W, out=np.empty((4, 4, d.count), np.uint8))):
        e = check(call, errors.ClosedError, "closed")
        assert isinstance(e, ValueError) and NAME in str(e)


# --------------------------------------------------------------------- batch loader

def test_loader_bad_input():
    p = fixture_path(NAME)
    good = [(p, None, (0, 0, 8, 8))] * 4
    check(lambda: rasterloader.BatchLoader([], 2), ValueError, "no samples")
    check(lambda: rasterloader.BatchLoader(good, 0), ValueError, "batch_size")
    check(lambda: rasterloader.BatchLoader(good, 2, prefetch=-1), ValueError, "prefetch")
    check(lambda: rasterloader.BatchLoader([p], 2), TypeError, "a sample is")
    check(lambda: rasterloader.BatchLoader([(p, None, "x")], 2), TypeError, "window must be")
    check(lambda: rasterloader.BatchLoader([("/nope.tif", None, (0, 0, 8, 8))], 2),
          FileNotFoundError, "no such file")
    check(lambda: rasterloader.BatchLoader(good, 2, out_dtype="junk"), TypeError, "not understood")
    check(lambda: rasterloader.BatchLoader(good, 2, rank=3, world_size=2), ValueError, "rank")
    with rasterloader.WindowReader(good + [(p, None, (0, 0, 9, 9))]) as r:
        check(lambda: r.read([0, 4]), errors.InvalidArgumentError, "sample 1 of 2")
        check(lambda: r.read([]), errors.InvalidArgumentError, "at least one")
        check(lambda: r.read([0, 99]), IndexError, "out of range")
        check(lambda: r.read_into([0, 1], np.empty((2, 8, 8, 2), np.float32)), ValueError, "needs")
        check(lambda: r.read_into([0, 1], [0]), TypeError, "writable numpy array or torch tensor")
        check(lambda: r.read_into([0, 1], np.empty((2, 8, 8, 3), np.float32),
                                  validity_out=np.empty((2, 8, 8), np.float32)), ValueError,
              "needs uint8")
        check(lambda: r.read_into([0, 1], np.empty((2, 8, 8, 3), np.float32), layout="hwc"),
              ValueError, "layout must be")
    with rasterloader.WindowReader([(p, None, (690, 0, 40, 8))]) as r:
        check(lambda: r.read([0]), errors.WindowError, "outside")
    with rasterloader.WindowReader(good, bands=[9]) as r:
        check(lambda: r.read([0]), errors.BandIndexError, "does not exist")
    with rasterloader.WindowReader(good, out_dtype="complex64") as r:
        check(lambda: r.read([0]), errors.InvalidArgumentError, "complex64")


@pytest.mark.parametrize("window", [(0, 0, -8, 8), (0, 0, 8, 0), ((0, 0), (0, 8))])
def test_loader_empty_or_negative_window_is_named(window):
    p = fixture_path(NAME)
    check(lambda: rasterloader.WindowReader([(p, None, window)]), ValueError, "width and height")
