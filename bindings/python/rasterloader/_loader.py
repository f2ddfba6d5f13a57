"""rasterloader.BatchLoader: batches of windows, read in parallel into pooled memory.

    loader = rasterloader.BatchLoader(samples, batch_size=16, mean=..., std=...,
                                      shuffle=True, seed=0)
    for epoch in range(E):
        loader.set_epoch(epoch)
        for batch in loader:
            x = torch.from_dlpack(batch.image).permute(0, 3, 1, 2)   # [B,C,H,W] view
            y = torch.from_dlpack(batch.mask)                         # [B,H,W] uint8
            ...

``samples`` is a sequence of ``(image_path, mask_path or None, window)``: a
label raster on the image's grid, or None for the image's validity mask
(rasterio's ``dataset_mask()``).  Instead of a path, the image (or label) may
be an open :class:`Dataset` or :class:`rasterloader.vrt.WarpedVRT` object: it
is read as it is (the loader neither opens nor closes it), so a warped source
is named by the WarpedVRT itself.  A window is a rasterio/rasterloader
``Window``, ``((row_start, row_stop), (col_start, col_stop))`` or a flat
``(col_off, row_off, width, height)``; all windows of a loader have one size.
The window samplers (:class:`RandomWindows`, :class:`GridWindows`,
:class:`TileWindows`) produce such sequences.

How a batch is made: one C call (``raster_batch_read``) acquires a
``[B,H,W,C]`` image buffer and a ``[B,H,W]`` uint8 mask buffer from the
loader's pool and reads every sample straight into its slot on ``threads``
threads, with the GIL released, converting and normalising in the same pass.
``batch.image`` and ``batch.mask`` are :class:`Tile` objects: DLPack and the
buffer protocol hand the very same memory to torch or NumPy.  Nothing is
copied after decode.  The memory returns to the pool when the batch and every
tensor made from it are gone.

Back-pressure: a background thread reads up to ``prefetch`` batches ahead into
a bounded queue, and the pool has room for ``prefetch + 3`` batches (those
queued, the one being read, and two the consumer holds while it steps).  If
the consumer keeps more batches alive, the reader waits on the pool instead
of allocating, and after ``timeout`` seconds raises :class:`PoolTimeoutError`
naming the cause.  Memory is bounded by construction.

Order, shuffling and sharding are deterministic: the epoch's order is a
permutation seeded by ``(seed, epoch)``, the same on every process; a rank
(``torch.distributed``, or ``rank=``/``world_size=``) takes every
``world_size``-th sample of it, DistributedSampler-style (see
:func:`shard_indices` for the padding policy); within a rank, batches are
consecutive runs of ``batch_size``; ``worker=(id, count)`` further takes every
``count``-th batch (DataLoader workers; rasterloader.torch does this).
"""

import queue
import threading

import numpy as np

from . import _core, _windows
from ._compat import Resampling
from ._dataset import Dataset, core_of, open as _open
from ._args import norm_kwargs, out_hw, resampling_code, timeout_ms
from .errors import PoolTimeoutError, RasterError
from . import geo as _geo

__all__ = ["BatchLoader", "WindowReader", "Batch", "epoch_order", "shard_indices", "split_batches",
           "pool_block_nbytes"]


# --------------------------------------------------------------------------- plans

def epoch_order(n, epoch=0, *, shuffle=False, seed=0):
    """The order of ``range(n)`` for an epoch: identity, or a permutation seeded by
    ``(seed, epoch)`` (NumPy's PCG64), the same in every process."""
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n).astype(np.int64)


