"""Samples by geography over a Mosaic (issue 16): the batch read (the
samplers are in rasterloader._samplers, with the pixel ones; this module
still exports them).

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

Fill, validity and normalisation are done by the same C call
(raster_mosaic_read): no pass over the pixels in Python.
"""

from . import _core
from ._samplers import GridGeoWindows, RandomGeoWindows  # noqa: F401  (public here too)
from .mosaic import Mosaic, lane_specs, query_grid, query_items

__all__ = ["RandomGeoWindows", "GridGeoWindows", "is_geo_sample"]


def is_geo_sample(sample):
    try:
        return isinstance(sample[0], Mosaic)
    except (TypeError, IndexError, KeyError):
        return False


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
    ``validity`` ([B,H,W] uint8 or None): one mosaic_read for the batch,
    which also fills, computes the validity masks (255 where any band is not
    nodata: the mask too of a sample without a label) and normalises
    (``norm``, the loader's norm_kwargs) in C.  ``labels`` is the loader's
    cache of label mosaics."""
    items, lanes, valid = [], [], []
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

        h, w, its, planes = query_items(mosaic, bounds, out_shape, channel, lane0=lane)
        first = lane
        lane += mosaic.count
        items += its
        lanes += lane_specs(planes, mosaic.nodata, norm)
        if validity is not None:
            valid.append((validity[k], first, mosaic.count))
        if mask is not None:
            lab = _label_mosaic(reader, labels, mosaic, label)
            if lab is None:
                valid.append((mask[k], first, mosaic.count))
            else:
                _, _, its, planes = query_items(lab, bounds, out_shape, lambda c, h, w, k=k: mask[k],
                                                lane0=lane)
                lane += 1
                items += its
                lanes += lane_specs(planes, lab.nodata)
    _core.mosaic_read(items, reader.threads, lanes=lanes, validity=valid)
