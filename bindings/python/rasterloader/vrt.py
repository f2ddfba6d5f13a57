"""rasterloader.vrt.WarpedVRT: rasterio's WarpedVRT over rasterloader's read path.

    with rasterloader.open("utm31.tif") as src, WarpedVRT(src, crs="EPSG:4326") as vrt:
        chw = vrt.read(window=Window(0, 0, 256, 256))      # = rasterio's WarpedVRT read

The warp is GDAL's (a VRTWarpedDataset built in C by raster_open_warped() with
the options rasterio 1.4 sets); this class only translates rasterio's
arguments.  A WarpedVRT *is* a :class:`rasterloader.Dataset`: read, read_masks,
dataset_mask, read_hwc (pooled DLPack tiles), out=, out_dtype, masked and
resampled reads all work, and a BatchLoader sample may name the WarpedVRT
object as its image.  As in rasterio, reads cannot be boundless, and closing
the source after making the VRT is fine (the VRT keeps what it needs).
"""

import numbers

from . import _compat, _core
from ._args import warp_resampling
from ._compat import Resampling
from ._dataset import Dataset, live_core

__all__ = ["WarpedVRT"]

_DEFAULT = object()     # rasterio's DEFAULT_NODATA_FLAG: "the source's value"


def _crs_text(crs):
    """A CRS as the text GDAL is given: rasterio's CRS.to_wkt() when rasterio is
    importable (the exact WKT rasterio's WarpedVRT passes), else the user's
    string (anything OSRSetFromUserInput takes) or 'EPSG:n'."""
    if crs is None:
        return None
    if _compat.HAVE_RASTERIO:
        from rasterio.crs import CRS
        return CRS.from_user_input(crs).to_wkt()
    if hasattr(crs, "to_wkt"):
        return crs.to_wkt()
    if isinstance(crs, numbers.Integral):
        return f"EPSG:{int(crs)}"
    return str(crs)


def _user_crs(crs):
    if crs is None:
        return None
    if _compat.HAVE_RASTERIO:
        from rasterio.crs import CRS
        return CRS.from_user_input(crs)
    return crs


def _gdal_gt(t):
    return None if t is None else tuple(float(v) for v in t.to_gdal())


def _nodata_arg(v):
    if v is _DEFAULT:
        return 0, 0.0
    if v is None:
        return 1, 0.0
    return 2, float(v)


