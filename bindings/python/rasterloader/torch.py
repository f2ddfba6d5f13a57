"""rasterloader.torch: PyTorch Datasets and samplers over rasterloader.

Three ways to feed a training loop, by where the reading happens (README,
"Training loader", lists the copies each makes):

1. In the training process, ``num_workers=0``: :class:`rasterloader.BatchLoader`
   reads each batch on its own threads (GIL released) into pooled memory that
   torch takes over through DLPack.  No copy after decode.

2. In DataLoader workers, whole batches: :class:`BatchDataset`, an
   IterableDataset that shards batches by worker (``get_worker_info``) and by
   rank, and reads each batch straight into a slot of the worker's batch ring
   (shared memory mapped once in the worker and in the main process, reused;
   rasterloader._ring), so the decode is the only write and the batch crosses
   to the main process as a slot number::

       ds = BatchDataset(samples, batch_size=16, mean=..., std=..., shuffle=True)
       loader = DataLoader(ds, batch_size=None, num_workers=2)

3. As a drop-in for a rasterio map-style Dataset: :class:`WindowDataset`
   returns one sample per index (CHW or HWC float tensor + uint8 mask) for the
   usual ``DataLoader(ds, batch_size=16, ...)``, whose collate then copies each
   sample once more into the batch.  Given a list of indices it reads a whole
   batch the way (2) does; :func:`dataloader` builds that DataLoader
   (``batch_size=None`` + a BatchSampler), which avoids the collate copy.

Sharding for DDP: :class:`ShardedSampler` (DistributedSampler semantics with a
per-epoch seed) for (3); ``rank``/``world_size`` (default: torch.distributed's)
on BatchLoader and BatchDataset.  Padding policy: :func:`rasterloader._loader.
shard_indices` (pad to equal shards by repeating the first samples of the
epoch's order, or ``pad=False`` / ``drop_last=True`` to drop the tail).

Window samplers (:class:`RandomWindows`, :class:`GridWindows`,
:class:`TileWindows`) are re-exported here.
"""

import contextlib
import os
import secrets

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, IterableDataset, Sampler, \
    get_worker_info

from . import _core, _ring
from ._loader import (BatchLoader, WindowReader, _dist_rank_world, epoch_order,
                      shard_indices)
from ._samplers import GridWindows, RandomWindows, TileWindows
from .errors import RasterError, _attributes_note

__all__ = ["WindowDataset", "BatchDataset", "ShardedSampler", "dataloader", "shared_empty",
           "RandomWindows", "GridWindows", "TileWindows"]

_TORCH_DTYPES = {"uint8": torch.uint8, "int8": torch.int8, "uint16": torch.uint16,
                 "int16": torch.int16, "uint32": torch.uint32, "int32": torch.int32,
                 "float16": torch.float16, "float32": torch.float32, "float64": torch.float64}


def _dtype_name(dt):
    if isinstance(dt, torch.dtype):
        return str(dt).replace("torch.", "")
    return np.dtype(dt).name


def shared_empty(shape, dtype):
    """An uninitialised tensor, in shared memory when called in a DataLoader
    worker.

    The storage is created in shared memory directly (as torch's own
    default_collate does in workers), not allocated privately and then moved
    with ``share_memory_()``, which would copy the whole block: so the read
    that fills it is the only write, and the tensor crosses to the main
    process as a file handle.  Outside workers it is ``torch.empty``."""
    dtype = _TORCH_DTYPES.get(_dtype_name(dtype), dtype)
    if get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    numel = 1
    for s in shape:
        numel *= int(s)
    nbytes = numel * torch.empty((), dtype=dtype).element_size()
    new_shared = getattr(torch.UntypedStorage, "_new_shared", None)
    if new_shared is None:          # a torch without it: one extra write, still correct
        return torch.empty(shape, dtype=dtype).share_memory_()
    return torch.empty(0, dtype=dtype).set_(new_shared(nbytes), 0, tuple(shape))


_worker_pid_single_threaded = None


def _threads(threads):
    """Threads for one batch read: as asked, else 1 in a DataLoader worker (the
    workers are the parallelism) and every core (0) in the main process.

    In a worker that was not given ``threads``, the first call also sets the
    worker process's per-read decode threads to 1 (``rasterloader.set_threads``,
    process-wide, so only that worker): otherwise each read of a large window
    would add decode threads on top of the workers (4 threads on 2 cores with
    2 workers)."""
    global _worker_pid_single_threaded
    if threads is not None:
        return int(threads)
    if get_worker_info() is None:
        return 0
    if _worker_pid_single_threaded != os.getpid():
        _core.set_threads(1)
        _worker_pid_single_threaded = os.getpid()
    return 1


