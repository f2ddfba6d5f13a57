"""rasterloader.Dataset: rasterio's DatasetReader API over the C reader.

Reads follow rasterio 1.4's ``DatasetReader.read`` call for call: same
argument names, same CHW shapes and dtypes, bit-identical values (the
equivalence suite in tests/python proves it fixture by fixture).  The CHW
result is written by the C library straight into a CHW strided view of the
output array (``chan_stride = H*W*itemsize``): no transpose, no second copy.

Native HWC reads (:meth:`Dataset.read_hwc`) return pooled :class:`Tile`
objects shared through DLPack, or write in place into a caller's array or
tensor.

Every read resolves its window once (rasterloader._windows.read_window) and
makes one C call with the float window and the output size; the C library
decides whether that is a plain or a resampled read
(raster_read_window_into): ``out_shape`` (or an ``out`` array) whose
height/width differ from the window's, a window with fractional lengths, or
one with fractional offsets read with another method than nearest, is
resampled by GDAL with rasterio's own call (the float window,
``resampling``), so it equals rasterio's.  Windows with fractional offsets
but whole lengths read with nearest map to whole pixels exactly as GDAL's
nearest rule does (no resampling needed).  read_masks(), dataset_mask() and
the mask of read(masked=True) go through the same decision
(raster_read_masks_window_into); read_hwc() makes the same call into HWC.

A boundless resampled read (and a boundless window with fractional offsets)
is read as rasterio reads it, through a VRT of the dataset on the window's
grid, which the C library builds (docs/reading.md).

Deliberate limit (NotImplementedError, never silently differs from
rasterio): read_hwc() of a window with fractional lengths.
"""

import functools
import math
import numbers
import os
import warnings

import numpy as np
from affine import Affine

from . import _compat, _core, _windows
from ._compat import Resampling, Window
from ._dataset_meta import DatasetMetaMixin, fence, reader_bases
from ._args import norm_kwargs, resampling_code, timeout_ms
from ._pool import default_pool
from .errors import (BandIndexError, ClosedError, CorruptError, NotGeoreferencedWarning,
                     RasterIOError, RasterMemoryError, WindowError, read_failure_cause)

__all__ = ["Dataset", "open"]

# Timeout for waiting on a full pool in read_hwc, unless given.
DEFAULT_TIMEOUT_S = 30.0


def _np_dtype_name(dt):
    return np.dtype(dt).name


def _band_number(i, indexes):
    """One band of a sequence of ``indexes``: int() would take "1", 1.5 and
    True, but a band number is an integer."""
    if not isinstance(i, numbers.Integral) or isinstance(i, bool):
        raise TypeError(f"indexes must be an int or a sequence of ints, not {indexes!r}")
    return int(i)


def _in_dtype_range(value, dtype):
    """rasterio.dtypes.in_dtype_range: whether the band's dtype can hold its
    nodata; rasterio reports a nodata it cannot hold as None."""
    dt = np.dtype(dtype)
    if math.isnan(value):
        return dt.kind in "cf"
    info = np.iinfo(dt) if dt.kind in "iu" else np.finfo(dt)
    return float(info.min) <= value <= float(info.max)


def _band_as_rasterio(band_info):
    """A band's info with rasterio's nodata: None when the dtype cannot hold it
    (a uint8 band with nodata -10000)."""
    ndv = band_info["nodata"]
    if ndv is not None and not _in_dtype_range(ndv, band_info["dtype"]):
        band_info = dict(band_info, nodata=None)
    return band_info


def _read_failures_chained(read):
    """rasterio raises a read failure ``from`` GDAL's error (a CPLE_* exception
    with GDAL's message: ``RasterioIOError(...) from cplerr``); a failure of
    ``read`` (CorruptError, RasterIOError) gets the same __cause__."""
    @functools.wraps(read)
    def chained(*args, **kwargs):
        try:
            return read(*args, **kwargs)
        except (CorruptError, RasterIOError) as e:
            cause = read_failure_cause(e) if e.__cause__ is None else None
            if cause is None:
                raise
            raise e from cause
    return chained


