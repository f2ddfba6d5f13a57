"""Window samplers: the sample lists a training loader iterates over.

Each is a sequence of ``(image_path, mask_path or None, Window)`` samples, the
format :class:`rasterloader.BatchLoader` and
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

Window resolution lives here too, once, for every reader: :func:`read_window`
turns a rasterio window (a ``Window`` or a ``((row_start, row_stop),
(col_start, col_stop))`` tuple) into the integer window of a read exactly as
rasterio computes it, and the float window a resampled read needs;
:class:`rasterloader.Dataset` and the loaders call it (or
:func:`resolve_window`, its integer-only form).
"""

import collections.abc
import math
import numbers

import numpy as np

from . import _compat, _core
from ._compat import Window
from .errors import WindowError

__all__ = ["RandomWindows", "GridWindows", "TileWindows", "WindowSamples"]


# ------------------------------------------------------------ window resolution

def to_window(window, height, width, boundless=False):
    """A Window of a raster of ``height`` x ``width`` from None (the whole
    raster), a Window-like object, or a slice tuple (Window.from_slices)."""
    if window is None:
        return Window(0, 0, width, height)
    if isinstance(window, tuple) and not hasattr(window, "col_off"):
        return _window_from_slices(window, height, width, boundless)
    try:
        return Window(window.col_off, window.row_off, window.width, window.height)
    except AttributeError:
        raise TypeError("window must be a Window (col_off, row_off, width, height) or "
                        f"((row_start, row_stop), (col_start, col_stop)), not {window!r}")


def read_window(window, height, width, boundless):
    """The window of a read, resolved once, as rasterio computes it:
    ``(box, fbox)``.

    ``box`` is the integer ``(col_off, row_off, width, height)`` of the pixels
    read: tuples via Window.from_slices, cropped unless boundless, lengths
    rounded half up, fractional offsets to the pixel GDAL's nearest rule picks.
    ``fbox`` is the float window rasterio evaluates, the same four fields
    (checked, cropped unless boundless; what a resampled read passes GDAL),
    or None when the window was given in whole pixels, so that it IS ``box``.

    The common windows (None, a Window of ints, a slice tuple of ints) take
    a fast path (:func:`_whole_pixel_box`) that builds no Window objects;
    everything else goes through the general path (:func:`_float_box`), which
    would give the same box for the common windows too.  The fast path exists
    because a warm read costs a few us, and the general path's checks and
    Window objects cost as much again."""
    box = _whole_pixel_box(window, height, width, boundless)
    if box is not None:
        return box, None
    fbox = _float_box(window, height, width, boundless)
    col, row, w, h = fbox
    return (_compat.floor_half(col), _compat.floor_half(row), _compat.floor_half(w),
            _compat.floor_half(h)), fbox


def fractional_lengths(fbox):
    """True when a read_window() float box's width or height is not a whole
    number of pixels (a resampled read); False for None (whole pixels)."""
    if fbox is None:
        return False
    _, _, w, h = fbox
    return abs(w - _compat.floor_half(w)) > 1e-9 or abs(h - _compat.floor_half(h)) > 1e-9


def resolve_window(window, height, width, boundless):
    """Integer (col_off, row_off, width, height) of a read (read_window()'s
    ``box``), for readers that do not resample: a window with fractional
    lengths is NotImplementedError."""
    box, fbox = read_window(window, height, width, boundless)
    if fractional_lengths(fbox):
        col, row, w, h = fbox
        raise NotImplementedError(
            f"window (col_off={col}, row_off={row}, width={w}, height={h}) has fractional "
            "width/height: that is a resampled read, which only read() does (use whole-pixel "
            "lengths here)")
    return box


def _int_bounds(s):
    """(start, stop) of one axis of a slice tuple when both are ints, else None."""
    t = type(s)
    if t is slice:
        start, stop = s.start, s.stop
    elif (t is tuple or t is list) and len(s) == 2:
        start, stop = s
    else:
        return None
    if type(start) is not int or type(stop) is not int:
        return None
    return start, stop


