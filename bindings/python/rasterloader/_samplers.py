"""Samplers: the sample lists a training loader iterates over, pixel and geo.

Pixel samplers are sequences of ``(image_path, mask_path or None, Window)``
samples, the format :class:`rasterloader.BatchLoader` and
:class:`rasterloader.torch.WindowDataset` take, built from a list of sources
(an image path, or an ``(image_path, mask_path)`` pair with the label raster
on the same grid):

- :class:`RandomWindows` - ``count`` random windows per epoch, seeded;
  :meth:`set_epoch` draws the next epoch's (loaders call it for you).
- :class:`GridWindows` - a regular grid with a stride (overlapping when the
  stride is smaller than the size); the last row and column end at the
  raster's edge unless ``edges="drop"``.
- :class:`TileWindows` - windows aligned to each file's own tile grid, so a
  window never decodes more than the tiles under it: one window per tile, or
  ``size`` dividing the tile size (several per tile), or a multiple of it.

They open each file once for its size and block shape (metadata only) and
hold no file handles afterwards.  Everything is plain Python and NumPy, so
samplers pickle into DataLoader workers cheaply.

Geo samplers (:class:`RandomGeoWindows`, :class:`GridGeoWindows`) give
``(mosaic, label or None, bounds)`` samples over a :class:`rasterloader.Mosaic`
(rasterloader.geo reads them).
"""

import collections.abc
import math
import random

import numpy as np

from ._compat import Window
from ._dataset import open as rl_open
from .mosaic import Mosaic

__all__ = ["RandomWindows", "GridWindows", "TileWindows", "WindowSamples", "RandomGeoWindows",
           "GridGeoWindows"]


def _sources(sources):
    out = []
    for s in sources:
        if isinstance(s, (tuple, list)):
            if len(s) != 2:
                raise ValueError(f"a source is an image path or (image_path, mask_path), not {s!r}")
            out.append((str(s[0]), None if s[1] is None else str(s[1])))
        else:
            out.append((str(s), None))
    if not out:
        raise ValueError("no sources")
    return out


def _pair(v, what):
    if isinstance(v, (int, np.integer)):
        v = (int(v), int(v))
    h, w = (int(x) for x in v)
    if h < 1 or w < 1:
        raise ValueError(f"{what} must be >= 1, not {v!r}")
    return h, w


def _meta(path):
    """(height, width, block_height, block_width) of a raster."""
    with rl_open(path) as ds:
        bh, bw = ds.block_shapes[0]
        return ds.height, ds.width, bh, bw


class WindowSamples(collections.abc.Sequence):
    """A fixed list of samples held as arrays: ``(source index, col_off, row_off)``
    rows plus the sources and one window size.  Base of the samplers below."""

    def __init__(self, sources, size):
        self.sources = _sources(sources)
        self.size = _pair(size, "size")
        self._rows = np.zeros((0, 3), np.int64)

    def __len__(self):
        return len(self._rows)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        k, col, row = (int(v) for v in self._rows[i])
        image, mask = self.sources[k]
        h, w = self.size
        return image, mask, Window(col, row, w, h)

    def set_epoch(self, epoch):
        """Fixed samplers ignore the epoch (loaders shuffle their order)."""

    def __repr__(self):
        return (f"<{type(self).__name__} {len(self)} windows of {self.size[0]}x{self.size[1]} "
                f"over {len(self.sources)} source(s)>")


