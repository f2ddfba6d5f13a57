"""rasterio 1.4's DatasetReader API beyond reads, as a mixin of rasterloader.Dataset.

Blocks, sample(), tags, color tables, overviews, band descriptions, GCPs,
RPCs, files, checksums, statistics, lnglat() and the small properties
rasterio's own helpers (merge, mask, sample, windows, plot, features) touch:
same names, arguments, return types and errors as rasterio 1.4.  What GDAL
knows comes from the C library (lib/api/metadata.c through _core); this module
only turns it into rasterio's types.

When rasterio is importable, rasterloader.Dataset is also a subclass of
``rasterio.io.DatasetReader`` (``reader_bases()``), because rasterio's helpers
choose their code path with ``isinstance(source, DatasetReader)``
(``rasterio.plot.show`` and ``show_hist``).  rasterloader implements every
public name rasterio's class has that a reader uses; ``fence()`` turns the
others (``start``, ``stop``, ``write_transform``) into a clear
NotImplementedError instead of rasterio's code running on a dataset that
rasterio never opened.
"""

import collections
import math
import numbers
import warnings

import numpy as np

from . import _compat, _core, _windows
from ._compat import Window
from .errors import (BandIndexError, RasterBlockError, RasterloaderDeprecationWarning,
                     StatisticsError, InvalidArgumentError)

try:  # rasterio's own value types, when it is there
    import rasterio.control as _rio_control
    import rasterio.enums as _rio_enums
    import rasterio.errors as _rio_errors
    import rasterio.io as _rio_io
    import rasterio.rpc as _rio_rpc
    from rasterio._io import Statistics as _RioStatistics
except ImportError:  # pragma: no cover - exercised by a subprocess test
    _rio_io = None

__all__ = ["DatasetMetaMixin", "reader_bases", "fence", "Statistics", "GroundControlPoint"]

_TEXT_DESCRIPTION, _TEXT_UNITS = 0, 1
_STATS_APPROX, _STATS_COMPUTE, _STATS_CLEAR = 1, 2, 4

if _rio_io is not None:
    Statistics = _RioStatistics
    GroundControlPoint = _rio_control.GroundControlPoint
else:  # pragma: no cover
    Statistics = collections.namedtuple("Statistics", "min max mean std")

    class GroundControlPoint:
        """Stand-in for rasterio.control.GroundControlPoint (same fields)."""

        def __init__(self, row=None, col=None, x=None, y=None, z=None, id=None, info=None):
            self.row, self.col, self.x, self.y, self.z = row, col, x, y, z
            self.id, self.info = id, info

        def asdict(self):
            return dict(row=self.row, col=self.col, x=self.x, y=self.y, z=self.z, id=self.id,
                        info=self.info)

        def __repr__(self):
            return "GroundControlPoint(" + ", ".join(f"{k}={v!r}" for k, v in self.asdict().items()) + ")"


def reader_bases():
    """(rasterio.io.DatasetReader,) when rasterio is importable, else ()."""
    return (_rio_io.DatasetReader,) if _rio_io is not None else ()


def fence(cls):
    """Make every public name of rasterio's DatasetReader that 'cls' does not
    define raise NotImplementedError (rasterio's implementations need a
    dataset rasterio opened).  Returns the names fenced."""
    if _rio_io is None:
        return []
    rio = _rio_io.DatasetReader
    ours = set()
    for k in cls.__mro__:          # rasterloader's classes come before rasterio's
        if k is rio:
            break
        ours.update(vars(k))
    fenced = []
    for name in dir(rio):
        if name.startswith("_") or name in ours:
            continue
        attr = getattr(rio, name)
        setattr(cls, name, _fenced_property(name) if not callable(attr) else _fenced_method(name))
        fenced.append(name)
    cls._rasterio_fenced = tuple(sorted(fenced))    # for tests and the report
    return sorted(fenced)


def _not_implemented(name):
    return NotImplementedError(f"rasterloader.Dataset does not implement rasterio's {name!r} "
                               "(it only reads)")