@contextlib.contextmanager
def _worker_errors():
    """A rasterloader error raised in a DataLoader worker reaches the main
    process as ``type(exc)(traceback text)`` (torch's ExceptionWrapper sends
    text, not the exception): add its attributes (.index, .status, ...) to
    that text as a note, from which the class restores them."""
    try:
        yield
    except RasterError as e:
        if get_worker_info() is not None:
            e.add_note(_attributes_note(e))
        raise


def _pack(image, mask, validity, index, return_type):
    if return_type == "tuple":
        return tuple(t for t in (image, mask, validity) if t is not None) \
            if mask is not None or validity is not None else image
    out = {"image": image, "index": index}
    if mask is not None:
        out["mask"] = mask
    if validity is not None:
        out["validity"] = validity
    return out


def _torch_dtype(name):
    return _TORCH_DTYPES.get(_dtype_name(name), name)


def _batch_specs(reader, n, layout, with_index):
    """(shape, torch dtype) of a batch of ``n``: the image ([B,C,H,W], or
    [B,H,W,C] for layout "hwc"), the mask ([B,H,W] of the label dtype), the
    validity mask ([B,H,W] uint8) and the indices ([B] int64), each None when
    not asked for."""
    r = reader
    image = (n, r.height, r.width, r.channels) if layout == "hwc" else \
        (n, r.channels, r.height, r.width)
    return [(image, _torch_dtype(r.out_dtype)),
            ((n, r.height, r.width), _torch_dtype(r.label_dtype)) if r.masks else None,
            ((n, r.height, r.width), torch.uint8) if r.with_validity else None,
            ((n,), torch.int64) if with_index else None]


def _batch_buffers(owner, reader, n, layout, with_index, capacity):
    """Empty tensors for a batch of ``n`` samples (see _batch_specs): in a
    DataLoader worker, views of a slot of the worker's batch ring (made for
    batches of ``capacity``), or fresh shared tensors when the ring has no
    free slot (rasterloader._ring); outside workers plain tensors."""
    specs = _batch_specs(reader, n, layout, with_index)
    info = get_worker_info()
    if info is None:
        return [None if s is None else torch.empty(s[0], dtype=s[1]) for s in specs]
    return _ring.worker_buffers(owner._ring_token, specs,
                                _batch_specs(reader, max(n, capacity), layout, with_index),
                                owner.ring_slots, info.num_workers, shared_empty)


def _read_batch_tensors(reader, indices, layout, buffers):
    """Read ``indices`` with ``reader`` into ``buffers`` (_batch_buffers: image,
    mask, validity, index), and the indices into the index tensor."""
    image, mask, validity, index = buffers
    with _worker_errors():
        reader.read_into(indices, image, mask, layout="bhwc" if layout == "hwc" else "bchw",
                         validity_out=validity)
    if index is not None:
        index.numpy()[:] = indices
    return image, mask, validity, index


def _ring_slots(ring_slots):
    n = _ring.DEFAULT_SLOTS if ring_slots is None else int(ring_slots)
    if n < 0:
        raise ValueError(f"ring_slots must be >= 0 (0: no ring), not {ring_slots!r}")
    return n


class _RingOwner:
    """The batch ring's settings and counts of a worker-reading Dataset."""

    def _init_ring(self, ring_slots):
        self.ring_slots = _ring_slots(ring_slots)
        self._ring_token = secrets.token_hex(8)     # names this dataset's rings in every worker

    def ring_stats(self):
        """Batches this process received from DataLoader workers: in a ring slot
        (``ring_batches``) or in fresh shared tensors (``fresh_batches``, with
        the reasons in ``fresh_reasons``: no ring, ring dry because batches
        are kept, ...); ``rings_mapped``: this dataset's worker rings this process maps now;
        ``ring_slots``: the slots asked for per worker."""
        return dict(_ring.stats(self._ring_token), ring_slots=self.ring_slots)


