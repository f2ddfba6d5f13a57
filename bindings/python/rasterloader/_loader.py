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
(rasterio's ``dataset_mask()``).  A window is a rasterio/rasterloader
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

from . import _core
from ._dataset import open as _open
from ._env import active_options, gdal_options, with_gdal_env
from .errors import PoolTimeoutError, RasterError

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


def _norm_args(n, mean, std, scale, offset):
    if (mean is not None or std is not None) and (scale is not None or offset is not None):
        raise ValueError("give scale/offset or mean/std, not both")
    if mean is not None or std is not None:
        m = np.broadcast_to(np.asarray(0.0 if mean is None else mean, np.float64), (n,))
        s = np.broadcast_to(np.asarray(1.0 if std is None else std, np.float64), (n,))
        if np.any(s == 0):
            raise ValueError("std must be nonzero")
        return (1.0 / s).tolist(), (-m / s).tolist()
    if scale is not None:
        scale = np.broadcast_to(np.asarray(scale, np.float64), (n,)).tolist()
    if offset is not None:
        offset = np.broadcast_to(np.asarray(offset, np.float64), (n,)).tolist()
    return scale, offset


# --------------------------------------------------------------------------- batches

class Batch:
    """One batch: ``image`` ([B,H,W,C] :class:`Tile`), ``mask`` ([B,H,W] uint8 Tile
    or None), ``indices`` (sample indices into the loader's samples).

    ``torch.from_dlpack(batch.image)`` and ``np.from_dlpack(batch.mask)`` share
    the pooled memory; it returns to the pool when the batch and all those
    tensors are gone (or right away for what :meth:`release` drops).
    """

    __slots__ = ("image", "mask", "indices", "__weakref__")

    def __init__(self, image, mask, indices):
        self.image, self.mask, self.indices = image, mask, indices

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
        for t in (self.image, self.mask):
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
                 fill_value=0.0, threads=None, pool=None, pool_bytes=None, timeout=60.0):
        self.samples = samples
        self.bands = None if bands is None else [int(b) for b in bands]
        self.out_dtype = np.dtype(out_dtype).name
        self.masks, self.mask_band = bool(masks), int(mask_band)
        self.boundless, self.fill_value = bool(boundless), float(fill_value)
        self.threads = 0 if threads is None else int(threads)
        self.timeout = timeout
        self._datasets = {}
        self._lock = threading.Lock()
        if len(samples) == 0:
            raise ValueError("no samples")
        _, win, _, _ = self._resolve(samples[0])
        self.channels = len(self.bands) if self.bands else self._dataset(samples[0][0]).count
        self.height, self.width = win[3], win[2]
        self._scale, self._offset = _norm_args(self.channels, mean, std, scale, offset)
        self._pool, self._pool_bytes, self._own_pool = pool, pool_bytes, pool is None

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
        """Bytes of one sample's image and mask."""
        n = self.height * self.width * self.channels * np.dtype(self.out_dtype).itemsize
        return n + (self.height * self.width if self.masks else 0)

    def batch_nbytes(self, batch_size):
        """Pool bytes a batch of ``batch_size`` takes (image + mask, in size-class
        blocks)."""
        h, w, c = self.height, self.width, self.channels
        n = pool_block_nbytes(batch_size * h * w * c * np.dtype(self.out_dtype).itemsize)
        if self.masks:
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
            win = ds._resolve_window(window, self.boundless)
        if win[2] <= 0 or win[3] <= 0:
            raise ValueError(f"window {tuple(win)} of {image!r}: width and height must be > 0")
        label = None
        if mask is not None and self.masks:
            label = self._dataset(mask)._core
        return ds._core, win, label, self.mask_band if label is not None else 0

    def _items(self, indices):
        samples = self.samples
        return [self._resolve(samples[i]) for i in indices]

    # ------------------------------------------------------------ reads
    @with_gdal_env
    def read(self, indices):
        """Read the samples ``indices`` now (in this thread, on ``threads``
        threads) into a pooled :class:`Batch`."""
        pool = self._pool_for(len(indices))
        try:
            image, mask = _core.read_batch(
                self._items(indices), dtype=self.out_dtype, pool=pool, bands=self.bands,
                scale=self._scale, offset=self._offset, boundless=self.boundless,
                fill_value=self.fill_value, masks=self.masks, threads=self.threads,
                timeout_ms=-1 if self.timeout is None else int(self.timeout * 1000))
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
        return Batch(image, mask, tuple(indices))

    @with_gdal_env
    def read_into(self, indices, out, mask_out=None, layout="bhwc"):
        """Read the samples ``indices`` into ``out`` ([B,H,W,C], or [B,C,H,W] with
        layout='bchw'; any writable NumPy array or torch tensor, of any dtype)
        and ``mask_out`` ([B,H,W] uint8, or None for no masks); returns
        (out, mask_out)."""
        try:
            return _core.read_batch(
                self._items(indices), out=out, mask_out=mask_out, layout=layout, bands=self.bands,
                scale=self._scale, offset=self._offset, boundless=self.boundless,
                fill_value=self.fill_value, threads=self.threads)
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
    mean, std : per-band normalisation, ``(x - mean) / std`` fused into the read
        (or ``scale``/``offset``: ``x * scale + offset``).
    masks : read masks (default True): band ``mask_band`` of the sample's label
        raster, or the image's validity mask when the sample has none.
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


def _prefetch_run(q, stop, loader, plan, options):
    """The reader thread.  It holds the queue and the stop flag, never the
    iterator, so dropping the iterator runs its __del__, which stops this.
    ``options``: the rasterio.Env options of the thread that started the
    iteration, which rasterio keeps per thread: pushed here for every read."""
    try:
        with gdal_options(options):
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
                                        args=(self._q, self._stop, loader, plan,
                                              active_options()),
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