def _fenced_method(name):
    def method(self, *args, **kwargs):
        raise _not_implemented(name)
    method.__name__ = name
    return method


def _fenced_property(name):
    def get(self):
        raise _not_implemented(name)
    return property(get)


def warn_precision():
    """rasterio 1.3 deprecated window()'s unused 'precision' argument."""
    warnings.warn("The precision parameter is unused, deprecated, and will be removed in 2.0.0.",
                  RasterloaderDeprecationWarning, stacklevel=3)


def _split_item(item):
    key, _, value = item.partition("=")
    return key, value


class DatasetMetaMixin:
    """The rest of rasterio 1.4's read-side DatasetReader API (see the module doc)."""

    # rasterio's DatasetBase defines 'name' and 'mode' read-only; these shadow them.
    @property
    def name(self):
        return self.__dict__.get("_name")

    @name.setter
    def name(self, value):
        self.__dict__["_name"] = value

    @property
    def mode(self):
        return "r"

    @mode.setter
    def mode(self, value):
        if value != "r":
            raise ValueError(f"rasterloader only reads (mode 'r'), not mode {value!r}")

    @property
    def options(self):
        """Open options: rasterloader.open() takes none of GDAL's."""
        return {}

    # ------------------------------------------------------------ bands
    def _band_arg(self, bidx, dataset_ok=False):
        """The C band number for rasterio's 'bidx' (0 = the dataset where allowed)."""
        if not isinstance(bidx, numbers.Integral) or isinstance(bidx, bool):
            raise TypeError(f"band index must be an int, not {bidx!r}")
        if dataset_ok and bidx <= 0:
            return 0
        if not 1 <= bidx <= self.count:
            raise BandIndexError(f"No such band index: {bidx}", _core.E_BOUNDS)
        return int(bidx)

    def _rasterio_transform(self, name, *args, transform_method=None, **kwargs):
        """rasterio's TransformMethodsMixin.<name> (z, GCP and RPC transforms use
        this dataset's gcps and rpcs)."""
        if _rio_io is None:
            raise NotImplementedError(f"{name}() with z, precision, transform_method or RPC "
                                      "options needs rasterio")
        import rasterio.transform
        if transform_method is not None:
            kwargs["transform_method"] = transform_method
        return getattr(rasterio.transform.TransformMethodsMixin, name)(self, *args, **kwargs)

    # ------------------------------------------------------------ blocks
    def block_windows(self, bidx=0):
        """Iterator of ((row, col) block index, Window) over a band's blocks, left to
        right and top to bottom (rasterio's block_windows)."""
        shapes = self.block_shapes
        if bidx < 1:
            if len(set(shapes)) > 1:
                raise ValueError("A band index must be provided when band block shapes"
                                 "are inhomogeneous")
            bidx = 1
        h, w = shapes[bidx - 1]
        nrows, ncols = -(-self.height // h), -(-self.width // w)
        for j in range(nrows):
            row = j * h
            height = min(h, self.height - row)
            for i in range(ncols):
                col = i * w
                yield (j, i), Window(col, row, min(w, self.width - col), height)

    def block_window(self, bidx, i, j):
        """The Window of block (i = row, j = column) of band 'bidx'."""
        h, w = self.block_shapes[bidx - 1]
        row, col = i * h, j * w
        height, width = min(h, self.height - row), min(w, self.width - col)
        if height < 0 or width < 0:
            raise ValueError("Number of columns or rows must be non-negative")
        return Window(col, row, width, height)

    def block_size(self, bidx, i, j):
        """Bytes of block (i = row, j = column) of band 'bidx' in the file (TIFF only)."""
        v = _core.metadata_item(self._live(), self._band_arg(bidx), -1,
                                f"BLOCK_SIZE_{j}_{i}", "TIFF")
        if v is None:
            raise RasterBlockError(f"Block i={i}, j={j} size can't be determined", _core.E_BOUNDS)
        return int(v)

    # ------------------------------------------------------------ sample
    def sample(self, xy, indexes=None, masked=False):
        """Values at (x, y) positions, nearest pixel, as rasterio's sample(): an
        iterator of arrays, one value per band in 'indexes'; positions outside
        the raster give the nodata value (masked, with masked=True).  Each
        position is one 1x1 read()."""
        if _rio_io is not None:
            import rasterio.sample
            return rasterio.sample.sample_gen(self, xy, indexes=indexes, masked=masked)
        return _sample_gen(self, xy, indexes, masked)

    # ------------------------------------------------------------ tags
    def tags(self, bidx=0, ns=None):
        """dict of the dataset's (bidx 0) or a band's tags in namespace 'ns'."""
        items = _core.metadata(self._live(), self._band_arg(bidx, True), ns)
        return dict(_split_item(i) for i in items)

    def tag_namespaces(self, bidx=0):
        """The metadata domains of the dataset (bidx 0) or a band."""
        return [d for d in _core.metadata_domains(self._live(), self._band_arg(bidx, True)) if d]

    def get_tag_item(self, ns, dm=None, bidx=0, ovr=None):
        """One tag: key 'ns' of domain 'dm' of the dataset, a band, or (ovr) one of
        the band's overviews; None when absent."""
        band = self._band_arg(bidx, ovr is None)
        if ovr is not None and not 0 <= ovr < len(self.overviews(band)):
            cls = _rio_errors.BandOverviewError if _rio_io is not None else IndexError
            raise cls(f"Failed to retrieve overview {ovr}")
        return _core.metadata_item(self._live(), band, -1 if ovr is None else int(ovr), ns, dm)

    def colormap(self, bidx):
        """{index: (r, g, b, a)} of the band's color table; ValueError without one."""
        entries = _core.band_colormap(self._live(), self._band_arg(bidx))
        if entries is None:
            raise ValueError("NULL color table")
        return dict(enumerate(entries))

    def overviews(self, bidx):
        """Decimation factors of the band's overviews."""
        return _core.band_overviews(self._live(), self._band_arg(bidx))

    def _band_texts(self, which):
        core = self._live()
        return tuple(_core.band_text(core, b, which) or None for b in self.indexes)

    @property
    def descriptions(self):
        return self._band_texts(_TEXT_DESCRIPTION)

    @property
    def units(self):
        return self._band_texts(_TEXT_UNITS)

    @property
    def scales(self):
        core = self._live()
        return tuple(_core.band_scale_offset(core, b)[0] for b in self.indexes)

    @property
    def offsets(self):
        core = self._live()
        return tuple(_core.band_scale_offset(core, b)[1] for b in self.indexes)

    def get_gcps(self):
        """([GroundControlPoint, ...], CRS or None) of the dataset."""
        points, wkt = _core.gcps(self._live())
        gcps = [GroundControlPoint(row=row, col=col, x=x, y=y, z=z, id=id_, info=info)
                for id_, info, col, row, x, y, z in points]
        return gcps, _compat.make_crs(wkt) if wkt else None

    @property
    def gcps(self):
        return self.get_gcps()

    @property
    def rpcs(self):
        """rasterio.rpc.RPC of the dataset (the RPC domain's tags), or None; a
        plain dict of them without rasterio."""
        md = self.tags(ns="RPC")
        if not md:
            return None
        return _rio_rpc.RPC.from_gdal(md) if _rio_io is not None else md

    @property
    def files(self):
        """Every file GDAL reads for the dataset (the image, a .msk, an .ovr, ...)."""
        return _core.file_list(self._live())

    @property
    def subdatasets(self):
        return [v for k, v in self.tags(ns="SUBDATASETS").items() if k.endswith("_NAME")]

    # ------------------------------------------------------------ GDAL-computed
    def checksum(self, bidx, window=None):
        """GDAL's checksum of the band (or of a window inside the raster)."""
        band = self._band_arg(bidx)
        if window is None:
            win = (0, 0, self.width, self.height)
        else:
            w = _windows.to_window(window, self.height, self.width)
            win = tuple(int(v) for v in (w.col_off, w.row_off, w.width, w.height))
        return _core.band_checksum(self._live(), band, win)

    def _statistics(self, band, flags):
        try:
            return Statistics(*_core.band_statistics(self._live(), band, flags))
        except InvalidArgumentError as e:
            if "no valid pixels" not in str(e):
                raise
            raise StatisticsError(f"{e} (No valid pixels found in sampling.)",
                                  _core.E_INVALID_ARG) from e

    def statistics(self, bidx, approx=False, clear_cache=False):
        """min, max, mean and std of a band, GDAL's stored statistics when it has
        them (deprecated in rasterio 1.4 for stats(), and warns as it does).
        GDAL keeps computed statistics in a .aux.xml file beside the image."""
        warnings.warn("statistics() will be removed in 2.0.0. Please switch to stats().",
                      RasterloaderDeprecationWarning, stacklevel=2)
        flags = (_STATS_APPROX if approx else 0) | (_STATS_CLEAR if clear_cache else 0)
        return self._statistics(self._band_arg(bidx), flags)

    def stats(self, *, indexes=None, approx=False):
        """[Statistics] of the bands in 'indexes' (default all): as rasterio's
        stats(), GDAL's stored statistics when it has them (rounded to the 14
        digits GDAL stores), else computed now."""
        bands = self.indexes if indexes is None else \
            [indexes] if isinstance(indexes, numbers.Integral) else indexes
        flags = _STATS_APPROX if approx else 0
        return [self._statistics(self._band_arg(b), flags) for b in bands]

    def lnglat(self):
        """(longitude, latitude) in WGS 84 of the center of the bounds."""
        if self.crs is None:
            cls = _rio_errors.CRSError if _rio_io is not None else ValueError
            raise cls(f"{self.name}: the dataset has no CRS, so no longitude/latitude")
        w, s, e, n = self.bounds
        return _core.to_lnglat(self._live(), (w + e) / 2.0, (s + n) / 2.0)

    # ------------------------------------------------------------ small properties
    def read_crs(self):
        """The dataset's CRS, as stored."""
        return _compat.make_crs(self._crs_wkt)

    def read_transform(self):
        """The GDAL geotransform as a list (x0, dx, rx, y0, ry, dy)."""
        return list(self.transform.to_gdal())

    def get_transform(self):
        return self.read_transform()

    def get_nodatavals(self):
        return self.nodatavals

    @property
    def interleaving(self):
        return self.interleave

    @property
    def photometric(self):
        """The TIFF photometric interpretation GDAL reports (SOURCE_COLOR_SPACE), or None."""
        v = self.tags(ns="IMAGE_STRUCTURE").get("SOURCE_COLOR_SPACE")
        if not v:
            return None
        if _rio_io is not None:
            try:
                return _rio_enums.PhotometricInterp[v.lower()]
            except KeyError:
                return v
        return v

    @property
    def is_tiled(self):
        warnings.warn("is_tiled will be removed in a future version. Please consider copying "
                      "the body of this function into your program or module.",
                      PendingDeprecationWarning, stacklevel=2)
        return bool(self.block_shapes) and self.block_shapes[0][1] != self.width


def _sample_gen(dataset, xy, indexes, masked):
    """rasterio.sample.sample_gen without rasterio (same rules)."""
    if indexes is None:
        indexes = dataset.indexes
    elif isinstance(indexes, int):
        indexes = [indexes]
    nodata = np.full(len(indexes), (dataset.nodata or 0), dtype=dataset.dtypes[0])
    if masked:
        flags = [dataset._bands[i - 1]["mask_flags"] for i in indexes]   # the caller's self
        is_masked = any(f & (2 | 4 | 8) for f in flags)   # GDAL's per_dataset, alpha, nodata
        nodata = np.ma.array(nodata, mask=[not (is_masked and f == 1) for f in flags])
    a, b, c, d, e, f = (~dataset.transform)[:6]
    for x, y in xy:
        row, col = math.floor(d * x + e * y + f), math.floor(a * x + b * y + c)
        if 0 <= row < dataset.height and 0 <= col < dataset.width:
            yield dataset.read(indexes, window=Window(col, row, 1, 1), masked=masked)[:, 0, 0]
        else:
            yield nodata
