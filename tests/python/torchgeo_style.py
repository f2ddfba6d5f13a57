"""A TorchGeo-style RasterDataset written only against rasterio's API.

It does what torchgeo.datasets.RasterDataset (0.6) does with rasterio, and
nothing rasterloader-specific:
- at construction every file is opened with ``rasterio.open`` and wrapped in
  ``WarpedVRT(src, crs=dataset_crs)`` -- even a file already in that CRS -- to
  index its bounds in the dataset's CRS (the first file sets CRS and res);
- a sample is a bounding box in that CRS: the files it touches are opened
  (kept in a per-process LRU cache, as TorchGeo's ``_cached_load_warp_file``),
  a file whose CRS or resolution differs from the dataset's is wrapped in a
  WarpedVRT (and its source closed, as TorchGeo does), and
  ``rasterio.merge.merge(files, bounds=box, res=res, indexes=bands)`` makes
  the sample, returned as a torch tensor;
- RandomBoxSampler draws TorchGeo's random boxes: a file chosen by area, a box
  of size x size pixels at a whole-pixel offset inside its bounds.

The two rasterio callables are parameters (``open=rasterio.open``,
``warped_vrt=rasterio.vrt.WarpedVRT``), so the same code runs with
rasterloader's (``rasterloader.open``, ``rasterloader.WarpedVRT``) swapped in.
"""

import functools
import random

import numpy as np
import rasterio
import rasterio.merge
import torch
from rasterio.vrt import WarpedVRT
from torch.utils.data import Dataset, Sampler


class GeoRasterDataset(Dataset):
    def __init__(self, paths, crs=None, res=None, bands=None, open=rasterio.open,
                 warped_vrt=WarpedVRT, cache_size=128):
        self.paths = list(paths)
        self.bands = bands
        self._open, self._warped_vrt = open, warped_vrt
        self.index = []                     # (minx, miny, maxx, maxy, path)
        for path in self.paths:
            with self._open(path) as src:
                if crs is None:
                    crs = src.crs
                if res is None:
                    res = src.res[0]
                with self._warped_vrt(src, crs=crs) as vrt:
                    minx, miny, maxx, maxy = vrt.bounds
            self.index.append((minx, miny, maxx, maxy, path))
        self.crs, self.res = crs, res
        self._load = functools.lru_cache(maxsize=cache_size)(self._load_warp_file)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_load"] = None               # open files stay in their process
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._load = functools.lru_cache(maxsize=128)(self._load_warp_file)

    @property
    def bounds(self):
        xs0, ys0, xs1, ys1, _ = zip(*self.index)
        return min(xs0), min(ys0), max(xs1), max(ys1)

    def intersecting(self, box):
        minx, miny, maxx, maxy = box
        return [p for (x0, y0, x1, y1, p) in self.index
                if x0 < maxx and x1 > minx and y0 < maxy and y1 > miny]

    def _load_warp_file(self, path):
        src = self._open(path)
        if src.crs != self.crs or src.res != (self.res, self.res):
            vrt = self._warped_vrt(src, crs=self.crs)
            src.close()
            return vrt
        return src

    def __getitem__(self, box):
        paths = self.intersecting(box)
        if not paths:
            raise IndexError(f"box {box} is outside the dataset ({self.bounds})")
        files = [self._load(p) for p in paths]
        dest, _ = rasterio.merge.merge(files, bounds=box, res=self.res, indexes=self.bands)
        if dest.dtype == np.uint16:        # torch has no uint16 arithmetic: TorchGeo widens
            dest = dest.astype(np.int32)
        return {"image": torch.from_numpy(dest), "bbox": box, "files": tuple(paths)}

    def __len__(self):
        return len(self.index)


class RandomBoxSampler(Sampler):
    """TorchGeo's RandomGeoSampler: ``length`` boxes of ``size`` x ``size`` pixels,
    each inside one file's bounds (chosen by area) at a whole-pixel offset."""

    def __init__(self, dataset, size, length, seed=0):
        self.size, self.length, self.seed = size, length, seed
        self.res, self.index = dataset.res, [e[:4] for e in dataset.index]
        self.areas = [(x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in self.index]

    def __iter__(self):
        rng = random.Random(self.seed)
        span = self.size * self.res
        for _ in range(self.length):
            x0, y0, x1, y1 = rng.choices(self.index, weights=self.areas)[0]
            cols = int((x1 - x0 - span) // self.res)
            rows = int((y1 - y0 - span) // self.res)
            minx = x0 + (rng.randrange(cols) if cols > 0 else 0) * self.res
            miny = y0 + (rng.randrange(rows) if rows > 0 else 0) * self.res
            yield (minx, miny, minx + span, miny + span)

    def __len__(self):
        return self.length


def stack_samples(samples):
    return {"image": torch.stack([s["image"] for s in samples]),
            "bbox": [s["bbox"] for s in samples], "files": [s["files"] for s in samples]}
