"""rasterloader.Mosaic: scenes of one file per band, in several CRSs and
resolutions, read by map bounds onto one grid (issue 16).

    scenes = [["T31_B02.tif", "T31_B03.tif", "T31_B04.tif", "T31_B8A.tif", "T31_B11.tif"],
              ["T32_B02.tif", "T32_B03.tif", "T32_B04.tif", "T32_B8A.tif", "T32_B11.tif"]]
    m = rasterloader.Mosaic(scenes)                  # grid: the first scene's CRS, 10 m
    chw = m.read(bounds=(left, bottom, right, top))  # = rasterio.merge.merge per band, stacked

The result equals "the TorchGeo way" (each band file in another CRS wrapped in
``rasterio.vrt.WarpedVRT(src, crs=mosaic_crs)``, then ``rasterio.merge.merge(
files, bounds=, res=, resampling=)`` per band, stacked) bit for bit with
nearest resampling: merge's default method "first" (the first scene wins; a
later scene fills only the pixels still nodata), merge's window arithmetic and
rounding (win_align), merge's nodata (the first source's, else 0).

What runs where.  This module computes merge's windows (which source window,
which destination rectangle) and picks the scenes a query touches; the pixels
are read and composed in C (lib/api/mosaic.c, raster_mosaic_read_source(), all the
sources of a query in one _core.mosaic_read() call with the GIL released):
- every source writes straight into its channel slice of the destination (a
  strided view of the CHW array or the pooled HWC tile): no per-band
  temporaries, no stacking copy;
- a file on the mosaic's grid (same CRS and resolution, pixel-aligned) is a
  plain window read (the native reader's fast path); another resolution is
  GDAL's resampled read over merge's float window; another CRS reads a
  ``rasterloader.WarpedVRT`` made once at construction (GDAL's warper);
- a source whose rectangle overlaps an earlier source's is composed "first":
  read into per-thread scratch and placed where the destination is still
  nodata (those pixels are written twice; see lib/api/mosaic.c for why);
- pixels no source covers get the nodata value (only those: the rectangles
  a source writes directly are not pre-filled).
Datasets (and warped datasets) stay open across queries.

The spatial index is, for now, a linear scan over the footprints (numpy
arrays of the scenes' bounds in the mosaic's CRS): exact, and cheap for the
tens to hundreds of scenes of one training area; an STR tree in C is left
for when mosaics of thousands of scenes need it.
"""

import math
import numbers
import os

import numpy as np

from . import _compat, _core
from ._compat import Resampling
from ._dataset import Dataset, live_core, open as _open
from ._args import norm_kwargs, resampling_code, timeout_ms
from ._windows import bounds_window
from .vrt import WarpedVRT, _crs_text

__all__ = ["Mosaic"]

try:                                   # rasterio's Affine when present (same type as transforms)
    from affine import Affine
except ImportError:                    # pragma: no cover
    Affine = None


def _win_align(w):
    """rasterio.merge's win_align on (col_off, row_off, width, height):
    offsets floor(x + 0.1), lengths floor(x + 0.5); returns (row, col, h, w)."""
    return (math.floor(w[1] + 0.1), math.floor(w[0] + 0.1),
            math.floor(w[3] + 0.5), math.floor(w[2] + 0.5))


def _same_crs(a, b):
    if a is None or b is None:
        return a is b
    return a == b


