"""Samples by geography over a Mosaic (issue 16): samplers and the batch read.

A geo sample is ``(mosaic, label or None, bounds)``: a :class:`Mosaic`, a
label (a one-band Mosaic, or a raster path read as one on the image mosaic's
grid, nearest) or None (the mask is then the mosaic's validity:
``dataset_mask``), and ``(left, bottom, right, top)`` in the mosaic's CRS.
``BatchLoader``, ``WindowReader``, ``BatchDataset`` and ``WindowDataset``
take such samples as they take pixel windows: a batch is one
``_core.mosaic_read`` call over every source of every sample (a sample's
bands in parallel with the other samples' bands, on the library's threads),
each source written straight into its channel slice of the pooled
``[B,H,W,C]`` buffer (or the caller's tensor), the label into ``[B,H,W]``.

Not fused (yet): mean/std or scale/offset are applied after the read, in
place, one pass per batch in double (the "still nodata" test of "first"
compositing needs the raw values); the validity mask is computed from the
read pixels (NumPy), not read from mask bands.
"""

import math
import random

import numpy as np

from . import _core
from ._normalise import normalise_in_place
from .mosaic import Mosaic, fill_empty, query_grid, query_items

__all__ = ["RandomGeoWindows", "GridGeoWindows", "is_geo_sample"]


def is_geo_sample(sample):
    try:
        return isinstance(sample[0], Mosaic)
    except (TypeError, IndexError, KeyError):
        return False


class _GeoSampler:
    def __init__(self, mosaic, size, label=None):
        if not isinstance(mosaic, Mosaic):
            raise TypeError(f"a geo sampler needs a rasterloader.Mosaic, not {type(mosaic).__name__}")
        h, w = (size, size) if isinstance(size, int) else tuple(int(v) for v in size)
        if h < 1 or w < 1:
            raise ValueError(f"size {size!r} must be >= 1 pixels")
        self.mosaic, self.label, self.size = mosaic, label, (h, w)
        rx, ry = mosaic.res
        self.span = (w * rx, h * ry)
        self.sources = [(mosaic, label)]

    def set_epoch(self, epoch):
        pass

    def __getitem__(self, i):
        return (self.mosaic, self.label, self._boxes()[i])

    def __len__(self):
        return len(self._boxes())