def shard_indices(order, rank=0, world_size=1, *, pad=True):
    """This rank's share of an epoch's ``order``, as torch's DistributedSampler.

    - ``pad=True`` (default, DistributedSampler's ``drop_last=False``): the order
      is extended with its own first samples up to a multiple of ``world_size``,
      so every rank gets ``ceil(n / world_size)`` samples and takes the same
      number of steps (DDP needs that); at most ``world_size - 1`` samples are
      seen twice per epoch.
    - ``pad=False`` (``drop_last=True``): the last ``n % world_size`` samples of
      the order are left out; shards are disjoint and equal.
    Rank r takes ``order[r::world_size]`` of that; the shards of all ranks
    together are the epoch.
    """
    order = np.asarray(order, dtype=np.int64)
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, {world_size})")
    n = len(order)
    if world_size == 1:
        return order
    if pad:
        total = -(-n // world_size) * world_size
        if total > n and n > 0:
            reps = -(-(total - n) // n)
            order = np.concatenate([order] + [order] * reps)[:total]
    else:
        order = order[:n - n % world_size]
    return order[rank::world_size]


def split_batches(indices, batch_size, *, drop_last=False, worker=(0, 1)):
    """Consecutive runs of ``batch_size`` (the last shorter unless drop_last),
    then every ``worker[1]``-th batch from ``worker[0]``."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    n = len(indices)
    stop = n - n % batch_size if drop_last else n
    batches = [indices[i:i + batch_size] for i in range(0, stop, batch_size)]
    wid, nworkers = worker
    return batches[wid::nworkers]


def pool_block_nbytes(n):
    """Bytes the pool charges for a buffer of n bytes (its size class, from
    C's ``raster_pool_block_nbytes``)."""
    return _core.pool_block_nbytes(int(n)) if n > 0 else 0


def _name_sample(e, indices):
    """C's ``.index`` is the failing sample's position in the batch: make it
    the sample's index into ``samples`` (what a shuffled epoch needs) and
    keep the position as ``.batch_index``."""
    pos = getattr(e, "index", None)
    if isinstance(pos, int) and not hasattr(e, "batch_index"):
        e.batch_index = pos
        e.index = int(indices[pos]) if 0 <= pos < len(indices) else pos


def _dist_rank_world():
    try:
        import torch.distributed as dist
    except ImportError:
        return 0, 1
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _window_tuple(window):
    """A flat (col_off, row_off, width, height) tuple stays one; anything else
    is resolved by the dataset (Window, or ((r0, r1), (c0, c1)))."""
    if isinstance(window, tuple) and len(window) == 4 and not hasattr(window, "col_off"):
        return tuple(int(v) for v in window)
    return None


# --------------------------------------------------------------------------- batches

class Batch:
    """One batch: ``image`` ([B,H,W,C] :class:`Tile`), ``mask`` ([B,H,W] Tile of the
    label dtype, uint8 by default, or None), ``validity`` ([B,H,W] uint8 Tile of
    the images' validity masks with ``with_validity=True``, else None),
    ``indices`` (sample indices into the loader's samples).

    ``torch.from_dlpack(batch.image)`` and ``np.from_dlpack(batch.mask)`` share
    the pooled memory; it returns to the pool when the batch and all those
    tensors are gone (or right away for what :meth:`release` drops).
    """

    __slots__ = ("image", "mask", "validity", "indices", "__weakref__")

    def __init__(self, image, mask, indices, validity=None):
        self.image, self.mask, self.indices, self.validity = image, mask, indices, validity

    def __len__(self):
        return len(self.indices)

    def torch(self, layout="bchw"):
        """(image, mask) as torch tensors without a copy; 'bchw' is a permuted view."""
        import torch
        img = torch.from_dlpack(self.image)
        if layout == "bchw":
            img = img.permute(0, 3, 1, 2)
        elif layout != "bhwc":
            raise ValueError("layout must be 'bchw' or 'bhwc'")
        return img, (torch.from_dlpack(self.mask) if self.mask is not None else None)

    def numpy(self):
        """(image, mask) as NumPy arrays ([B,H,W,C], [B,H,W]) without a copy."""
        return (np.from_dlpack(self.image),
                np.from_dlpack(self.mask) if self.mask is not None else None)

    def release(self):
        """Drop the batch's own references (tensors made from it stay valid)."""
        for t in (self.image, self.mask, self.validity):
            if t is not None:
                t.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def __repr__(self):
        return f"<rasterloader.Batch {len(self)} samples image={self.image!r} mask={self.mask!r}>"


class WindowReader:
    """Reads samples ``(image_path, mask_path or None, window)`` by index, one
    batch per call, into pooled :class:`Batch` objects (:meth:`read`) or into
    the caller's arrays or tensors (:meth:`read_into`).  The reading half of
    :class:`BatchLoader`, used on its own by rasterloader.torch.

    Datasets are opened on first use and kept (metadata and a descriptor
    each; forked workers re-open descriptors lazily).  The pool is made on
    the first pooled read, so a reader that only reads into tensors has none.
    Parameters are :class:`BatchLoader`'s.
    """

    def __init__(self, samples, *, bands=None, out_dtype="float32", mean=None, std=None,
                 scale=None, offset=None, masks=True, mask_band=1, boundless=False,
                 fill_value=0.0, threads=None, pool=None, pool_bytes=None, timeout=60.0,
                 label_fill=0, label_dtype="uint8", with_validity=False, label_resample=False,
                 out_shape=None, resampling=Resampling.nearest):
        self.samples = samples
        self.bands = None if bands is None else [int(b) for b in bands]
        self.out_dtype = np.dtype(out_dtype).name
        self.masks, self.mask_band = bool(masks), int(mask_band)
        self.boundless, self.fill_value = bool(boundless), float(fill_value)
        self.label_fill, self.label_dtype = float(label_fill), np.dtype(label_dtype).name
        self.with_validity, self.label_resample = bool(with_validity), bool(label_resample)
        self.resampling = resampling_code(resampling, names=True)
        self.threads = 0 if threads is None else int(threads)
        self.timeout = timeout
        self._pool_arg = (pool, pool_bytes, pool is None)
        self._datasets = {}
        self._lock = threading.Lock()
        if len(samples) == 0:
            raise ValueError("no samples")
        self._geo = _geo.is_geo_sample(samples[0])
        if self._geo:
            self._init_geo(samples[0], out_shape, mean, std, scale, offset, boundless)
            return
        _, win, _, _ = self._resolve(samples[0])
        first = self._dataset(samples[0][0])
        self.channels = len(self.bands) if self.bands else first.count
        self.window_height, self.window_width = win[3], win[2]
        self.height, self.width = (win[3], win[2]) if out_shape is None else \
            out_hw(out_shape, self.channels)
        if self.boundless and (self.height, self.width) != (win[3], win[2]):
            raise NotImplementedError(
                f"out_shape {self.height}x{self.width} resamples the {win[3]}x{win[2]} windows, "
                "and a batch's resampled samples cannot be boundless (Dataset.read can)")
        where = f"{first.name} (bands {self.bands or list(first.indexes)})"
        self._norm = norm_kwargs(self.channels, mean, std, scale, offset, where=where)
        self._pool, self._pool_bytes, self._own_pool = pool, pool_bytes, pool is None
        self._check_labels()

    def _init_geo(self, sample, out_shape, mean, std, scale, offset, boundless):
        """Samples (mosaic, label or None, bounds): rasterloader.geo reads them."""
        if self.bands is not None or boundless:
            raise ValueError("geo samples (mosaic, label, bounds): choose bands with "
                             "Mosaic(bands=...); boundless does not apply (outside is nodata)")
        c, h, w = _geo.geo_shape(sample, None)
        self.channels, self.window_height, self.window_width = c, h, w
        self.height, self.width = (h, w) if out_shape is None else out_hw(out_shape, c)
        self._norm = norm_kwargs(c, mean, std, scale, offset, where=repr(sample[0]))
        self._pool, self._pool_bytes, self._own_pool = self._pool_arg
        if self.label_fill != int(self.label_fill) and np.dtype(self.label_dtype).kind in "iu":
            raise ValueError(f"label_fill {self.label_fill} does not fit {self.label_dtype}")

    def _read_geo(self, indices, image, mask, validity, layout):
        _geo.read_geo_batch(self, indices, image, mask, validity, layout, labels=self._datasets,
                            norm=self._norm)

    def _pooled_geo(self, indices):
        b, h, w, c = len(indices), self.height, self.width, self.channels
        tms = timeout_ms(self.timeout)
        pool = self._pool_for(b)
        image = _core.pool_tile(pool, self.out_dtype, h, w, c, tms, b)
        mask = _core.pool_tile(pool, self.label_dtype, h, w, 1, tms, b, True) \
            if self.masks else None
        validity = _core.pool_tile(pool, "uint8", h, w, 1, tms, b, True) \
            if self.with_validity else None
        self._read_geo(indices, np.from_dlpack(image),
                       None if mask is None else np.from_dlpack(mask),
                       None if validity is None else np.from_dlpack(validity), "bhwc")
        return Batch(image, mask, tuple(indices), validity)

    def _check_labels(self):
        """The label grid check (and label_fill against label_dtype), made now for
        every (image, label) pair the samples name up front: a sampler's
        sources, else the first sample.  Other pairs of a plain list are
        checked by the C batch read at their first read."""
        if not self.masks:
            return
        pairs = getattr(self.samples, "sources", None)
        if pairs is None:
            pairs = [tuple(self.samples[0][:2])]
        if not any(mask is not None for _, mask in pairs):
            pairs = [(pairs[0][0], None)]
        def key(x):                        # an open Dataset stands for itself
            return x if isinstance(x, Dataset) else str(x)
        for image, mask in dict.fromkeys((key(i), None if m is None else key(m))
                                         for i, m in pairs):
            _core.check_label_grid(
                core_of(self._dataset(image)),
                None if mask is None else core_of(self._dataset(mask)),
                label_resample=self.label_resample, label_fill=self.label_fill,
                label_dtype=self.label_dtype)

    # ------------------------------------------------------------ pickling
    def __getstate__(self):
        """Pickles without open datasets, lock or own pool (spawn/forkserver
        DataLoader workers): the copy opens what it reads and makes its own pool."""
        state = self.__dict__.copy()
        state["_datasets"], state["_lock"] = {}, None
        if state["_own_pool"]:
            state["_pool"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ------------------------------------------------------------ sizes
    def sample_nbytes(self):
        """Bytes of one sample's image, mask and validity mask."""
        hw = self.height * self.width
        n = hw * self.channels * np.dtype(self.out_dtype).itemsize
        n += hw * np.dtype(self.label_dtype).itemsize if self.masks else 0
        return n + (hw if self.with_validity else 0)

    def batch_nbytes(self, batch_size):
        """Pool bytes a batch of ``batch_size`` takes (image + mask + validity, in
        size-class blocks)."""
        h, w, c = self.height, self.width, self.channels
        n = pool_block_nbytes(batch_size * h * w * c * np.dtype(self.out_dtype).itemsize)
        if self.masks:
            n += pool_block_nbytes(batch_size * h * w * np.dtype(self.label_dtype).itemsize)
        if self.with_validity:
            n += pool_block_nbytes(batch_size * h * w)
        return n

    def _default_pool_bytes(self, batch_size=1):
        """Room for 4 batches of ``batch_size``: the one being read and
        three the caller may still hold."""
        return 4 * self.batch_nbytes(batch_size)

    @property
    def pool(self):
        """The BufferPool pooled reads use (made on first use)."""
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    budget = self._pool_bytes or self._default_pool_bytes()
                    self._pool = _core.BufferPool(int(budget))
        return self._pool

    def _pool_for(self, batch_size):
        """The pool for a read of ``batch_size`` samples.  The reader's own
        pool, when no ``pool_bytes`` was given, is sized from the requests it
        serves: a read larger than it was made for gets a new pool of
        :meth:`_default_pool_bytes` for that size (batches read from the old
        one stay valid; its memory goes when they do)."""
        pool = self.pool
        if self._own_pool and not self._pool_bytes:
            need = self._default_pool_bytes(batch_size)
            if pool.budget_bytes < need:
                with self._lock:
                    if self._pool.budget_bytes < need:
                        self._pool = _core.BufferPool(int(need))
                    pool = self._pool
        return pool

    # ------------------------------------------------------------ samples
    def _dataset(self, path):
        if isinstance(path, Dataset):
            return path           # an open Dataset or WarpedVRT: the caller's, used as is
        ds = self._datasets.get(path)
        if ds is None:
            with self._lock:
                ds = self._datasets.get(path)
                if ds is None:
                    ds = self._datasets[path] = _open(path)
        return ds

    def _resolve(self, sample):
        try:
            image, mask, window = sample
        except (TypeError, ValueError):
            raise TypeError(f"a sample is (image_path, mask_path or None, window), not "
                            f"{sample!r}") from None
        ds = self._dataset(image)
        win = _window_tuple(window)
        if win is None:
            win = _windows.resolve_window(window, ds.height, ds.width, self.boundless)
        if win[2] <= 0 or win[3] <= 0:
            raise ValueError(f"window {tuple(win)} of {image!r}: width and height must be > 0")
        label = None
        if mask is not None and self.masks:
            label = core_of(self._dataset(mask))
        return core_of(ds), win, label, self.mask_band if label is not None else 0

    def _items(self, indices):
        samples = self.samples
        items = []
        for pos, i in enumerate(indices):
            try:
                items.append(self._resolve(samples[i]))
            except RasterError as e:    # a file that does not open: that sample's error
                if getattr(e, "index", None) is None:
                    e.index, e.batch_index = int(i), pos
                raise
        return items

    # ------------------------------------------------------------ reads
    def read(self, indices):
        """Read the samples ``indices`` now (in this thread, on ``threads``
        threads) into a pooled :class:`Batch`."""
        if self._geo:
            return self._pooled_geo(indices)
        pool = self._pool_for(len(indices))
        try:
            image, mask, validity = _core.read_batch(
                self._items(indices), dtype=self.out_dtype, pool=pool, masks=self.masks,
                validity=self.with_validity, label_dtype=self.label_dtype, threads=self.threads,
                timeout_ms=timeout_ms(self.timeout),
                **self._read_kwargs())
        except PoolTimeoutError as e:
            budget = pool.budget_bytes
            raise PoolTimeoutError(
                f"{e} -- the pool ({budget / 2**20:.1f} MiB, "
                f"{budget // max(1, self.batch_nbytes(len(indices)))} batches of "
                f"{len(indices)}) stayed full for {self.timeout} s: batches (or tensors made "
                "from them) that are still referenced keep their memory; drop them, or give "
                "a larger pool_bytes", e.status) from None
        except RasterError as e:
            _name_sample(e, indices)
            raise
        return Batch(image, mask, tuple(indices), validity)

    def _read_kwargs(self):
        """What every batch read of this reader passes to C besides the items."""
        kw = dict(bands=self.bands, boundless=self.boundless, fill_value=self.fill_value,
                  label_fill=self.label_fill, label_resample=self.label_resample,
                  resampling=self.resampling, **self._norm)
        if (self.height, self.width) != (self.window_height, self.window_width):
            kw["out_hw"] = (self.height, self.width)
        return kw

    def read_into(self, indices, out, mask_out=None, layout="bhwc", validity_out=None):
        """Read the samples ``indices`` into ``out`` ([B,H,W,C], or [B,C,H,W] with
        layout='bchw'; any writable NumPy array or torch tensor, of any dtype),
        ``mask_out`` ([B,H,W] of any dtype that holds label_fill, or None for no
        masks) and ``validity_out`` ([B,H,W] uint8 validity masks, or None);
        returns (out, mask_out, validity_out)."""
        if self._geo:
            views = [None if a is None else np.from_dlpack(a) for a in (out, mask_out, validity_out)]
            self._read_geo(indices, *views, layout)
            return out, mask_out, validity_out
        try:
            return _core.read_batch(
                self._items(indices), out=out, mask_out=mask_out, validity_out=validity_out,
                layout=layout, threads=self.threads, **self._read_kwargs())
        except RasterError as e:
            _name_sample(e, indices)
            raise

    def close(self):
        """Close the datasets (and the reader's own pool; batches out stay valid)."""
        for ds in self._datasets.values():
            ds.close()
        self._datasets.clear()
        if self._own_pool and self._pool is not None:
            self._pool.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class BatchLoader(WindowReader):
    """Iterate over batches of windows read in parallel into pooled buffers.

    Parameters
    ----------
    samples : sequence of (image_path, mask_path or None, window)
        or a window sampler; ``samples.set_epoch(e)`` is called when present.
    batch_size : int
    bands : list of 1-based band numbers (default: all bands of the image).
    out_dtype : image dtype (default float32); masks are uint8.
    mean, std : per-band normalisation fused into the read: ``(x - mean) / std``
        computed in that order in double, then rounded once to ``out_dtype``
        (so x == mean gives exactly 0); or ``scale``/``offset``: ``x * scale +
        offset``.  A number, or one value per band (another length is a
        ValueError naming the file and the channel count).
    masks : read masks (default True): band ``mask_band`` of the sample's label
        raster, or the image's validity mask when the sample has none.
    label_fill, label_dtype : the label wherever a window reaches outside the
        label raster (boundless and edge windows), an ignore value such as 255
        (uint8, the default dtype) or -1 with ``label_dtype="int16"``; the mask
        buffer has ``label_dtype`` (labels convert with GDAL's saturating rules,
        and a label_fill the dtype cannot hold is a ValueError).  Default 0.
    with_validity : also the image's validity mask (rasterio's
        ``dataset_mask()``) of every sample, as ``batch.validity`` ([B,H,W]
        uint8), beside the labels.
    label_resample : a label raster must be on its image's grid (size,
        transform, CRS): another grid is a ValueError naming both files and
        grids (checked when the loader is made for a sampler's sources, else at
        a sample's first read).  True reads a label of the same CRS over the
        image window's bounds, resampled nearest onto the output pixels
        (label_fill where their centres fall outside the label raster).
    out_shape, resampling : output (height, width), resampled from the windows
        as rasterio's ``read(out_shape=..., resampling=...)``: the image and the
        validity mask with ``resampling``, labels always nearest.  Not with
        ``boundless``.
    boundless, fill_value : windows may reach outside the raster (fill there,
        mask 0).
    threads : samples read at once (default: the number of cores).
    prefetch : batches read ahead by a background thread (0: read on demand in
        the iterating thread).
    pool, pool_bytes : the BufferPool to use, or the budget of the loader's own
        (default: room for prefetch + 3 batches).
    shuffle, seed, drop_last : as torch's DataLoader, seeded per epoch.
    rank, world_size : shard for distributed training (default: from
        torch.distributed when initialised, else one shard); ``pad`` as
        :func:`shard_indices`.
    worker : ``(worker_id, num_workers)``: take every num_workers-th batch.
    timeout : seconds to wait for a full pool before PoolTimeoutError.
    """

    def __init__(self, samples, batch_size, *, prefetch=2, shuffle=False, seed=0,
                 drop_last=False, rank=None, world_size=None, pad=True, worker=(0, 1),
                 **reader_kwargs):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if prefetch < 0:
            raise ValueError("prefetch must be >= 0")
        self.batch_size = int(batch_size)
        self.prefetch = int(prefetch)
        super().__init__(samples, **reader_kwargs)
        self.shuffle, self.seed = bool(shuffle), int(seed)
        self.drop_last, self.pad = bool(drop_last), bool(pad)
        if rank is None and world_size is None:
            rank, world_size = _dist_rank_world()
        self.rank, self.world_size = int(rank or 0), int(world_size or 1)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is not in [0, {self.world_size})")
        self.worker = (int(worker[0]), int(worker[1]))
        self.epoch = 0

    def _default_pool_bytes(self, batch_size=0):
        return (self.prefetch + 3) * self.batch_nbytes(max(self.batch_size, batch_size))

    def set_epoch(self, epoch):
        """Use epoch ``epoch``'s order (and window draw, for RandomWindows)."""
        self.epoch = int(epoch)

    def plan(self, epoch=None):
        """This shard's batches of sample indices for an epoch (lists of ints)."""
        epoch = self.epoch if epoch is None else epoch
        if hasattr(self.samples, "set_epoch"):
            self.samples.set_epoch(epoch)
        order = epoch_order(len(self.samples), epoch, shuffle=self.shuffle, seed=self.seed)
        mine = shard_indices(order, self.rank, self.world_size, pad=self.pad)
        return [b.tolist() for b in split_batches(mine, self.batch_size,
                                                  drop_last=self.drop_last, worker=self.worker)]

    def __len__(self):
        n = len(self.samples)
        if self.world_size > 1:
            n = -(-n // self.world_size) if self.pad else n // self.world_size
        nb = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        wid, nw = self.worker
        return len(range(wid, nb, nw))

    def __iter__(self):
        plan = self.plan()
        if self.prefetch == 0:
            return (self.read(b) for b in plan)
        return _Prefetcher(self, plan)

    def __repr__(self):
        return (f"<rasterloader.BatchLoader {len(self.samples)} samples, batch {self.batch_size} "
                f"of {self.height}x{self.width}x{self.channels} {self.out_dtype}, "
                f"{len(self)} batches/epoch, rank {self.rank}/{self.world_size}>")


_DONE = object()


def _put(q, stop, item):
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _prefetch_run(q, stop, loader, plan):
    """The reader thread.  It holds the queue and the stop flag, never the
    iterator, so dropping the iterator runs its __del__, which stops this.
    (A rasterio.Env's options reach it by themselves: rasterio sets them in
    the GDAL rasterloader runs on, process-wide.)"""
    try:
        _prefetch_reads(q, stop, loader, plan)
    except BaseException as e:     # delivered to the consumer
        _put(q, stop, e)
        return
    _put(q, stop, _DONE)


def _prefetch_reads(q, stop, loader, plan):
    for indices in plan:
        if stop.is_set():
            return
        batch = loader.read(indices)
        if not _put(q, stop, batch):
            batch.release()
            return
        del batch


class _Prefetcher:
    """Reads a plan's batches on a daemon thread into a bounded queue.

    The reader blocks on the queue (depth ``prefetch``) and on the pool; the C
    read releases the GIL, so the consumer runs meanwhile.  An exception in the
    reader is re-raised in the consumer at the batch where it happened.
    Closing (or dropping) the iterator stops the reader and releases the
    batches it had queued."""

    def __init__(self, loader, plan):
        self._q = queue.Queue(maxsize=loader.prefetch)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=_prefetch_run,
                                        args=(self._q, self._stop, loader, plan),
                                        name="rasterloader-prefetch", daemon=True)
        self._thread.start()

    def __iter__(self):
        return self

    def __next__(self):
        if self._finished:
            raise StopIteration
        item = self._q.get()
        if item is _DONE:
            self.close()
            raise StopIteration
        if isinstance(item, BaseException):
            self.close()
            raise item
        return item

    def close(self):
        """Stop reading ahead and release the batches read but not taken."""
        self._finished = True
        self._stop.set()
        self._drain()          # unblocks a reader waiting on a full queue
        # The reader may be inside a read waiting for the pool; it notices the
        # stop when that returns and releases what it read.  Do not hang on it.
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        self._drain()          # what it queued while we were draining

    def _drain(self):
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, Batch):
                item.release()

    def __del__(self):
        if not self._finished:
            self.close()