class RandomWindows(WindowSamples):
    """``count`` random windows of ``size`` per epoch, uniform over every
    position that fits in any source (so a source is picked in proportion to
    its number of positions), seeded by ``(seed, epoch)``: the same on every
    process and rank for one epoch, different from one epoch to the next.
    ``align="tile"`` draws only offsets that are multiples of ``size`` within
    each file's tile grid (``size`` must divide the tile size)."""

    def __init__(self, sources, size, count, *, seed=0, align=None):
        super().__init__(sources, size)
        if count < 0:
            raise ValueError("count must be >= 0")
        if align not in (None, "tile"):
            raise ValueError(f"align must be None or 'tile', not {align!r}")
        self.count, self.seed, self.align = int(count), int(seed), align
        h, w = self.size
        self._ranges = []       # per source: (rows, cols, step_r, step_c) of allowed offsets
        for image, _ in self.sources:
            H, W, bh, bw = _meta(image)
            if H < h or W < w:
                raise ValueError(f"{image}: {W}x{H} is smaller than the {w}x{h} window")
            if align == "tile":
                if bh % h or bw % w:
                    raise ValueError(f"{image}: align='tile' needs the window ({w}x{h}) to divide "
                                     f"the tile ({bw}x{bh})")
                self._ranges.append(((H - h) // h + 1, (W - w) // w + 1, h, w))
            else:
                self._ranges.append((H - h + 1, W - w + 1, 1, 1))
        self.epoch = None
        self.set_epoch(0)

    def set_epoch(self, epoch):
        if epoch == self.epoch:
            return
        self.epoch = int(epoch)
        rng = np.random.default_rng([self.seed, self.epoch])
        npos = np.array([r * c for r, c, _, _ in self._ranges], np.float64)
        src = rng.choice(len(npos), size=self.count, p=npos / npos.sum())
        rows = np.empty((self.count, 3), np.int64)
        rows[:, 0] = src
        for k, (nr, nc, sr, sc) in enumerate(self._ranges):
            sel = src == k
            n = int(sel.sum())
            rows[sel, 1] = rng.integers(0, nc, n) * sc
            rows[sel, 2] = rng.integers(0, nr, n) * sr
        self._rows = rows


class GridWindows(WindowSamples):
    """Windows of ``size`` every ``stride`` pixels (default: ``size``, no
    overlap) over each source, row by row.  ``edges="shift"`` (default) adds a
    last row/column ending exactly at the raster's edge, so every pixel is
    covered; ``"drop"`` leaves out what does not fit a whole stride step."""

    def __init__(self, sources, size, stride=None, *, edges="shift"):
        super().__init__(sources, size)
        if edges not in ("shift", "drop"):
            raise ValueError(f"edges must be 'shift' or 'drop', not {edges!r}")
        self.stride = self.size if stride is None else _pair(stride, "stride")
        h, w = self.size
        sr, sc = self.stride
        parts = []
        for k, (image, _) in enumerate(self.sources):
            H, W, _, _ = _meta(image)
            rs = _starts(H, h, sr, edges)
            cs = _starts(W, w, sc, edges)
            if len(rs) == 0 or len(cs) == 0:
                continue
            rr, cc = np.meshgrid(rs, cs, indexing="ij")
            part = np.empty((rr.size, 3), np.int64)
            part[:, 0] = k
            part[:, 1] = cc.ravel()
            part[:, 2] = rr.ravel()
            parts.append(part)
        self._rows = np.concatenate(parts) if parts else np.zeros((0, 3), np.int64)


def _starts(extent, size, stride, edges):
    if extent < size:
        return np.zeros(0, np.int64)
    s = np.arange(0, extent - size + 1, stride, dtype=np.int64)
    if edges == "shift" and s[-1] + size < extent:
        s = np.append(s, extent - size)
    return s


class TileWindows(WindowSamples):
    """Windows aligned to each file's tile (block) grid.  ``size`` defaults to
    the tile size of the first source; it must divide the tile size (every
    window lies inside one tile: it decodes one tile, and only the rows down
    to its last) or be a multiple of it (whole tiles).  Windows that would
    reach past the raster's edge are left out."""

    def __init__(self, sources, size=None):
        srcs = _sources(sources)
        metas = [_meta(image) for image, _ in srcs]
        if size is None:
            size = (metas[0][2], metas[0][3])
        super().__init__(srcs, size)
        h, w = self.size
        parts = []
        for k, ((image, _), (H, W, bh, bw)) in enumerate(zip(self.sources, metas)):
            for tile, win, what in ((bh, h, "height"), (bw, w, "width")):
                if tile % win and win % tile:
                    raise ValueError(f"{image}: window {what} {win} neither divides nor is a "
                                     f"multiple of the tile {what} {tile}")
            rs = np.arange(0, H - h + 1, h, dtype=np.int64)
            cs = np.arange(0, W - w + 1, w, dtype=np.int64)
            if len(rs) == 0 or len(cs) == 0:
                continue
            rr, cc = np.meshgrid(rs, cs, indexing="ij")
            part = np.empty((rr.size, 3), np.int64)
            part[:, 0] = k
            part[:, 1] = cc.ravel()
            part[:, 2] = rr.ravel()
            parts.append(part)
        self._rows = np.concatenate(parts) if parts else np.zeros((0, 3), np.int64)


# ------------------------------------------------------------------ geo samplers

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