class WindowDataset(_RingOwner, Dataset):
    """Map-style Dataset of windows: the drop-in for a rasterio Dataset.

    ``samples``: ``[(image_path, mask_path or None, window)]`` or a window
    sampler.  ``ds[i]`` is a dict ``{"image", "mask", "index"}`` (plus
    ``"validity"`` with ``with_validity=True``; or a tuple ``(image, mask[,
    validity])`` with ``return_type="tuple"``): the image as a float tensor
    (``out_dtype``) in ``layout`` "chw" (default) or "hwc", normalised with
    ``mean``/``std`` in the read, of ``out_shape`` when given; the mask as
    [H, W] of ``label_dtype`` (uint8 by default: the label band, ``label_fill``
    outside the label raster, or the image's validity mask; ``masks=False``
    leaves it out); the validity as [H, W] uint8.

    ``ds[[i, j, ...]]`` (a list of indices) reads a whole batch in one call,
    on ``threads`` threads (default: 1 inside DataLoader workers, every core
    outside), into [B, ...] tensors, in shared memory inside workers: see
    :func:`dataloader`; there the batches go through a ring as in
    :class:`BatchDataset` (``ring_slots``, :meth:`ring_stats`), its slots sized
    for the first batch.  Other parameters are :class:`rasterloader.BatchLoader`'s.
    """

    def __init__(self, samples, *, layout="chw", return_type="dict", threads=None,
                 ring_slots=None, **reader_kwargs):
        if layout not in ("chw", "hwc"):
            raise ValueError(f"layout must be 'chw' or 'hwc', not {layout!r}")
        if return_type not in ("dict", "tuple"):
            raise ValueError(f"return_type must be 'dict' or 'tuple', not {return_type!r}")
        self.layout, self.return_type = layout, return_type
        self.reader = WindowReader(samples, **reader_kwargs)
        self.samples = samples
        self.threads = threads
        self._init_ring(ring_slots)

    def __len__(self):
        return len(self.samples)

    def set_epoch(self, epoch):
        """Redraw the windows of a per-epoch sampler (RandomWindows)."""
        if hasattr(self.samples, "set_epoch"):
            self.samples.set_epoch(epoch)

    def read_batch(self, indices):
        """Samples ``indices`` as [B, C, H, W] (or [B, H, W, C]) + [B, H, W]
        tensors, in shared memory inside DataLoader workers."""
        indices = [int(i) for i in indices]
        r = self.reader
        r.threads = _threads(self.threads)
        dicts = self.return_type == "dict"
        capacity = self.__dict__.setdefault("_ring_capacity", len(indices))  # the first batch's
        buffers = _batch_buffers(self, r, len(indices), self.layout, dicts, capacity)
        image, mask, validity, index = _read_batch_tensors(r, indices, self.layout, buffers)
        return _pack(image, mask, validity, index, self.return_type)

    def __getitem__(self, index):
        if isinstance(index, (list, tuple, np.ndarray, torch.Tensor)):
            return self.read_batch(index)
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        r = self.reader
        _threads(self.threads)          # in a worker: single-threaded reads
        r.threads = 1                   # one sample: nothing to split
        buffers = [None if s is None else torch.empty(s[0], dtype=s[1])
                   for s in _batch_specs(r, 1, self.layout, False)]
        image, mask, validity, _ = _read_batch_tensors(r, [index], self.layout, buffers)
        return _pack(image[0], None if mask is None else mask[0],
                     None if validity is None else validity[0], index, self.return_type)