class WarpedVRT(Dataset):
    """A virtual warped dataset, like ``rasterio.vrt.WarpedVRT`` (same arguments,
    same defaults, same properties); ``src_dataset`` is a rasterloader Dataset
    (or another WarpedVRT)."""

    def __init__(self, src_dataset, src_crs=None, crs=None, resampling=Resampling.nearest,
                 tolerance=0.125, src_nodata=_DEFAULT, nodata=_DEFAULT, width=None, height=None,
                 src_transform=None, transform=None, init_dest_nodata=True, src_alpha=0,
                 dst_alpha=0, add_alpha=False, warp_mem_limit=0, dtype=None, **warp_extras):
        if not isinstance(src_dataset, Dataset):
            raise TypeError(f"src_dataset must be a rasterloader Dataset (rasterloader.open(...)), "
                            f"not {type(src_dataset).__name__}")
        resampling = warp_resampling(resampling)
        self.src_dataset = src_dataset
        self.resampling = resampling
        self.tolerance = tolerance
        self.working_dtype = dtype
        self.dst_width, self.dst_height = width, height
        self.dst_transform = transform
        sn_mode, sn = _nodata_arg(src_nodata)
        dn_mode, dn = _nodata_arg(nodata)
        extras = [f"{k}={v}" for k, v in warp_extras.items()]
        try:
            core = _core.open_warped(
                live_core(src_dataset), crs=_crs_text(crs), src_crs=_crs_text(src_crs),
                resampling=int(resampling), tolerance=float(tolerance),
                transform=_gdal_gt(transform), src_transform=_gdal_gt(src_transform),
                width=int(width or 0), height=int(height or 0), src_nodata_mode=sn_mode,
                src_nodata=sn, nodata_mode=dn_mode, nodata=dn, add_alpha=bool(add_alpha),
                src_alpha=int(src_alpha or 0), dst_alpha=int(dst_alpha or 0),
                init_dest_nodata=init_dest_nodata is True, warp_mem_limit=int(warp_mem_limit),
                working_dtype=-1 if dtype is None else _core.DTYPES.index(_dtype_name(dtype)),
                warp_extras=extras)
        except ValueError as e:
            if "already has an alpha band" in str(e) and _compat.HAVE_RASTERIO:
                from rasterio.errors import WarpOptionsError
                raise WarpOptionsError(str(e)) from None
            raise
        self._init_from_core(f"WarpedVRT({src_dataset.name})", core)
        info = _core.warp_info(core)
        # rasterio keeps the values the caller gave (5 stays an int).
        self.src_nodata = src_dataset.nodata if src_nodata is _DEFAULT else src_nodata
        self.dst_nodata = self.src_nodata if nodata is _DEFAULT else nodata
        if add_alpha:
            self.dst_nodata = None
        self.src_crs = src_dataset.crs if src_crs is None else _user_crs(src_crs)
        self.dst_crs = _user_crs(crs) if crs is not None else self.src_crs
        self.src_transform = src_transform if src_transform else src_dataset.transform
        self.warp_extras = dict(warp_extras)
        if info["init_dest"] is not None:
            self.warp_extras["init_dest"] = info["init_dest"]
        nodatavals = [self.dst_nodata] * self.count
        if dst_alpha and len(nodatavals) == 3:       # rasterio 1.4's rule, kept as is
            nodatavals[dst_alpha - 1] = None
        self._nodatavals = tuple(nodatavals)
        self._options = dict(src_crs=src_crs, crs=crs, resampling=resampling, tolerance=tolerance,
                             width=width, height=height,
                             src_transform=src_transform, transform=transform,
                             init_dest_nodata=init_dest_nodata, src_alpha=src_alpha,
                             dst_alpha=dst_alpha, add_alpha=add_alpha,
                             warp_mem_limit=warp_mem_limit, dtype=dtype, **warp_extras)
        if src_nodata is not _DEFAULT:       # the sentinel does not survive pickling
            self._options["src_nodata"] = src_nodata
        if nodata is not _DEFAULT:
            self._options["nodata"] = nodata

    def __repr__(self):
        state = "closed" if self.closed else "open"
        return f"<{state} WarpedVRT name='{self.name}' mode='r'>"

    def __reduce__(self):
        """Pickles as (source path, arguments): the copy re-opens the source and
        rebuilds the warp (spawn/forkserver DataLoader workers)."""
        src = self.src_dataset
        return (_rebuild, (src if isinstance(src, WarpedVRT) else src.name, self._options))

    @property
    def crs(self):
        return self.dst_crs

    @property
    def nodatavals(self):
        return self._nodatavals

    @property
    def nodata(self):
        return self._nodatavals[0] if self._nodatavals else None

    def read(self, indexes=None, out=None, window=None, masked=False, out_shape=None,
             resampling=Resampling.nearest, fill_value=None, out_dtype=None, **kwargs):
        """rasterio's WarpedVRT.read: Dataset.read without boundless."""
        if kwargs.get("boundless", False):
            raise ValueError("WarpedVRT does not permit boundless reads")
        return super().read(indexes=indexes, out=out, window=window, masked=masked,
                            out_shape=out_shape, resampling=resampling, fill_value=fill_value,
                            out_dtype=out_dtype)

    def read_masks(self, indexes=None, out=None, out_shape=None, window=None,
                   resampling=Resampling.nearest, **kwargs):
        """rasterio's WarpedVRT.read_masks: Dataset.read_masks without boundless."""
        if kwargs.get("boundless", False):
            raise ValueError("WarpedVRT does not permit boundless reads")
        return super().read_masks(indexes=indexes, out=out, window=window, out_shape=out_shape,
                                  resampling=resampling)


def _dtype_name(dtype):
    import numpy as np
    return np.dtype(dtype).name


def _rebuild(src, options):
    """Unpickle: ``src`` is the source's path (re-opened) or a WarpedVRT."""
    if isinstance(src, str):
        from ._dataset import open as _open
        src = _open(src)
    return WarpedVRT(src, **options)
