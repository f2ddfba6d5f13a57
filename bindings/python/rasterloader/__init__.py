"""rasterloader: GeoTIFF windows straight into caller or pooled buffers.

    import rasterloader
    with rasterloader.open("scene.tif") as ds:      # reads like rasterio
        chw = ds.read(window=((0, 256), (0, 256)))   # same arrays as rasterio
        tile = ds.read_hwc(window=((0, 256), (0, 256)), mean=..., std=...)
        x = torch.from_dlpack(tile)                  # zero-copy, pooled memory

    loader = rasterloader.BatchLoader(samples, batch_size=16, mean=..., std=...)
    for batch in loader:                             # [B,H,W,C] + [B,H,W] per batch
        x, y = batch.torch()                         # zero-copy, parallel reads

rasterloader.torch has the PyTorch Datasets and samplers (DataLoader workers, DDP).

See rasterloader.errors for the exceptions and README for the copy budget.
"""

# Before _core: it binds to the GDAL (and libtiff, libzstd, libdeflate, libcurl)
# that rasterio loaded, which this makes global (_gdal_runtime.py).
from . import _gdal_runtime
_GDAL = _gdal_runtime.load()
__gdal_version__ = _GDAL["gdal_version"]   # the GDAL rasterio and rasterloader share

from . import errors  # statuses come from _core; _core finds these classes at its first raise
from ._core import BufferPool, Tile, get_threads, set_threads, set_tile_cache_budget, tile_cache_stats
from ._core import __version__ as _c_version
from . import _tile_cache  # noqa: F401  (multiprocessing children leave the shared arena)
from ._compat import CRS, Resampling, Window
from ._dataset import Dataset, open
from ._pool import DEFAULT_POOL_BYTES, default_pool, default_pool_budget
from ._loader import Batch, BatchLoader, WindowReader
from ._samplers import GridWindows, RandomWindows, TileWindows
from .vrt import WarpedVRT
from .mosaic import Mosaic
from ._samplers import GridGeoWindows, RandomGeoWindows

__version__ = _c_version

__all__ = [
    "open", "Dataset", "BufferPool", "Tile", "Window", "Resampling", "CRS", "errors",
    "default_pool", "default_pool_budget", "DEFAULT_POOL_BYTES", "__version__", "__gdal_version__",
    "BatchLoader", "WindowReader", "Batch", "RandomWindows", "GridWindows", "TileWindows",
    "set_threads", "get_threads", "set_tile_cache_budget", "tile_cache_stats", "WarpedVRT", "Mosaic",
    "RandomGeoWindows", "GridGeoWindows",
]
