"""The one normalisation pass Python still makes: Mosaic reads.

C normalises every Dataset read and every pixel-window batch while it reads
(the arguments are converted in rasterloader._args).  Mosaic.read_hwc and the
geo loaders cannot yet: "first" compositing compares the raw values the
earlier sources wrote, so the mosaic read (raster_mosaic_read_sources) would
have to normalise after compositing, per lane.  Until it does, this pass is
written once, here, for both.
"""

import numpy as np

__all__ = ["normalise_in_place"]


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
