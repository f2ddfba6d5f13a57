"""The TorchGeo way (the oracle for rasterloader.Mosaic), with rasterio only.

What torchgeo.datasets.RasterDataset does for one query with separate band
files (geo.py, __getitem__ / _merge_files / _load_warp_file): for each band,
open that band's file of every scene, wrap a file whose CRS differs from the
dataset's in ``WarpedVRT(src, crs=dataset_crs)`` (a file in the same CRS at
another resolution is not warped), then
``rasterio.merge.merge(files, bounds, res, indexes=None, resampling=...)``;
the bands are stacked (torch.cat of the [1, H, W] results).  The scenes'
order is the mosaic's (TorchGeo's is its index order); merge skips a file
the bounds do not touch, so passing every scene equals TorchGeo's index pick.
"""

import numpy as np
import rasterio
import rasterio.merge
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT


class TorchGeoWay:
    """Opened once (TorchGeo keeps its warped files in an LRU cache)."""

    def __init__(self, scenes, crs=None, res=None, resampling=Resampling.nearest, nodata=None):
        self.files = []                        # [band][scene]
        first = rasterio.open(scenes[0][0])
        self.crs = first.crs if crs is None else rasterio.crs.CRS.from_user_input(crs)
        self.res = first.res if res is None else (res, res) if np.isscalar(res) else tuple(res)
        first.close()
        self.resampling, self.nodata = resampling, nodata
        for b in range(len(scenes[0])):
            row = []
            for scene in scenes:
                src = rasterio.open(scene[b])
                if src.crs != self.crs:
                    vrt = WarpedVRT(src, crs=self.crs)
                    src.close()
                    src = vrt
                row.append(src)
            self.files.append(row)

    def read(self, bounds, res=None):
        out = []
        for row in self.files:
            dest, _ = rasterio.merge.merge(row, bounds=bounds, res=res or self.res,
                                           resampling=self.resampling, nodata=self.nodata)
            out.append(dest)
        return np.concatenate(out)

    def close(self):
        for row in self.files:
            for f in row:
                f.close()
