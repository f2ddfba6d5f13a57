"""Per-channel normalisation arguments, checked once for every public entry.

Two ways to normalise, both computed by the C library in double with one
rounding to the output dtype:

- ``mean``/``std``: ``(x - mean) / std``, in that order (so ``x == mean``
  gives exactly 0, as NumPy's ``(x.astype(float64) - mean) / std``);
- ``scale``/``offset``: ``x * scale + offset``.

This module turns the arguments into per-channel lists of floats for the C
call and says clearly what is wrong with them.  The one computation here,
:func:`normalise_in_place`, is for Mosaic reads, which C cannot normalise
while reading ("first" compositing compares the raw values the earlier
sources wrote); it is written once, for Mosaic.read_hwc and the geo loaders.
"""

import numpy as np

__all__ = ["norm_kwargs", "normalise_in_place"]


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


def normalise_in_place(arr, norm, axis):
    """``arr`` normalised in place by ``norm`` (norm_kwargs' result) along its
    channel axis ``axis``: ``(x - mean) / std`` or ``x * scale + offset`` in
    float64, then one cast back to arr's dtype.  One more pass over ``arr``,
    with a float64 temporary of its size."""
    shape = [1] * arr.ndim
    shape[axis] = arr.shape[axis]

    def vec(key, default):
        v = np.asarray(norm.get(key, default), dtype=np.float64)
        return np.broadcast_to(v, (arr.shape[axis],)).reshape(shape)

    x = arr.astype(np.float64)
    if "mean" in norm or "std" in norm:
        x = (x - vec("mean", 0.0)) / vec("std", 1.0)
    else:
        x = x * vec("scale", 1.0) + vec("offset", 0.0)
    arr[...] = x.astype(arr.dtype)