class Mosaic:
    """Scenes read by map bounds onto one grid (see the module docstring).

    - ``sources``: a list of scenes; a scene is a path or URL (all its bands),
      an open rasterloader Dataset, or a list of those (one file per band,
      stacked in that order).  Every scene must give the same number of bands.
    - ``crs``/``res``: the grid (default: the first scene's first file's CRS and
      resolution; ``res`` a number or (x, y)).  A CRS GDAL does not know is a
      ValueError (rasterio's CRSError when rasterio is installed).
    - ``resampling``: for files at another resolution or CRS (name or
      Resampling); nearest is bit-identical to the TorchGeo way.
    - ``nodata``: the fill and the "still empty" value (default: the first
      file's nodata, else 0, as merge).
    - ``bands``: 1-based indexes into each scene's stacked bands (default all).
    - ``threads``: threads of one read (bands run in parallel, a band's
      scenes in order); default rasterloader.get_threads().
    """

    def __init__(self, sources, *, crs=None, res=None, resampling="nearest", nodata=None,
                 bands=None, threads=None):
        if isinstance(sources, (str, os.PathLike, Dataset)) or not len(sources):
            raise ValueError("Mosaic needs a list of scenes (each a path or a list of band paths)")
        self.resampling = Resampling(resampling_code(resampling, names=True))
        self.threads = 0 if threads is None else int(threads)   # 0: rasterloader.get_threads()
        self._args = (sources, dict(crs=crs, res=res, resampling=resampling, nodata=nodata,
                                    bands=bands, threads=threads))
        self._owned = []
        scenes = []
        try:
            for i, scene in enumerate(sources):
                files = [scene] if isinstance(scene, (str, os.PathLike, Dataset)) else list(scene)
                if not files:
                    raise ValueError(f"scene {i} has no files")
                chans = []
                for f in files:
                    ds = f if isinstance(f, Dataset) else self._open(f)
                    chans.extend((ds, b) for b in range(1, ds.count + 1))
                if bands is not None:
                    bad = [b for b in bands if not isinstance(b, numbers.Integral)
                           or not 1 <= b <= len(chans)]
                    if bad:
                        raise ValueError(f"bands {list(bands)}: {bad} are not 1-based band numbers "
                                         f"of scene {i} ({[str(f) for f in files]}), which has "
                                         f"{len(chans)} bands")
                    chans = [chans[b - 1] for b in bands]
                scenes.append((files, chans))
            n = len(scenes[0][1])
            for i, (files, chans) in enumerate(scenes):
                if len(chans) != n:
                    raise ValueError(f"scene {i} ({[str(f) for f in files]}) has {len(chans)} bands "
                                     f"but scene 0 ({[str(f) for f in scenes[0][0]]}) has {n}: "
                                     "every scene of a mosaic needs the same bands")
            first = scenes[0][1][0][0]
            self._crs = first.crs if crs is None else self._check_crs(crs)
            if res is None:
                res = first.res
            elif isinstance(res, numbers.Number):
                res = (float(res), float(res))
            self._res = (float(res[0]), float(res[1]))
            if not (self._res[0] > 0 and self._res[1] > 0):
                raise ValueError(f"res must be positive, not {res!r}")
            self._dtype = first.dtypes[0]
            self._nodata = first.nodata if nodata is None else nodata
            if self._nodata is None:
                self._nodata = 0        # merge: "Set nodataval to 0"
            # Each channel of each scene: the dataset read (warped when its CRS
            # differs, as TorchGeo's _load_warp_file), its band, its nodata.
            self._scenes = []
            self._warped = {}
            for files, chans in scenes:
                row = []
                for ds, b in chans:
                    src = ds if _same_crs(ds.crs, self._crs) else self._warp(ds)
                    row.append((src, b, src.nodatavals[b - 1], tuple(~src.transform)[:6]))
                self._scenes.append(row)
        except BaseException:
            self.close()
            raise
        self._names = [[str(f) for f in files] for files, _ in scenes]
        # Footprints in the mosaic's CRS, one per (scene, channel) source.
        self._bounds = np.array([[tuple(src.bounds) for src, *_ in row] for row in self._scenes],
                                dtype=np.float64)          # [scene, channel, 4]

    def __reduce__(self):
        """Pickles as its arguments (spawn/forkserver DataLoader workers): the
        copy opens the files again.  Scenes given as open Datasets pickle as
        those do."""
        return (_rebuild, self._args)

    # ------------------------------------------------------------ set-up
    def _open(self, path):
        ds = _open(path)
        self._owned.append(ds)
        return ds

    def _warp(self, ds):
        vrt = self._warped.get(id(ds))
        if vrt is None:
            vrt = WarpedVRT(ds, crs=self._crs)
            self._warped[id(ds)] = vrt
            self._owned.append(vrt)
        return vrt

    @staticmethod
    def _check_crs(crs):
        if _compat.HAVE_RASTERIO:
            from rasterio.crs import CRS
            return CRS.from_user_input(crs)     # CRSError (a ValueError) names the bad input
        text = _crs_text(crs)
        return _compat.make_crs(text)

    def close(self):
        for ds in reversed(getattr(self, "_owned", [])):
            ds.close()
        self._owned = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ properties
    @property
    def crs(self):
        return self._crs

    @property
    def res(self):
        return self._res

    @property
    def count(self):
        return len(self._scenes[0])

    @property
    def dtypes(self):
        return tuple(self._dtype for _ in range(self.count))

    @property
    def nodata(self):
        return self._nodata

    @property
    def bounds(self):
        b = self._bounds
        return _compat.BoundingBox(float(b[..., 0].min()), float(b[..., 1].min()),
                                   float(b[..., 2].max()), float(b[..., 3].max()))

    @property
    def footprints(self):
        """Each scene's bounds in the mosaic's CRS (the union over its bands)."""
        b = self._bounds
        return [_compat.BoundingBox(float(s[:, 0].min()), float(s[:, 1].min()),
                                    float(s[:, 2].max()), float(s[:, 3].max())) for s in b]

    def __repr__(self):
        return (f"<Mosaic {len(self._scenes)} scenes x {self.count} bands, crs={self._crs}, "
                f"res={self._res}>")

    # ------------------------------------------------------------ geometry
    def _grid(self, bounds, out_shape):
        try:
            left, bottom, right, top = (float(v) for v in bounds)
        except (TypeError, ValueError):
            raise TypeError(f"bounds must be (left, bottom, right, top), not {bounds!r}") from None
        if not (left < right and bottom < top):
            raise ValueError(f"bounds {bounds!r}: need left < right and bottom < top")
        res = self._res
        if out_shape is not None:
            h, w = (int(v) for v in tuple(out_shape)[-2:])
            if h < 1 or w < 1:
                raise ValueError(f"out_shape {out_shape!r} must be >= 1 each")
            res = ((right - left) / w, (top - bottom) / h)
        width = int(round((right - left) / res[0]))
        height = int(round((top - bottom) / res[1]))
        transform = Affine(res[0], 0.0, left, 0.0, -res[1], top)   # = merge's translation * scale
        # merge's chunk bounds: the output window's bounds (may differ from
        # 'bounds' when they are not whole pixels of res).
        chunk = (left, top - res[1] * height, left + res[0] * width, top)
        return height, width, transform, chunk

    def _touching(self, chunk):
        """Scenes whose footprint overlaps the chunk (merge skips the others:
        its intersection is empty when it only touches)."""
        w, s, e, n = chunk
        b = self._bounds
        hit = (np.maximum(b[..., 0], w) < np.minimum(b[..., 2], e)) & \
              (np.maximum(b[..., 1], s) < np.minimum(b[..., 3], n))
        return np.nonzero(hit.any(axis=1))[0]

    def _items(self, bounds, out_shape, dest_channel, lane0=0):
        """The source reads of one query, in merge's order, and its planes (each
        output channel's 2-D destination; C fills what no source writes)."""
        height, width, transform, chunk = self._grid(bounds, out_shape)
        inv = tuple(~transform)[:6]
        items, planes = [], []
        nodata = float(self._nodata)
        alg = int(self.resampling)
        touching = self._touching(chunk)
        for c in range(self.count):
            plane = dest_channel(c, height, width)
            rects = []
            for s in touching:
                src, band, src_nd, src_inv = self._scenes[s][c]
                sb = self._bounds[s, c]
                iw, ie = max(sb[0], chunk[0]), min(sb[2], chunk[2])
                i_s, i_n = max(sb[1], chunk[1]), min(sb[3], chunk[3])
                if iw >= ie or i_s >= i_n:
                    continue
                sw = bounds_window(src_inv, iw, i_s, ie, i_n)
                r0, c0, h, w = _win_align(bounds_window(inv, iw, i_s, ie, i_n))
                # numpy slicing clips to the destination, as merge's dest[:, rows, cols]
                r1, c1 = min(max(r0 + h, 0), height), min(max(c0 + w, 0), width)
                r0, c0 = min(max(r0, 0), height), min(max(c0, 0), width)
                if r1 <= r0 or c1 <= c0:
                    continue
                if (r1 - r0, c1 - c0) != (h, w):
                    # merge would read h x w and fail to broadcast into a clipped
                    # region; never seen for bounds inside the mosaic's grid.
                    raise ValueError(f"{src.name}: merge's rounded window {h}x{w} at ({r0}, {c0}) "
                                     f"leaves the {height}x{width} output")
                overlaps = any(r0 < b1 and b0 < r1 and c0 < d1 and d0 < c1
                               for b0, d0, b1, d1 in rects)
                same_nd = src_nd is None or src_nd == self._nodata or (
                    src_nd != src_nd and self._nodata != self._nodata)
                direct = not overlaps and same_nd
                rects.append((r0, c0, r1, c1))
                items.append((live_core(src), band, tuple(float(v) for v in sw),
                              plane[r0:r1, c0:c1], alg, 0 if direct else 1, nodata,
                              None if src_nd is None else float(src_nd), lane0 + c))
            planes.append(plane)
        return height, width, items, planes

    def _run(self, items, planes, norm=None, validity=None):
        """One mosaic_read: the fill, the sources, ``validity`` ([(dst, first
        lane, lane count)]) and the normalisation ``norm`` (norm_kwargs'), all
        in C (raster_mosaic_read)."""
        _core.mosaic_read(items, self.threads, lanes=lane_specs(planes, self._nodata, norm),
                          validity=validity or [])

    def _read_chw(self, bounds, out_shape, dtype, with_validity=False):
        """(count, height, width) of the query in a new array, and its uint8
        validity (255 where any band is not nodata) with ``with_validity``."""
        dest = None

        def channel(c, h, w):
            nonlocal dest
            if dest is None:
                dest = np.empty((self.count, h, w), dtype=dtype)
            return dest[c]

        h, w, items, planes = self._items(bounds, out_shape, channel)
        valid = np.empty((h, w), np.uint8) if with_validity else None
        self._run(items, planes, validity=[(valid, 0, self.count)] if with_validity else None)
        return dest, valid

    # ------------------------------------------------------------ reads
    def read(self, bounds, out_shape=None, out_dtype=None, masked=False):
        """The bounds (left, bottom, right, top) in the mosaic's CRS as a
        (count, height, width) array: rasterio.merge.merge(files, bounds=bounds,
        res=self.res, resampling=self.resampling) per band, stacked.
        ``out_shape`` ((h, w) or (c, h, w)) reads at the resolution that
        gives that size; ``out_dtype`` is merge's dtype; ``masked=True``
        returns a masked array masked where the value is nodata, as merge."""
        dest, _ = self._read_chw(bounds, out_shape, np.dtype(out_dtype or self._dtype))
        if masked:
            return np.ma.masked_equal(dest, self._nodata, copy=False)
        return dest

    def read_hwc(self, bounds, out_shape=None, out_dtype=None, mean=None, std=None, pool=None,
                 timeout=30.0):
        """Like read(), as a pooled (height, width, count) Tile (DLPack,
        zero-copy to numpy and torch): each source is written into its
        channel slice of the tile.  ``mean``/``std`` (a number or one per band;
        out_dtype then defaults to float32) give ``(x - mean) / std`` in
        double, rounded once to out_dtype, as the loaders; applied in place
        by C after the sources (the "still nodata" test of "first" needs the
        raw values), in the same call."""
        norm = {}
        if mean is not None or std is not None:
            norm = norm_kwargs(self.count, mean, std, where=repr(self))
            out_dtype = out_dtype or "float32"
        dtype = np.dtype(out_dtype or self._dtype)
        if pool is None:
            from ._pool import default_pool
            pool = default_pool()
        wait_ms = timeout_ms(timeout)
        tile, view = None, None

        def channel(c, h, w):
            nonlocal tile, view
            if tile is None:
                tile = _core.pool_tile(pool, dtype.name, h, w, self.count, wait_ms)
                view = np.from_dlpack(tile)
            return view[:, :, c]

        _, _, items, planes = self._items(bounds, out_shape, channel)
        self._run(items, planes, norm=norm)
        return tile

    def dataset_mask(self, bounds, out_shape=None):
        """uint8 (height, width): 255 where any band of the mosaic holds data
        (not nodata), 0 elsewhere; merge's mask (its masked=True) reduced over
        the bands as rasterio's dataset_mask does.  Reads the bands (no mask
        band is kept per file)."""
        return self._read_chw(bounds, out_shape, self._dtype, with_validity=True)[1]