class RandomGeoWindows(_GeoSampler):
    """``count`` boxes of ``size`` pixels (an int or (h, w)) of the mosaic's
    grid, as TorchGeo's RandomGeoSampler draws them: a scene chosen with
    probability proportional to its footprint's area, then a box at a
    whole-pixel offset (from the footprint's corner) inside the footprint
    (at its corner when the footprint is smaller).  Seeded by ``(seed,
    epoch)``; ``set_epoch`` draws the epoch's boxes."""

    def __init__(self, mosaic, size, count, seed=0, label=None):
        super().__init__(mosaic, size, label)
        self.count, self.seed, self.epoch = int(count), int(seed), 0
        self._cache = None

    def set_epoch(self, epoch):
        if int(epoch) != self.epoch:
            self.epoch, self._cache = int(epoch), None

    def _boxes(self):
        if self._cache is None:
            rng = random.Random(self.seed * 1_000_003 + self.epoch)
            fps = self.mosaic.footprints
            areas = [(f.right - f.left) * (f.top - f.bottom) for f in fps]
            (sw, sh), (rx, ry) = self.span, self.mosaic.res
            boxes = []
            for _ in range(self.count):
                f = rng.choices(fps, weights=areas)[0]
                cols = int((f.right - f.left - sw) // rx)
                rows = int((f.top - f.bottom - sh) // ry)
                x = f.left + (rng.randrange(cols + 1) if cols > 0 else 0) * rx
                y = f.bottom + (rng.randrange(rows + 1) if rows > 0 else 0) * ry
                boxes.append((x, y, x + sw, y + sh))
            self._cache = boxes
        return self._cache


class GridGeoWindows(_GeoSampler):
    """Boxes of ``size`` pixels every ``stride`` pixels over each scene's
    footprint, from its top-left corner; the last row and column are shifted
    to end at the footprint's right and bottom edge (so the whole footprint is
    covered, as GridWindows(edges="shift")).  A footprint smaller than a box
    gives one box at its top-left corner."""

    def __init__(self, mosaic, size, stride=None, label=None):
        super().__init__(mosaic, size, label)
        stride = self.size if stride is None else \
            (stride, stride) if isinstance(stride, int) else tuple(int(v) for v in stride)
        if stride[0] < 1 or stride[1] < 1:
            raise ValueError(f"stride {stride!r} must be >= 1 pixels")
        self.stride = stride
        (sw, sh), (rx, ry) = self.span, mosaic.res
        boxes = []
        for f in mosaic.footprints:
            ncol = max(int(math.floor((f.right - f.left) / rx)) - self.size[1], 0)
            nrow = max(int(math.floor((f.top - f.bottom) / ry)) - self.size[0], 0)
            cols = list(range(0, ncol + 1, stride[1]))
            rows = list(range(0, nrow + 1, stride[0]))
            if cols[-1] != ncol:
                cols.append(ncol)
            if rows[-1] != nrow:
                rows.append(nrow)
            for r in rows:
                for c in cols:
                    x, top = f.left + c * rx, f.top - r * ry
                    boxes.append((x, top - sh, x + sw, top))
        self._list = boxes

    def _boxes(self):
        return self._list


# ------------------------------------------------------------------ batch reads

def _label_mosaic(reader, labels, image, label):
    """A label as a one-band Mosaic on the image mosaic's grid (opened once:
    kept in 'labels', the loader's cache of open sources)."""
    if label is None or isinstance(label, Mosaic):
        return label
    key = ("geo-label", id(image), str(label))
    m = labels.get(key)
    if m is None:
        m = Mosaic([label], crs=image.crs, res=image.res, resampling="nearest",
                   nodata=reader.label_fill)
        labels[key] = m
    return m


def geo_shape(sample, out_shape):
    """(channels, height, width) of a geo sample's read."""
    mosaic, _, bounds = sample
    h, w, _, _ = query_grid(mosaic, bounds, out_shape)
    return mosaic.count, h, w


def read_geo_batch(reader, indices, image, mask, validity, layout, *, labels, norm):
    """Read the geo samples ``indices`` of reader.samples into ``image``
    ([B,H,W,C] or [B,C,H,W] numpy views), ``mask`` ([B,H,W] or None) and
    ``validity`` ([B,H,W] uint8 or None): one mosaic_read for the batch.
    ``labels`` is the loader's cache of label mosaics, ``norm`` its
    normalisation keywords (norm_kwargs)."""
    items, fills, norm_after = [], [], []
    lane = 0
    out_shape = (reader.height, reader.width)
    for k, i in enumerate(indices):
        mosaic, label, bounds = reader.samples[i]
        if not isinstance(mosaic, Mosaic):
            raise TypeError(f"sample {i}: a batch mixes geo samples with {type(mosaic).__name__}")
        if mosaic.count != reader.channels:
            raise ValueError(f"sample {i}: {mosaic!r} has {mosaic.count} bands, the loader "
                             f"{reader.channels}")

        def channel(c, h, w, k=k):
            return image[k, :, :, c] if layout == "bhwc" else image[k, c]

        h, w, its, fl = query_items(mosaic, bounds, out_shape, channel, lane0=lane)
        lane += mosaic.count
        items += its
        fills += [(mosaic, f) for f in fl]
        if mask is not None:
            lab = _label_mosaic(reader, labels, mosaic, label)
            if lab is not None:
                _, _, its, fl = query_items(lab, bounds, out_shape, lambda c, h, w, k=k: mask[k],
                                            lane0=lane)
                lane += 1
                items += its
                fills += [(lab, f) for f in fl]
    for m, (plane, direct) in fills:
        fill_empty(plane, direct, m.nodata)
    _core.mosaic_read(items, reader.threads)
    for k, i in enumerate(indices):
        mosaic, label, _ = reader.samples[i]
        img = image[k] if layout == "bhwc" else np.moveaxis(image[k], 0, -1)
        nd = mosaic.nodata
        if validity is not None or (mask is not None and label is None):
            valid = (img != nd) if nd == nd else ~np.isnan(img)
            v = np.where(valid.any(axis=-1), 255, 0)
            if validity is not None:
                validity[k] = v
            if mask is not None and label is None:
                mask[k] = v
    if norm:   # loaders' rule: in double, rounded once (see the module doc)
        normalise_in_place(image, norm, axis=-1 if layout == "bhwc" else 1)
