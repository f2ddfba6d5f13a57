"""The read arguments every public entry converts, converted here, once, with
one set of errors: ``resampling``, ``out_shape``, the normalisation
(``mean``/``std`` or ``scale``/``offset``) and ``timeout``.  Windows are
converted by :mod:`rasterloader._windows` (window math, a leaf module).

Two ways to normalise, both computed by the C library in double with one
rounding to the output dtype:

- ``mean``/``std``: ``(x - mean) / std``, in that order (so ``x == mean``
  gives exactly 0, as NumPy's ``(x.astype(float64) - mean) / std``);
- ``scale``/``offset``: ``x * scale + offset``.

Nothing here reads pixels or imports another module of the package but
:mod:`rasterloader._compat` and :mod:`rasterloader.errors`.
"""

import numbers

import numpy as np

from ._compat import Resampling
from .errors import InvalidArgumentError

__all__ = ["resampling_code", "warp_resampling", "out_hw", "norm_kwargs", "timeout_ms"]

# The methods a read (GDALRasterIO) can use; the others are warp-only.
_READ_METHODS = frozenset((0, 1, 2, 3, 4, 5, 6, 7, 14))


def resampling_code(value, *, names=False):
    """A rasterio ``Resampling`` (or its int value; with ``names``, its name
    too) as the C library's code.  TypeError for what is not one;
    ValueError for an unknown name; InvalidArgumentError for a method a read
    cannot use (warp-only ones, or no method at all)."""
    if isinstance(value, str) and names:
        try:
            return int(Resampling[value])
        except KeyError:
            raise ValueError(f"unknown resampling {value!r}") from None
    if isinstance(value, (str, bytes, bool)):
        raise TypeError(f"resampling must be a Resampling value, not {value!r}")
    try:
        code = int(value)
    except (TypeError, ValueError):
        raise TypeError(f"resampling must be a Resampling value, not {value!r}") from None
    if code not in _READ_METHODS:
        raise InvalidArgumentError(
            f"resampling {code} is not one a read can use (nearest, bilinear, cubic, "
            "cubic_spline, lanczos, average, mode, gauss, rms)")
    return code


def warp_resampling(value):
    """A WarpedVRT's ``resampling`` as a ``Resampling`` member: any warp
    method but gauss (as rasterio); ValueError otherwise."""
    try:
        if isinstance(value, (str, bytes, bool)) or int(value) == 7:
            raise ValueError
        return Resampling(value)
    except (TypeError, ValueError):
        raise ValueError("resampling must be one of the warp's Resampling values (not "
                         f"gauss): {value!r}") from None


def out_hw(out_shape, channels):
    """(height, width) of an out_shape given as (h, w) or (channels, h, w),
    both >= 1."""
    shape = tuple(int(v) for v in out_shape)
    if len(shape) == 3 and shape[0] == channels:
        shape = shape[1:]
    if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"out_shape {tuple(out_shape)} must be (height, width) or "
                         f"({channels}, height, width) with height, width >= 1")
    return shape


def timeout_ms(timeout):
    """A wait's ``timeout`` in seconds (None: forever) as the C call's
    milliseconds (-1: forever)."""
    if timeout is None:
        return -1
    if not isinstance(timeout, numbers.Real) or isinstance(timeout, bool):
        raise TypeError(f"timeout must be None (wait forever) or a number of seconds, "
                        f"not {timeout!r}")
    if not timeout >= 0:
        raise ValueError(f"timeout must be None (wait forever) or seconds >= 0, not {timeout!r}")
    return int(min(timeout * 1000, 2**31 - 1))


def _per_channel(name, value, n, where):
    """``value`` as a list of ``n`` floats: a scalar applies to every channel,
    a sequence must have one value per channel."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or a sequence of numbers, not {value!r}") \
            from None
    if arr.ndim == 0:
        return [float(arr)] * n
    if arr.ndim != 1 or arr.shape[0] != n:
        got = arr.shape[0] if arr.ndim == 1 else f"shape {arr.shape}"
        raise ValueError(f"{name} has {got} values but {where} has {n} channel(s): give one "
                         f"value per channel, or a single number for all")
    return arr.tolist()


def norm_kwargs(n, mean=None, std=None, scale=None, offset=None, *, where="the read"):
    """The C read's normalisation keywords for ``n`` output channels:
    ``{"mean": [...], "std": [...]}`` (either may be absent: mean 0, std 1),
    ``{"scale": [...], "offset": [...]}``, or ``{}``.

    ``where`` names what has the ``n`` channels in messages, e.g.
    ``"scene.tif (bands [3, 2, 1])"``.  Raises ValueError for a wrong length
    (naming ``where`` and ``n``), a std of 0, or both ways at once."""
    if mean is None and std is None and scale is None and offset is None:
        return {}
    if (mean is not None or std is not None) and (scale is not None or offset is not None):
        raise ValueError("give scale/offset or mean/std, not both")
    out = {}
    for name, value in (("mean", mean), ("std", std), ("scale", scale), ("offset", offset)):
        if value is not None:
            if isinstance(value, (str, bytes, bool)):
                raise ValueError(f"{name} must be a number or a sequence of numbers, not "
                                 f"{value!r}")
            out[name] = _per_channel(name, value, n, where)
    if "std" in out and any(s == 0 for s in out["std"]):
        raise ValueError(f"std must be nonzero (got {out['std']}) for {where}")
    return out
