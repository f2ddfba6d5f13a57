"""Window math: rasterio's windows resolved for a read, and windows from bounds.

A leaf module (it imports only _compat, _core's constants and errors): every
reader resolves its windows here, once.  :func:`read_window` turns a
rasterio window (a ``Window`` or a ``((row_start, row_stop), (col_start,
col_stop))`` tuple) into the integer window of a read exactly as rasterio
computes it, and the float window a resampled read needs;
:class:`rasterloader.Dataset` and the loaders call it (or
:func:`resolve_window`, its integer-only form).  :func:`from_bounds` and
:func:`bounds_window` are rasterio.windows.from_bounds, written once for the
Dataset and the Mosaic.

The samplers (the sample lists loaders iterate over) are in
rasterloader._samplers."""

import math
import numbers

from . import _compat, _core
from ._compat import Window
from .errors import WindowError

__all__ = ["read_window", "resolve_window", "to_window", "from_bounds", "bounds_window"]


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


def require_whole_lengths(fbox):
    """NotImplementedError when a read_window() float box has fractional
    lengths, for the readers that take only whole-pixel lengths."""
    if fractional_lengths(fbox):
        col, row, w, h = fbox
        raise NotImplementedError(
            f"window (col_off={col}, row_off={row}, width={w}, height={h}) has fractional "
            "width/height: that is a resampled read, which only read() does (use whole-pixel "
            "lengths here)")


def resolve_window(window, height, width, boundless):
    """Integer (col_off, row_off, width, height) of a read (read_window()'s
    ``box``), for readers that do not resample: a window with fractional
    lengths is NotImplementedError."""
    box, fbox = read_window(window, height, width, boundless)
    require_whole_lengths(fbox)
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


# ------------------------------------------------------------ windows from bounds

def bounds_window(inv, left, bottom, right, top):
    """rasterio.windows.from_bounds(left, bottom, right, top, transform) with
    inv = ~transform, as (col_off, row_off, width, height): the same products
    and sums as rasterio's (its AffineTransformer does inv . (x, y, 1) on the
    four corners), without building numpy arrays per call (Mosaic calls it
    per source per read).  tests/python checks it against rasterio's."""
    ia, ib, ic, id_, ie, if_ = inv[:6]
    cols = (ia * left + ib * top + ic, ia * right + ib * top + ic,
            ia * right + ib * bottom + ic, ia * left + ib * bottom + ic)
    rows = (id_ * left + ie * top + if_, id_ * right + ie * top + if_,
            id_ * right + ie * bottom + if_, id_ * left + ie * bottom + if_)
    c0, r0 = min(cols), min(rows)
    return c0, r0, max(max(cols) - c0, 0.0), max(max(rows) - r0, 0.0)


def from_bounds(left, bottom, right, top, transform):
    """The float Window covering the bounds, as rasterio.windows.from_bounds
    (its checks and its WindowError too)."""
    if not hasattr(transform, "a") or not hasattr(transform, "e"):
        raise WindowError("A transform object is required to calculate the window",
                          _core.E_BOUNDS)
    if (right - left) / transform.a < 0 or (bottom - top) / transform.e < 0:
        raise WindowError("Bounds and transform are inconsistent", _core.E_BOUNDS)
    return Window(*bounds_window(tuple(~transform), left, bottom, right, top))