def _clipped_nodata(band_info):
    """rasterio clips a band's nodata to its dtype's range before using it."""
    ndv = band_info["nodata"]
    if ndv is None or math.isnan(ndv):
        return ndv
    dt = np.dtype(band_info["dtype"])
    info = np.iinfo(dt) if dt.kind in "iu" else np.finfo(dt)
    return min(max(ndv, float(info.min)), float(info.max))


class Dataset(DatasetMetaMixin, *reader_bases()):
    """An open raster, read like ``rasterio.open(path)``.  Thread-safe for
    reads; usable in forked DataLoader workers (file handles re-open lazily).
    The rest of rasterio's reader API (blocks, sample, tags, colormap, ...) is
    in _dataset_meta.py; with rasterio installed this is also a
    ``rasterio.io.DatasetReader``, as rasterio's helpers check."""

    def __init__(self, path, *, reader=None):
        name = os.fspath(path)
        code = {None: -1, "auto": -1, "gdal": _core.READER_GDAL,
                "native": _core.READER_NATIVE_TIFF}.get(reader)
        if code is None:
            raise ValueError(f"reader must be None, 'gdal' or 'native', not {reader!r}")
        self._init_from_core(name, _core.Dataset(name, code))
        if self._info["geotransform"] is None and not self.gcps[0] and self.rpcs is None:
            # rasterio warns here, once, when it reads the transform at open.
            warnings.warn("Dataset has no geotransform, gcps, or rpcs. The identity matrix will "
                          "be returned.", NotGeoreferencedWarning, stacklevel=3)

    def _init_from_core(self, name, core):
        """The metadata every property reads, from a C dataset (an opened file,
        or a warped VRT: rasterloader.vrt.WarpedVRT builds itself here too)."""
        self.name = name
        self._core = core
        info = self._core.info()
        self._info = info
        self._bands = tuple(_band_as_rasterio(self._core.band_info(b))
                            for b in range(1, info["count"] + 1))
        # What every read derives from the bands, derived once (a warm read costs a few us).
        self._indexes = tuple(range(1, info["count"] + 1))
        self._band_dtypes = tuple(np.dtype(b["dtype"]) for b in self._bands)
        dtypes = set(self._band_dtypes)
        self._one_dtype = dtypes.pop() if len(dtypes) == 1 else None    # None: bands differ
        self._clipped_nodatas = tuple(_clipped_nodata(b) for b in self._bands)
        gt = info["geotransform"]
        self._transform = Affine.from_gdal(*(gt if gt is not None else (0, 1, 0, 0, 0, 1)))
        self._crs_wkt = info["crs_wkt"]
        self._crs = None
        self.mode = "r"

    # ------------------------------------------------------------ lifetime
    def close(self):
        self._core.close()

    @property
    def closed(self):
        return self._core.closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = "closed" if self.closed else "open"
        return f"<{state} rasterloader.Dataset name='{self.name}' mode='r'>"

    def _live(self):
        if self._core.closed:
            raise ClosedError(f"{self.name}: dataset is closed", _core.E_CLOSED)
        return self._core

    # ------------------------------------------------------------ metadata
    @property
    def width(self):
        return self._info["width"]

    @property
    def height(self):
        return self._info["height"]

    @property
    def count(self):
        return self._info["count"]

    @property
    def shape(self):
        return (self.height, self.width)

    @property
    def indexes(self):
        return self._indexes

    @property
    def dtypes(self):
        return tuple(b["dtype"] for b in self._bands)

    @property
    def nodatavals(self):
        return tuple(b["nodata"] for b in self._bands)

    @property
    def nodata(self):
        return self._bands[0]["nodata"]

    @property
    def driver(self):
        return self._info["driver"]

    @property
    def reader(self):
        """'native' (pread + libdeflate/libzstd) or 'gdal': which C reader serves reads."""
        return self._info["reader"]

    @property
    def transform(self):
        return self._transform

    @property
    def crs(self):
        """rasterio.crs.CRS when rasterio is importable, else rasterloader's small CRS
        (to_wkt, to_epsg, WKT equality); None when the file has no CRS."""
        if self._crs is None and self._crs_wkt:
            self._crs = _compat.make_crs(self._crs_wkt)
        return self._crs

    @property
    def res(self):
        a, b, _, d, e, _, _, _, _ = self._transform
        if b == d == 0:
            return abs(a), abs(e)
        return math.sqrt(a * a + d * d), math.sqrt(b * b + e * e)

    @property
    def bounds(self):
        a, b, c, d, e, f, _, _, _ = self._transform
        w, h = self.width, self.height
        if b == d == 0:
            return _compat.BoundingBox(c, f + e * h, c + a * w, f)
        corners = [_apply(self._transform, *xy) for xy in ((0, 0), (0, h), (w, h), (w, 0))]
        xs, ys = zip(*corners)
        return _compat.BoundingBox(min(xs), min(ys), max(xs), max(ys))

    @property
    def block_shapes(self):
        return [(b["block_height"], b["block_width"]) for b in self._bands]

    @property
    def compression(self):
        c = self._info["compression"]
        if not c or c == "NONE":
            return None
        if c.startswith("YCbCr "):      # GDAL's "YCbCr JPEG": rasterio reports JPEG
            c = c[len("YCbCr "):]
        if _compat.Compression is not None:
            try:
                return _compat.Compression(c)
            except ValueError:
                return c
        return c

    @property
    def interleave(self):
        i = self._info["interleave"]
        if not i:
            return None
        if _compat.Interleaving is not None:
            try:
                return _compat.Interleaving(i)
            except ValueError:
                return i
        return i

    @property
    def colorinterp(self):
        names = [b["color_interp"] for b in self._bands]
        if _compat.ColorInterp is not None:
            out = []
            for n in names:
                key = {"grey": "gray", "undefined": "undefined"}.get(n, n)
                try:
                    out.append(_compat.ColorInterp[key])
                except KeyError:
                    out.append(_compat.ColorInterp.undefined)
            return tuple(out)
        return tuple(names)

    @property
    def mask_flag_enums(self):
        flags = [b["mask_flags"] for b in self._bands]
        if _compat.MaskFlags is None:
            return tuple(flags)
        # rasterio's MaskFlags values are GDAL's GMF_* bits, which C reports.
        return tuple([m for m in _compat.MaskFlags if f & m.value] for f in flags)

    @property
    def meta(self):
        return {"driver": self.driver, "dtype": self.dtypes[0], "nodata": self.nodata,
                "width": self.width, "height": self.height, "count": self.count,
                "crs": self.crs, "transform": self.transform}

    @property
    def profile(self):
        """rasterio's profile keys: meta plus blockxsize, blockysize, tiled, compress
        and interleave, and photometric when GDAL reports one."""
        m = self.meta
        bh, bw = self.block_shapes[0]
        # rasterio's rule, not the TIFF's: a block narrower or wider than the image.
        m.update(blockxsize=bw, blockysize=bh, tiled=bw != self.width)
        if self.compression is not None:
            c = self.compression
            m["compress"] = (c.name if hasattr(c, "name") else str(c)).lower()
        if self.interleave is not None:
            i = self.interleave
            m["interleave"] = (i.name if hasattr(i, "name") else str(i)).lower()
        if self.photometric is not None:
            p = self.photometric
            m["photometric"] = (p.name if hasattr(p, "name") else str(p)).lower()
        return m

    # ------------------------------------------------------------ geometry
    def window(self, left, bottom, right, top, precision=None):
        """The (float) Window covering the bounds, as rasterio's window()."""
        if precision is not None:
            from ._dataset_meta import warn_precision
            warn_precision()
        return _windows.from_bounds(left, bottom, right, top, self._transform)

    def window_transform(self, window):
        """rasterio.windows.transform(window, self.transform), float for float:
        the window evaluated with height = width = 0 (so a negative slice start
        stays negative), its corner through the transform, and that offset
        composed with the transform (Affine.translation(x - c, y - f) *
        transform, written out in affine's order)."""
        w = _windows.to_window(window, 0, 0)
        a, b, c, d, e, f = self._transform[:6]
        x, y = _apply(self._transform, w.col_off or 0.0, w.row_off or 0.0)
        tx, ty = x - c, y - f
        return Affine(1 * a + 0 * d, 1 * b + 0 * e, 1 * c + 0 * f + tx,
                      0 * a + 1 * d, 0 * b + 1 * e, 0 * c + 1 * f + ty)

    def window_bounds(self, window):
        w = _windows.to_window(window, self.height, self.width)
        x0, y0 = _apply(self._transform, w.col_off, w.row_off + w.height)
        x1, y1 = _apply(self._transform, w.col_off + w.width, w.row_off)
        return (x0, y0, x1, y1)

    def index(self, x, y, z=None, op=math.floor, precision=None, transform_method=None,
              **rpc_options):
        """(row, col) of the pixel containing (x, y); rasterio's arguments (z,
        transform_method=GCPs/RPCs) go to rasterio's own index()."""
        if z is not None or precision is not None or transform_method is not None or rpc_options:
            return self._rasterio_transform("index", x, y, z=z, op=op, precision=precision,
                                            transform_method=transform_method, **rpc_options)
        col, row = _apply(~self._transform, x, y)
        return op(row), op(col)

    def xy(self, row, col, z=None, offset="center", transform_method=None, **rpc_options):
        """Coordinates of a pixel's center (or 'ul', 'ur', 'll', 'lr' corner); as index()."""
        if z is not None or transform_method is not None or rpc_options:
            return self._rasterio_transform("xy", row, col, z=z, offset=offset,
                                            transform_method=transform_method, **rpc_options)
        dr, dc = {"center": (0.5, 0.5), "ul": (0, 0), "ur": (0, 1), "ll": (1, 0),
                  "lr": (1, 1)}[offset]
        return _apply(self._transform, col + dc, row + dr)

    # ------------------------------------------------------------ bands
    def _resolve_indexes(self, indexes):
        if indexes is None:
            return list(self._indexes), False
        # type() first: the common int without the ABC check (bool is not int here).
        if type(indexes) is int or (isinstance(indexes, numbers.Integral)
                                    and not isinstance(indexes, bool)):
            bands, return2d = [int(indexes)], True
        elif isinstance(indexes, (str, bytes)) or not hasattr(indexes, "__iter__"):
            raise TypeError(f"indexes must be an int or a sequence of ints, not {indexes!r}")
        else:
            bands, return2d = [_band_number(i, indexes) for i in indexes], False
        if not bands:
            raise ValueError(f"{self.name}: No indexes to read")
        count = self._info["count"]
        for b in bands:
            if not 1 <= b <= count:
                raise BandIndexError(
                    f"{self.name}: band index {b} out of range (not in {self.indexes})",
                    _core.E_BOUNDS)
        return bands, return2d

    def _common_dtype(self, bands):
        """The np.dtype of the bands, which must have one."""
        if self._one_dtype is not None:
            return self._one_dtype
        dts = {self._band_dtypes[b - 1] for b in bands}
        if len(dts) > 1:
            raise ValueError(f"{self.name}: more than one 'dtype' found")
        return dts.pop()

    def _clipped_nodata(self, band):
        """rasterio clips a band's nodata to its dtype's range before using it."""
        return self._clipped_nodatas[band - 1]

    # ------------------------------------------------------------ reads
    # Every read resolves its window once (_windows.read_window: the integer
    # box of the output's size and the float window rasterio evaluates) and
    # makes one C call with the float window and the output size; the C
    # library decides whether that is a plain or a resampled read
    # (raster_read_window_into), with the rule written once, in C.

    def _check_window_fills(self, win, oh, ow):
        """rasterio (GDAL) fails to fill a non-empty output from an empty window."""
        if oh > 0 and ow > 0 and not (win[2] > 0 and win[3] > 0):
            raise RasterIOError(f"{self.name}: cannot read the empty window {Window(*win)} into "
                                f"{oh}x{ow} pixels", _core.E_IO)

    @_read_failures_chained
    def read(self, indexes=None, out=None, window=None, masked=False, out_shape=None,
             boundless=False, resampling=Resampling.nearest, fill_value=None, out_dtype=None):
        """Read bands as a CHW array (2-D for an int ``indexes``), like rasterio's read().

        An ``out_shape`` (or ``out``) of another height/width than the window, or a
        window with fractional lengths, is a resampled read: GDAL resamples with
        ``resampling``, as for rasterio."""
        core = self._live()
        bands, return2d = self._resolve_indexes(indexes)
        dtype = self._common_dtype(bands) if out_dtype is None else np.dtype(out_dtype)
        box, fbox = _windows.read_window(window, self.height, self.width, boundless)
        win = box if fbox is None else fbox
        w, h = box[2], box[3]
        n = len(bands)
        alg = 0 if resampling is Resampling.nearest else resampling_code(resampling)
        if out is not None and out_shape is not None:
            raise ValueError("out and out_shape are exclusive")
        if out is not None:
            if not isinstance(out, np.ndarray):
                raise TypeError("out must be a numpy array; use read_hwc(out=...) for tensors")
            if out.ndim == 2 and return2d:
                layout, arr = "hw", out
            else:
                if out.ndim != 3 or out.shape[0] != n:
                    raise ValueError(f"{self.name}: 'out' shape {out.shape} does not match window shape "
                                     f"{(n, h, w)}")
                layout, arr = "chw", out
            out_hw = tuple(out.shape[-2:])
        else:
            if out_shape is not None:
                out_shape = tuple(int(s) for s in out_shape)
                if len(out_shape) == 2:
                    out_shape = (n,) + out_shape
                if len(out_shape) != 3 or out_shape[0] != n:
                    raise ValueError(f"{self.name}: out_shape {out_shape} does not match {n} band(s)")
                out_hw = out_shape[1:]
            else:
                out_hw = (h, w)
            # One band read as 2-D is allocated 2-D: no 3-D array and view of it to squeeze.
            layout = "hw" if return2d else "chw"
            arr = np.empty(out_hw if return2d else (n,) + out_hw, dtype)
        boundless_read = bool(boundless) and window is not None
        # rasterio's boundless nodata: fill_value, else the last band's clipped nodata; None
        # when neither (0 outside, and a resampled read's VRT has no nodata of its own).
        fill = None
        if boundless_read:
            fill = fill_value if fill_value is not None else self._clipped_nodata(bands[-1])
        oh, ow = out_hw
        self._check_window_fills(win, oh, ow)
        if oh > 0 and ow > 0:
            # Positional: the C call parses keywords at a cost comparable to a small read's copy.
            core.read_into(win, arr, out_hw, layout, bands, boundless_read,
                           None if fill is None else float(fill), alg)
        result = arr
        want_mask = masked if boundless_read else (masked or fill_value is not None)
        if want_mask:
            # rasterio's boundless VRT takes fill_value, else the last band's nodata, as nodata.
            value = None
            if boundless_read:
                value = fill_value if fill_value is not None else self._clipped_nodata(bands[-1])
            m = np.empty(arr.shape, np.uint8)      # the pixels' shape: no 3-D detour for one band
            no_mask = core.read_masks_into(win, m, out_hw, layout, rule=_core.MASKS_READ,
                                           bands=bands, boundless=boundless_read, nodata=value,
                                           pixels=arr if oh > 0 and ow > 0 else None,
                                           pixels_layout=layout, resampling=alg)
            result = self._as_masked(result, bands, np.ma.nomask if no_mask else m == 0, masked,
                                     fill_value)
        return self._squeezed(result, return2d) if result.ndim == 3 else result

    def _as_masked(self, result, bands, mask, masked, fill_value):
        """rasterio's masked result: a MaskedArray whose fill value is fill_value or the
        bands' common nodata, filled back with fill_value unless masked."""
        nodatavals = [self._clipped_nodata(b) for b in bands]
        kwds = {"mask": mask}
        if fill_value is not None:
            kwds["fill_value"] = fill_value
        elif len(set(nodatavals)) == 1 and nodatavals[0] is not None:
            kwds["fill_value"] = nodatavals[0]
        result = np.ma.array(result, **kwds)     # mask: the shape of result
        return result if masked else result.filled(fill_value)

    @staticmethod
    def _squeezed(result, return2d):
        if return2d and result.ndim == 3:
            return result[0] if not isinstance(result, np.ma.MaskedArray) else result.reshape(
                result.shape[1:])
        return result

    def _mask_read(self, out, out_shape, window, boundless, resampling):
        """What read_masks() and dataset_mask() resolve the same way: the float
        window, the output (height, width) (``out``'s, ``out_shape``'s or the
        window's), boundless as rasterio applies it, the resampling code."""
        if out is not None and not isinstance(out, np.ndarray):
            raise TypeError(f"out must be a numpy array, not {type(out).__name__}")
        box, fbox = _windows.read_window(window, self.height, self.width, boundless)
        win = box if fbox is None else fbox
        if out is not None:
            out_hw = tuple(out.shape[-2:])
        elif out_shape is not None:
            out_hw = tuple(int(v) for v in out_shape)[-2:]
        else:
            out_hw = (box[3], box[2])
        alg = 0 if resampling is Resampling.nearest else resampling_code(resampling)
        self._check_window_fills(win, *out_hw)
        return win, out_hw, bool(boundless) and window is not None, alg

    @_read_failures_chained
    def read_masks(self, indexes=None, out=None, out_shape=None, window=None, boundless=False,
                   resampling=Resampling.nearest):
        """uint8 validity masks (0 invalid, 255 valid) per band, like rasterio's;
        resampled by GDAL for an ``out_shape``/``out`` of another size."""
        core = self._live()
        bands, return2d = self._resolve_indexes(indexes)
        n = len(bands)
        if out is not None and out_shape is not None:
            raise ValueError("out and out_shape are exclusive")
        win, (oh, ow), boundless_read, alg = self._mask_read(out, out_shape, window, boundless,
                                                             resampling)
        if out is not None:
            arr = out if out.ndim == 3 else out.reshape((1,) + out.shape)
            if arr.shape[0] != n:
                raise ValueError(f"{self.name}: 'out' shape {out.shape} does not match window shape "
                                 f"{(n, oh, ow)}")
        else:
            arr = np.empty((n, oh, ow), np.uint8)
        if oh > 0 and ow > 0:
            core.read_masks_into(win, arr, (oh, ow), "chw", rule=_core.MASKS_BANDS, bands=bands,
                                 boundless=boundless_read, resampling=alg)
        result = out if out is not None else arr
        if return2d and result.ndim == 3:
            result = result[0]
        return result

    @_read_failures_chained
    def dataset_mask(self, out=None, out_shape=None, window=None, boundless=False,
                     resampling=Resampling.nearest):
        """The dataset's uint8 validity mask (2-D), with rasterio's rules; resampled
        by GDAL for an ``out_shape``/``out`` of another size."""
        core = self._live()
        win, (oh, ow), boundless_read, alg = self._mask_read(out, out_shape, window, boundless,
                                                             resampling)
        arr = np.empty((oh, ow), np.uint8) if out is None else out
        if oh > 0 and ow > 0:
            core.read_masks_into(win, arr, (oh, ow), "hw", rule=_core.MASKS_DATASET,
                                 boundless=boundless_read, resampling=alg)
        return arr

    # ------------------------------------------------------------ native HWC
    @_read_failures_chained
    def read_hwc(self, window=None, indexes=None, out=None, out_dtype=None, scale=None,
                 offset=None, mean=None, std=None, boundless=False, fill_value=None, pool=None,
                 timeout=DEFAULT_TIMEOUT_S, out_shape=None, resampling=Resampling.nearest):
        """Read a window as height x width x channels, with no CHW detour.

        - ``out=``: a writable numpy array or torch tensor (any DLPack producer)
          of shape (h, w, c) -- or (h, w) for one band -- written in place and
          returned.  Its dtype is the output dtype (out_dtype, if given, must
          match).  Shape, dtype, strides and writability are checked; nothing
          is ever copied behind your back.
        - otherwise: a pooled :class:`Tile` from ``pool`` (default: the
          process's default pool), shared zero-copy through DLPack.  ``timeout``
          (seconds, None = forever) bounds the wait for a full pool.

        Normalisation, computed in double and rounded once to the output dtype:
        ``mean``/``std`` give ``(x - mean) / std`` in that order (x == mean is
        exactly 0); ``scale``/``offset`` give ``x * scale + offset``.  Each is a
        number or one value per band read (another length is a ValueError).
        With any of them the default out_dtype is float32, else the file's
        dtype.  ``indexes``: None (all), an int or a list (1-based).
        Boundless reads fill outside the raster with ``fill_value`` (default:
        the band nodata, else 0).

        ``out_shape`` ((h, w) or (c, h, w)) of another size than the window
        resamples as rasterio's ``read(out_shape=..., resampling=...)`` does (the
        same GDAL call, the same pixels), straight into HWC; boundless too
        (rasterio's VRT over the window, as read()).  With ``out=`` too, ``out`` must have that size: unlike
        ``read(out=...)``, an ``out`` of the wrong size is an error here, never
        a silent resampling.
        """
        core = self._live()
        bands, _ = self._resolve_indexes(indexes)
        n = len(bands)
        if mean is None and std is None and scale is None and offset is None:
            norm = {}           # what norm_kwargs() gives, without building its message
        else:
            norm = norm_kwargs(n, mean, std, scale, offset, where=f"{self.name} (bands {bands})")
        normalised = bool(norm)
        box, fbox = _windows.read_window(window, self.height, self.width, boundless)
        _windows.require_whole_lengths(fbox)
        win = box if fbox is None else fbox
        col, row, w, h = box
        if w < 1 or h < 1:
            raise WindowError(f"{self.name}: window {window!r} is empty", _core.E_BOUNDS)
        out_hw = (h, w)
        if out_shape is not None:
            out_shape = tuple(int(v) for v in out_shape)
            if len(out_shape) == 3 and out_shape[0] != n or len(out_shape) not in (2, 3):
                raise ValueError(f"{self.name}: out_shape {out_shape} does not match {n} band(s): "
                                 "give (height, width) or (bands, height, width)")
            out_hw = out_shape[-2:]
        alg = 0 if resampling is Resampling.nearest else resampling_code(resampling)
        boundless_read = bool(boundless) and window is not None
        if fill_value is None and boundless_read:    # as read(): None when there is none
            fill_value = self._clipped_nodata(bands[-1])
        fill = None if fill_value is None else float(fill_value)
        if out is not None:
            layout = "hw" if getattr(out, "ndim", len(getattr(out, "shape", ()))) == 2 else "hwc"
            if out_dtype is not None:
                want = _np_dtype_name(out_dtype)
                got = str(out.dtype).replace("torch.", "")
                if got != want:
                    raise ValueError(f"out has dtype {got} but out_dtype is {want}")
            # Positional: the C call parses keywords at a cost comparable to a small read's copy.
            return core.read_into(win, out, out_hw, layout, bands, boundless_read, fill, alg, **norm)
        if out_dtype is None:
            dtype = "float32" if normalised else self._common_dtype(bands).name
        else:
            dtype = _np_dtype_name(out_dtype)
        own_pool = pool is None
        if own_pool:
            pool = default_pool()
        wait_ms = timeout_ms(timeout)
        try:
            return core.read_tile(win, pool, dtype, bands, boundless_read, fill,
                                  timeout_ms=wait_ms, out_hw=out_hw, resampling=alg, **norm)
        except RasterMemoryError as e:
            if e.message.startswith(self.name):
                raise
            hint = (" (the default pool: RASTERLOADER_POOL_BYTES or 256 MiB; pass pool= a "
                    "BufferPool with room for it, or out= an array)") if own_pool else ""
            raise RasterMemoryError(f"{self.name}: window {box}: {e.message}{hint}",
                                    e.status) from None

fence(Dataset)


def _apply(t, x, y):
    """t * (x, y) without affine's deprecated '*' (affine 3 prefers '@', 2.x lacks it)."""
    a, b, c, d, e, f = t[:6]
    return (a * x + b * y + c, d * x + e * y + f)


def core_of(ds):
    """The C dataset (rasterloader._core.Dataset) under ``ds``, for the batch
    calls of other modules (the C call reports a closed one itself)."""
    return ds._core


def live_core(ds):
    """core_of(ds), or ClosedError naming the file when ``ds`` is closed."""
    return ds._live()


def open(path, mode="r", *, reader=None):
    """Open a raster for reading, like ``rasterio.open(path)``."""
    if mode != "r":
        raise ValueError(f"rasterloader only reads (mode 'r'), not mode {mode!r}")
    return Dataset(path, reader=reader)