# ------------------------------------------------------------ for the loaders
# rasterloader.geo builds one batch from many queries (and label mosaics): these
# give it a query's grid, its source reads and its fills without reaching into
# the class.

def query_grid(mosaic, bounds, out_shape):
    """(height, width, transform, chunk bounds) of a query, as Mosaic.read's."""
    return mosaic._grid(bounds, out_shape)


def query_items(mosaic, bounds, out_shape, dest_channel, lane0=0):
    """(height, width, source reads, planes) of a query, in merge's order; lanes
    (output channels) numbered from lane0.  dest_channel(c, h, w) is the 2-D
    destination of channel c."""
    return mosaic._items(bounds, out_shape, dest_channel, lane0)


def lane_specs(planes, nodata, norm=None):
    """mosaic_read's lanes for a query's planes (channel c's 2-D destination
    at index c): the plane, the nodata C fills it with where no source
    writes, and channel c's normalisation from ``norm`` (norm_kwargs'
    result: mean/std or scale/offset, one value per channel) or None."""
    nodata = float(nodata)
    if not norm:
        return [(p, nodata, None) for p in planes]
    divide = "mean" in norm or "std" in norm
    n = len(planes)
    scale = norm.get("std" if divide else "scale", [1.0] * n)
    offset = norm.get("mean" if divide else "offset", [0.0] * n)
    return [(p, nodata, (divide, float(scale[c]), float(offset[c]))) for c, p in enumerate(planes)]


def _rebuild(sources, kwargs):
    return Mosaic(sources, **kwargs)
