#!/usr/bin/env python3
"""Atheris smoke fuzz of the Python read API.

    .venv/bin/python tests/fuzz/atheris_read_api.py -max_total_time=20 [libFuzzer flags]

Each input drives one call on a few small datasets (native and GDAL reader):
Dataset.read / read_masks / dataset_mask / read_hwc (pooled or into ``out=``),
with windows (tuples, Window objects, slices, negative, huge, fractional, NaN),
indexes, dtypes, boundless/fill, scale/offset/mean/std, out arrays of any
shape, dtype and strides, and pool timeouts all taken from the input.  A call
may raise the exceptions a bad argument deserves (ValueError, TypeError,
IndexError, NotImplementedError, OverflowError, BufferError, MemoryError and
rasterloader.errors.RasterError subclasses); anything else (AttributeError,
KeyError, ZeroDivisionError, SystemError, a crash) is a bug and stops the run.
Every ``out=`` array is a view into a larger guarded buffer: a write outside
the view is a bug too.  The pooled tiles must all go back (pool bytes in use
return to 0).  RASTER_FIXTURES names the fixture directory.
"""

import math
import os
import sys

import atheris

import numpy as np

with atheris.instrument_imports(include=["rasterloader"]):
    import rasterloader
    from rasterloader import Window, errors

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.environ.get("RASTER_FIXTURES", os.path.join(ROOT, "data", "fixtures"))
NAMES = [  # small ones of several layouts; those missing are skipped
    "u16_deflate_pred2_stripall_pixel_4b_1000x3.tif",
    "u16_zstd_pred2_tile256_pixel_1b_3x1000.tif",
    "f32_zstd_pred3_stripall_pixel_3b_1x1.tif",
    "f64_zstd_pred1_strip16_pixel_1b_3x1000.tif",
    "f32_lzw_pred1_tile256_band_3b_1000x3.tif",
    "u8_deflate_pred1_tile256_pixel_1b_512x512_palette.tif",
]
ALLOWED = (ValueError, TypeError, IndexError, NotImplementedError, OverflowError, BufferError,
           MemoryError, errors.RasterError)
DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float16", "float32", "float64",
          "complex64", "bool", "int64", ">u2", "junk", None]
GUARD = 64
POOL = rasterloader.BufferPool(64 << 20)
DATASETS = []


def open_all():
    for name in NAMES:
        path = os.path.join(FIXTURES, name)
        if os.path.exists(path):
            DATASETS.append(rasterloader.open(path))
            DATASETS.append(rasterloader.open(path, reader="gdal"))
    if not DATASETS:
        sys.exit(f"atheris_read_api: no fixtures in {FIXTURES}: run `make fixtures`")


def number(fdp, ds):
    """A coordinate: mostly near the raster, sometimes extreme or odd."""
    k = fdp.ConsumeIntInRange(0, 15)
    if k < 10:
        return fdp.ConsumeIntInRange(-8, max(ds.width, ds.height) + 8)
    return [-(2 ** 31), 2 ** 31, 10 ** 12, 2.5, math.nan, math.inf][k - 10]


def window(fdp, ds):
    kind = fdp.ConsumeIntInRange(0, 5)
    if kind == 0:
        return None
    a, b, c, d = (number(fdp, ds) for _ in range(4))
    if kind == 1:
        return ((a, b), (c, d))
    if kind == 2:
        return Window(a, b, c, d)
    if kind == 3:
        return (slice(a, b), slice(c, d))
    if kind == 4:
        return ((a, b, c), (d,))
    return (a, b, c, d)


def indexes(fdp, ds):
    kind = fdp.ConsumeIntInRange(0, 4)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeIntInRange(-1, ds.count + 1)
    if kind == 2:
        return [fdp.ConsumeIntInRange(0, ds.count + 1) for _ in range(fdp.ConsumeIntInRange(0, 4))]
    if kind == 3:
        return [1.0, "1", None, True][fdp.ConsumeIntInRange(0, 3)]
    return list(range(1, ds.count + 1))


def too_big(win):
    """A boundless window of more than 4 million pixels: legal, and the array
    it asks for is simply allocated (up to gigabytes); not what this tests."""
    try:
        if isinstance(win, Window):
            h, w = win.height, win.width
        elif isinstance(win, tuple) and len(win) == 2:
            rows, cols = win
            if isinstance(rows, slice):
                rows, cols = (rows.start, rows.stop), (cols.start, cols.stop)
            h, w = rows[1] - rows[0], cols[1] - cols[0]
        else:
            return False
        return not abs(h * w) <= 4e6
    except (TypeError, ValueError, IndexError, OverflowError):
        return False


def small(shape):
    """Refuse to materialise big arrays: the point is arguments, not memory."""
    n = 1
    for s in shape:
        if not isinstance(s, int) or s < 0:
            return False
        n *= s
    return n <= 1 << 20