class ShardedSampler(Sampler):
    """DistributedSampler for window datasets: this rank's indices of an epoch.

    The epoch's order (shuffled with ``(seed, epoch)`` when ``shuffle``) is the
    same on every rank; rank r takes every world_size-th index of it, padded by
    repeating the first indices of the order (``drop_last=False``, the
    default: equal shards, at most world_size - 1 indices seen twice) or cut to
    a multiple of world_size (``drop_last=True``: disjoint shards).  ``rank`` /
    ``world_size`` default to torch.distributed's (one shard when it is not
    initialised).  Call :meth:`set_epoch` every epoch; it also redraws the
    windows of ``data_source`` when that has a ``set_epoch`` (RandomWindows,
    WindowDataset)."""

    def __init__(self, data_source, *, shuffle=True, seed=0, drop_last=False, rank=None,
                 world_size=None):
        self.data_source = data_source
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        if rank is None and world_size is None:
            rank, world_size = _dist_rank_world()
        self.rank, self.world_size = int(rank or 0), int(world_size or 1)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is not in [0, {self.world_size})")
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = int(epoch)
        if hasattr(self.data_source, "set_epoch"):
            self.data_source.set_epoch(self.epoch)

    def __iter__(self):
        order = epoch_order(len(self.data_source), self.epoch, shuffle=self.shuffle,
                            seed=self.seed)
        return iter(shard_indices(order, self.rank, self.world_size,
                                  pad=not self.drop_last).tolist())

    def __len__(self):
        n = len(self.data_source)
        return -(-n // self.world_size) if not self.drop_last else n // self.world_size


def dataloader(dataset, batch_size, *, sampler=None, shuffle=False, seed=0, drop_last=False,
               **kwargs):
    """A DataLoader over a :class:`WindowDataset` that reads whole batches.

    ``DataLoader(dataset, batch_size=None, sampler=BatchSampler(sampler,
    batch_size, drop_last))``: each step hands the dataset a list of indices,
    which it reads in one parallel call into (shared-memory) batch tensors, so
    there is no per-sample tensor and no collate copy.  ``sampler`` defaults to
    a :class:`ShardedSampler` (``shuffle``, ``seed``; sharded by rank when
    torch.distributed is initialised).  ``kwargs`` go to DataLoader
    (num_workers, persistent_workers, multiprocessing_context, ...)."""
    if sampler is None:
        sampler = ShardedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
    return DataLoader(dataset, batch_size=None,
                      sampler=BatchSampler(sampler, batch_size, drop_last), **kwargs)


class BatchDataset(_RingOwner, IterableDataset):
    """Whole batches read inside DataLoader workers: ``DataLoader(ds, batch_size=None,
    num_workers=k)``.

    The epoch's batches (the plan of a :class:`rasterloader.BatchLoader` with
    the same arguments: seeded shuffle, rank shard, drop_last) are dealt to
    the workers round-robin by ``get_worker_info()``, batch i to worker
    ``i % num_workers``, so the DataLoader yields them in plan order.  Each
    batch is read in one parallel call (``threads``; default 1 in a worker,
    where the workers are the parallelism, every core without workers)
    straight into a slot of the worker's batch ring: ``ring_slots`` (default 4:
    DataLoader's prefetch_factor 2, the batch the loop holds and the previous
    one) batch buffers in /dev/shm, mapped once in the worker and in the main
    process and reused once the main process dropped every tensor of the
    batch in it; the main process gets views of its mapping.  When no slot is
    free (the user keeps batches) or /dev/shm has no room for 2 slots (the
    rings take at most half of its size and of what is free, shared between
    the workers) the batch goes to fresh shared tensors (:func:`shared_empty`);
    :meth:`ring_stats` counts both, with the reasons.  ``ring_slots=0``: no
    ring.  Batches are dicts ``{"image": [B,C,H,W] (or
    [B,H,W,C] with layout="hwc"), "mask": [B,H,W] (label_dtype, uint8 by
    default), "index": [B]}`` plus ``"validity": [B,H,W] uint8`` with
    ``with_validity=True``, or tuples with ``return_type="tuple"``.

    ``rank``/``world_size`` are resolved when the dataset is made (from
    torch.distributed if initialised), in the main process.  Call
    :meth:`set_epoch` before each epoch's iteration (with
    ``persistent_workers=True`` the workers keep the epoch they started with).
    """

    def __init__(self, samples, batch_size, *, layout="chw", return_type="dict", shuffle=False,
                 seed=0, drop_last=False, rank=None, world_size=None, pad=True, threads=None,
                 ring_slots=None, **reader_kwargs):
        if layout not in ("chw", "hwc"):
            raise ValueError(f"layout must be 'chw' or 'hwc', not {layout!r}")
        if rank is None and world_size is None:
            rank, world_size = _dist_rank_world()
        self.layout, self.return_type = layout, return_type
        self.loader = BatchLoader(samples, batch_size, prefetch=0, shuffle=shuffle, seed=seed,
                                  drop_last=drop_last, rank=rank, world_size=world_size,
                                  pad=pad, **reader_kwargs)
        self.threads = threads
        self._init_ring(ring_slots)

    def set_epoch(self, epoch):
        self.loader.set_epoch(epoch)

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        info = get_worker_info()
        worker = (info.id, info.num_workers) if info is not None else (0, 1)
        lo = self.loader
        lo.threads = _threads(self.threads)
        plan = lo.plan()[worker[0]::worker[1]]
        dicts = self.return_type == "dict"
        for indices in plan:
            buffers = _batch_buffers(self, lo, len(indices), self.layout, dicts, lo.batch_size)
            image, mask, validity, index = _read_batch_tensors(lo, indices, self.layout, buffers)
            del buffers                 # the slot is reused once the batch's tensors are gone
            yield _pack(image, mask, validity, index, self.return_type)
            del image, mask, validity, index