def _whole_pixel_box(window, height, width, boundless):
    """read_window()'s fast path: the box of None, of a Window whose fields
    are ints, or of ``((row_start, row_stop), (col_start, col_stop))`` of
    ints (tuples, lists or slices) with stop >= start after the negative
    index wrap; None for any other window.  Exactly the general path's
    arithmetic on ints (which keeps every value an int, so that box and float
    window are one), without its Window objects and checks, which ints pass."""
    if window is None:
        return (0, 0, width, height)
    t = type(window)
    if t is Window:
        col, row, w, h = window.col_off, window.row_off, window.width, window.height
        # bool is a subclass of int, not int: type() keeps it on the general path.
        if type(col) is not int or type(row) is not int or type(w) is not int \
                or type(h) is not int or w < 0 or h < 0:
            return None
    elif t is tuple and len(window) == 2:
        rows, cols = _int_bounds(window[0]), _int_bounds(window[1])
        if rows is None or cols is None:
            return None
        (row, row_stop), (col, col_stop) = rows, cols
        if not boundless:
            row, row_stop, col, col_stop = _from_end(row, row_stop, col, col_stop, height, width)
        w, h = col_stop - col, row_stop - row
        if w < 0 or h < 0:         # the general path makes these 0.0: a float window
            return None
    else:
        return None
    if boundless:
        return (col, row, w, h)
    col_start, row_start = _clamp(col, width), _clamp(row, height)
    return (col_start, row_start, _clamp(col + w, width) - col_start,
            _clamp(row + h, height) - row_start)


def _from_end(row, row_stop, col, col_stop, height, width):
    """Window.from_slices' rule, for both paths: negative indexes count from
    the end (not boundless only)."""
    return (row + height if row < 0 else row, row_stop + height if row_stop < 0 else row_stop,
            col + width if col < 0 else col, col_stop + width if col_stop < 0 else col_stop)


def _clamp(v, hi):
    """min(max(v, 0), hi) of ints (_crop's rule) in comparisons, which cost
    a fraction of the builtins' calls."""
    return 0 if v < 0 else hi if v > hi else v


def _float_box(window, height, width, boundless):
    """read_window()'s general path: the window as rasterio evaluates it, in
    floats: tuples via Window.from_slices, checked, cropped unless boundless."""
    w = to_window(window, height, width, boundless)
    for name in ("col_off", "row_off", "width", "height"):
        v = getattr(w, name)
        if not isinstance(v, numbers.Real) or isinstance(v, bool):
            raise TypeError(f"window {name} must be a number, not {v!r} (in {window!r})")
        if math.isnan(v):
            raise WindowError(f"window {name} is NaN (in {window!r})", _core.E_BOUNDS)
    if not boundless:
        w = _crop(w, height, width)
    return (w.col_off, w.row_off, w.width, w.height)


def _crop(w, height, width):
    row_start = min(max(w.row_off, 0), height)
    col_start = min(max(w.col_off, 0), width)
    row_stop = max(0, min(w.row_off + w.height, height))
    col_stop = max(0, min(w.col_off + w.width, width))
    return Window(col_start, row_start, col_stop - col_start, row_stop - row_start)


def _window_from_slices(window, height, width, boundless):
    """Window.from_slices(rows, cols, height, width, boundless), as rasterio."""
    if len(window) != 2:
        raise WindowError("window tuple must be ((row_start, row_stop), (col_start, col_stop))",
                          _core.E_BOUNDS)
    rows, cols = window

    def as_slice(s, what):
        if isinstance(s, (tuple, list)):
            if len(s) != 2:
                raise WindowError(f"{what} must have a start and stop index", _core.E_BOUNDS)
            return slice(*s)
        if isinstance(s, slice):
            return s
        raise WindowError(f"{what} must be a slice, tuple, or list", _core.E_BOUNDS)

    rows, cols = as_slice(rows, "rows"), as_slice(cols, "cols")
    for what, v in (("rows", rows.start), ("rows", rows.stop), ("cols", cols.start),
                    ("cols", cols.stop)):
        if v is not None and (not isinstance(v, numbers.Real) or isinstance(v, bool)):
            raise TypeError(f"window {what} bounds must be numbers or None, not {v!r}")
        if v is not None and math.isnan(v):
            raise WindowError(f"window {what} bound is NaN (in {window!r})", _core.E_BOUNDS)
    row_off = 0.0 if rows.start is None else rows.start
    row_stop = height if rows.stop is None else rows.stop
    col_off = 0.0 if cols.start is None else cols.start
    col_stop = width if cols.stop is None else cols.stop
    if not boundless:
        row_off, row_stop, col_off, col_stop = _from_end(row_off, row_stop, col_off, col_stop,
                                                         height, width)
    return Window(col_off, row_off, max(col_stop - col_off, 0.0), max(row_stop - row_off, 0.0))


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
    from ._dataset import open as rl_open
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