def guarded_out(fdp, shape, dtype):
    """A view of 'shape' into a larger buffer whose other bytes are a pattern."""
    itemsize = np.dtype(dtype).itemsize
    base = np.full(int(np.prod(shape)) * itemsize * 2 + 2 * GUARD + 64, 0xA5, np.uint8)
    off = GUARD + fdp.ConsumeIntInRange(0, 3) * itemsize
    arr = base[off:off + int(np.prod(shape)) * itemsize].view(dtype).reshape(shape)
    if fdp.ConsumeBool() and arr.ndim == 3:
        arr = np.moveaxis(arr, 0, -1) if fdp.ConsumeBool() else arr[:, ::-1]
    return base, off, arr


def guards_intact(base, off, arr):
    lo = arr.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    span = arr.nbytes if arr.flags.c_contiguous or arr.flags.f_contiguous else None
    if span is None:
        return True   # strided views: the library's own stride checks cover these
    return bool(np.all(base[:lo] == 0xA5) and np.all(base[lo + span:] == 0xA5))


def one_call(fdp):
    ds = DATASETS[fdp.ConsumeIntInRange(0, len(DATASETS) - 1)]
    if fdp.ConsumeIntInRange(0, 60) == 0:       # now and then, a closed dataset
        closed = rasterloader.open(ds.name)
        closed.close()
        ds = closed
    method = fdp.ConsumeIntInRange(0, 4)
    win = window(fdp, ds)
    idx = indexes(fdp, ds)
    boundless = fdp.ConsumeBool()
    kw = {}
    if fdp.ConsumeBool():
        kw["window"] = win
    if boundless:
        kw["boundless"] = True
    if boundless and too_big(win):
        return                                   # a legal but huge boundless array
    if method == 0:       # read
        if idx is not None:
            kw["indexes"] = idx
        dt = DTYPES[fdp.ConsumeIntInRange(0, len(DTYPES) - 1)]
        if dt is not None:
            kw["out_dtype"] = dt
        if fdp.ConsumeBool():
            kw["fill_value"] = [0, -1, 1e300, math.nan, "x"][fdp.ConsumeIntInRange(0, 4)]
        if fdp.ConsumeBool():
            kw["masked"] = True
        if fdp.ConsumeBool():
            shape = tuple(fdp.ConsumeIntInRange(0, 6) for _ in range(fdp.ConsumeIntInRange(1, 3)))
            if small(shape):
                base, off, arr = guarded_out(fdp, shape, np.dtype(kw.pop("out_dtype", "uint8")
                                                                  if kw.get("out_dtype") in DTYPES[:9]
                                                                  else "uint8"))
                kw["out"] = arr
                try:
                    ds.read(**kw)
                finally:
                    if not guards_intact(base, off, arr):
                        raise AssertionError(f"read(out=...) wrote outside its view: {kw}")
                return
        ds.read(**kw)
    elif method == 1:     # read_masks
        if idx is not None:
            kw["indexes"] = idx
        ds.read_masks(**kw)
    elif method == 2:     # dataset_mask
        ds.dataset_mask(**kw)
    else:                 # read_hwc, pooled or into out
        if idx is not None:
            kw["indexes"] = idx
        norm = fdp.ConsumeIntInRange(0, 4)
        if norm == 1:
            kw["scale"] = fdp.ConsumeFloat()
        elif norm == 2:
            kw["mean"], kw["std"] = fdp.ConsumeFloat(), fdp.ConsumeFloat()
        elif norm == 3:
            kw["offset"] = [fdp.ConsumeFloat() for _ in range(fdp.ConsumeIntInRange(0, 5))]
        dt = DTYPES[fdp.ConsumeIntInRange(0, len(DTYPES) - 1)]
        if method == 4:
            shape = tuple(fdp.ConsumeIntInRange(0, 6) for _ in range(fdp.ConsumeIntInRange(1, 4)))
            if not small(shape) or dt not in DTYPES[:9]:
                return
            base, off, arr = guarded_out(fdp, shape, np.dtype(dt))
            kw["out"] = arr
            try:
                ds.read_hwc(**kw)
            finally:
                if not guards_intact(base, off, arr):
                    raise AssertionError(f"read_hwc(out=...) wrote outside its view: {kw}")
            return
        if dt is not None:
            kw["out_dtype"] = dt
        kw["pool"] = POOL
        kw["timeout"] = [None, 0, 0.01, -1, math.nan, "1"][fdp.ConsumeIntInRange(0, 5)]
        tile = ds.read_hwc(**kw)
        if fdp.ConsumeBool():
            np.from_dlpack(tile).sum()
        tile.release()


def test_one_input(data):
    fdp = atheris.FuzzedDataProvider(data)
    try:
        one_call(fdp)
    except ALLOWED:
        pass
    stats = POOL.stats()
    if stats["bytes_in_use"] != 0:
        raise AssertionError(f"pool bytes still in use after a call: {stats}")


def main():
    open_all()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
