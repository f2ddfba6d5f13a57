"""Batch rings: the shared-memory batch buffers of DataLoader workers, mapped
once and reused (rasterloader.torch's BatchDataset and batched WindowDataset).

Why: a batch read into a fresh shared tensor pays, besides the read, the
allocation, the worker's first-touch page faults, the descriptor passing and
mmap in the main process, the main's own first-touch faults and an munmap in
both processes: about three times the read itself for a 32 x 256 x 256 x 4
float32 batch (bench/results/loader_breakdown.md).  A ring pays them once.

How (all of it in this file; rasterloader.torch only asks for buffers):

- Each worker makes, at its first batch of a dataset, one file of ``slots``
  slots in /dev/shm (a slot holds one batch: image, mask, validity, indices,
  each region page-aligned), reserves it with posix_fallocate (a full
  /dev/shm is an error then, answered by not making the ring, never a SIGBUS
  later), maps it once (MAP_POPULATE) and unlinks it at once: a process that
  dies leaves nothing in /dev/shm, and the memory goes with the last mapping.
  A pipe carries the main process's releases back to the worker.
- A batch is read into a free slot; its tensors are views of the slot.  When
  the DataLoader pickles the batch for the main process (torch's
  ForkingPickler, in the worker's queue feeder thread), a view's storage is
  sent as (ring, slot, offset, size), not as a file descriptor: the worker
  registers a reducer for torch.UntypedStorage that hands every other storage
  to torch's own.  Until the main process says it mapped the ring (a byte in
  the pipe), the batches also carry the ring's and the pipe's descriptors.
- The main process maps each ring once (MAP_POPULATE) and rebuilds each
  storage as a NumPy-backed view of that mapping; a finalizer on the view,
  run when torch frees the storage (the loop, the user, pin_memory dropped
  every tensor on it), writes the slot number into the pipe.
- In the worker a slot is free when no storage sent from it is still held
  by the main process (sends counted in the reducer, releases read from the
  pipe) and no view of it is alive in the worker (the queue pickles in a
  thread, after the worker moved on).  A batch finds no free slot when the
  user keeps batches: it is read into fresh shared tensors as before, counted
  with the reason; nothing waits, nothing held is overwritten.
- Ordering: the main writes the release after its last access to the pixels
  and the worker reads it before its next write into the slot; the pipe's
  lock orders the two on every architecture.  A forked child of either
  process never sends releases or ring references (pid checks): its copies
  of the objects are not the owner's.

Room rule (ring_slots_for): all the rings of a DataLoader take at most half
of /dev/shm's size and half of what is free when a worker makes its ring,
shared equally between the workers (the tile cache arena takes at most a
quarter, lib/shm_arena.c; the rest is for torch's own shared tensors and the
fallback batches).  Fewer slots than wanted when that is short; no ring (every
batch fresh, the reason in the stats) under 2 slots: a 64 MB docker /dev/shm.

Stats: the main process counts, per dataset, the batches received through a
ring slot and those received in fresh tensors with the reason
(:func:`stats`).
"""

import collections
import itertools
import mmap
import os
import secrets
import select
import struct
import threading
import weakref
from multiprocessing import reduction

import numpy as np
import torch

PAGE = mmap.PAGESIZE
SHM_DIR = "/dev/shm"
HELLO = 0xFFFF                      # in the pipe: the main process mapped the ring
MIN_SLOTS = 2                       # one slot in flight and one being read, at least
DEFAULT_SLOTS = 4                   # DataLoader's prefetch_factor (2) + the batch the loop
                                    # holds + the previous one, held until next() returns

_serial = itertools.count()


def _round_up(n, to=PAGE):
    return -(-int(n) // to) * to


def _tag():
    return os.environ.get("RASTERLOADER_TILE_CACHE_NAME") or "default"


def name_prefix():
    """The /dev/shm name every ring file of this user and arena tag starts with
    (RASTERLOADER_TILE_CACHE_NAME, as the tile cache's arena): a ring file
    exists under it only between its creation and its unlink."""
    return os.path.join(SHM_DIR, f"rasterloader-ring-{os.getuid()}-{_tag()}-")


def ring_slots_for(slot_bytes, want, workers, shm_dir=SHM_DIR):
    """(slots, reason): the slots of one worker's ring under the room rule (module
    docstring); 0 slots with the reason when under MIN_SLOTS."""
    try:
        v = os.statvfs(shm_dir)
    except OSError as e:
        return 0, f"{shm_dir} is not usable ({e.strerror})"
    size, free = v.f_blocks * v.f_frsize, v.f_bavail * v.f_frsize
    room = min(size // 2, free // 2) // max(1, int(workers))
    n = min(int(want), room // slot_bytes)
    if n < MIN_SLOTS:
        return 0, (f"no ring: {shm_dir} ({size / 2**20:.0f} MiB, {free / 2**20:.0f} MiB free) leaves "
                   f"{room / 2**20:.0f} MiB per worker, under {MIN_SLOTS} slots of "
                   f"{slot_bytes / 2**20:.1f} MiB")
    return n, None


# ------------------------------------------------------------------ main side
# Counts per dataset token: batches received in ring slots, in fresh tensors.
_counts = collections.defaultdict(lambda: {"ring_batches": 0, "fresh_batches": 0,
                                           "fresh_reasons": collections.Counter()})
_main_rings = {}                    # ring key -> _MainRing
_main_lock = threading.RLock()      # reentrant: a finalizer may run in any allocation


def stats(token):
    """The main process's counts for the dataset ``token`` (a copy), after
    unmapping the rings nobody uses any more."""
    with _main_lock:
        _sweep()
        c = _counts.get(token)
        out = {"ring_batches": 0, "fresh_batches": 0, "fresh_reasons": {}} if c is None else \
            {"ring_batches": c["ring_batches"], "fresh_batches": c["fresh_batches"],
             "fresh_reasons": dict(c["fresh_reasons"])}
        # This dataset's rings only: other loaders' rings (kept while their
        # batches live) are theirs.
        out["rings_mapped"] = sum(1 for r in _main_rings.values() if r.token == token)
    return out


def in_ring(tensor):
    """Whether ``tensor``'s memory is in a worker ring this process maps: a batch
    that came by slot (torch's is_shared() says False for it: the storage is a
    view of the ring's mapping, not a torch shared-memory allocation)."""
    ptr = tensor.untyped_storage().data_ptr()
    with _main_lock:
        return any(0 <= ptr - r.base.ctypes.data < len(r.mm) for r in _main_rings.values()
                   if r.base is not None)


def _count(token, kind, reason=None):
    with _main_lock:
        c = _counts[token]
        c[kind] += 1
        if reason:
            c["fresh_reasons"][reason] += 1


class _MainRing:
    """A worker's ring as the main process maps it (once)."""

    def __init__(self, fd, wfd, size):
        self.pid = os.getpid()
        self.mm = mmap.mmap(fd, size, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0))
        self.base = np.frombuffer(self.mm, np.uint8)
        self.wfd = wfd
        os.set_blocking(wfd, False)
        self.held = 0                   # storages of it alive in this process
        self.token = None               # the dataset it serves (known from its first image)
        self.dead = False               # its worker is gone (the pipe has no reader)
        self._send(HELLO)

    def _send(self, word):
        try:
            os.write(self.wfd, struct.pack("<H", word))
        except OSError:                 # EPIPE: the worker is gone, nobody reuses the slot
            self.dead = True

    def storage(self, slot, offset, nbytes):
        view = self.base[offset:offset + nbytes]
        storage = torch.from_numpy(view).untyped_storage()
        self.held += 1                  # under _main_lock (the caller)
        weakref.finalize(view, self._release, slot).atexit = False
        return storage

    def _release(self, slot):
        if os.getpid() != self.pid:     # a forked child's copy: not ours to release
            return
        with _main_lock:
            self.held -= 1
            self._send(slot)

    def worker_gone(self):
        if self.dead:
            return True
        p = select.poll()
        p.register(self.wfd, select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in p.poll(0))

    def close(self):
        """Unmap; False while views of it are alive (close again later)."""
        self.base = None
        try:
            self.mm.close()
        except BufferError:
            self.base = np.frombuffer(self.mm, np.uint8)
            return False
        os.close(self.wfd)
        return True


def _sweep():
    """Unmap the rings whose worker is gone and whose batches were all dropped
    (at each new ring and before a fork, so that new workers do not inherit
    them).  Called with _main_lock held."""
    for key, ring in list(_main_rings.items()):
        if ring.pid == os.getpid() and ring.held == 0 and ring.worker_gone() and ring.close():
            del _main_rings[key]


def _sweep_before_fork():
    if _main_lock.acquire(blocking=False):
        try:
            _sweep()
        finally:
            _main_lock.release()


def _forget_in_child():
    """A forked child keeps the parent's mappings (MAP_SHARED: the same pages)
    but must never release or sweep them: the parent's records are dropped
    without unmapping (views the child inherited stay valid)."""
    global _main_lock
    _main_lock = threading.RLock()
    _main_rings.clear()
    _counts.clear()


os.register_at_fork(before=_sweep_before_fork, after_in_child=_forget_in_child)


def _detach(fds):
    return [df.detach() for df in fds] if fds else []


def _received_ring(key, fds, size, slot, offset, nbytes, token):
    """Unpickled in the main process: a storage on slot ``slot`` of ring ``key``."""
    fds = _detach(fds)
    try:
        with _main_lock:
            ring = _main_rings.get(key)
            if ring is None:
                if not fds:
                    raise RuntimeError(f"rasterloader batch ring {key}: a batch came before the "
                                       "ring's descriptors (a batch pickled outside the DataLoader?)")
                _sweep()
                ring = _main_rings[key] = _MainRing(fds[0], fds.pop(1), size)
            if token is not None:
                ring.token = token
                _counts[token]["ring_batches"] += 1
            return ring.storage(slot, offset, nbytes)
    finally:
        for fd in fds:
            os.close(fd)


def _received_fresh(token, reason, rebuild, args):
    """Unpickled in the main process: a batch in a fresh shared tensor (torch's
    own hand-off), counted."""
    _count(token, "fresh_batches", reason)
    return rebuild(*args)


# ---------------------------------------------------------------- worker side
_worker_rings = {}                  # (dataset token, pid) -> _WorkerRing or why there is none
_fresh_tags = {}                    # data_ptr of a fresh batch's image storage -> (token, reason)
_torch_reduce_storage = None


def _reduce_storage(storage):
    """The worker's reducer for torch.UntypedStorage: a ring view goes by slot,
    a fresh batch image by torch's reducer with a count, anything else to
    torch's reducer unchanged."""
    ptr = storage.data_ptr()
    for ring in _worker_rings.values():
        if isinstance(ring, _WorkerRing) and ring.owns(ptr):
            return ring.reduce(ptr, storage.nbytes())
    rebuild, args = _torch_reduce_storage(storage)
    tag = _fresh_tags.pop(ptr, None)
    if tag is None:
        return rebuild, args
    return _received_fresh, (tag[0], tag[1], rebuild, args)


def _install_reducer():
    global _torch_reduce_storage
    import torch.multiprocessing  # noqa: F401  (registers torch's reducers first)
    current = reduction.ForkingPickler._extra_reducers.get(torch.UntypedStorage)
    if current is not _reduce_storage:
        _torch_reduce_storage = current
        reduction.ForkingPickler.register(torch.UntypedStorage, _reduce_storage)


class _WorkerRing:
    """A worker's ring: ``nslots`` slots of ``region_bytes`` regions each."""

    def __init__(self, token, region_bytes, nslots):
        self.token, self.pid = token, os.getpid()
        offs, at = [], 0
        for n in region_bytes:
            offs.append(at)
            at += _round_up(n)
        self.region_offsets, self.region_bytes = offs, list(region_bytes)
        self.slot_bytes, self.nslots = at, nslots
        self.size = at * nslots
        self.key = (self.pid, next(_serial), secrets.token_hex(4))
        path = f"{name_prefix()}{self.pid}-{self.key[1]}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        os.unlink(path)
        try:
            os.posix_fallocate(fd, 0, self.size)    # ENOSPC now, not SIGBUS on a touch
            self.mm = mmap.mmap(fd, self.size,
                                flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0))
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        self.rfd, self.wfd = os.pipe()
        os.set_blocking(self.rfd, False)
        self.base = np.frombuffer(self.mm, np.uint8)
        self.base_ptr = self.base.ctypes.data
        self.outstanding = [0] * nslots     # storages sent, not released by the main process
        self.local = [0] * nslots           # views alive in this process
        self.lock = threading.RLock()     # reentrant: a finalizer may run in any allocation
        self.acked = False
        self.next = 0

    def owns(self, ptr):
        return self.pid == os.getpid() and 0 <= ptr - self.base_ptr < self.size

    def _drain(self):
        while True:
            try:
                data = os.read(self.rfd, 65536)
            except BlockingIOError:
                return
            if not data:
                return
            with self.lock:
                for (word,) in struct.iter_unpack("<H", data):
                    if word == HELLO:
                        self._acked()
                    else:
                        self.outstanding[word] -= 1

    def _acked(self):
        """The main process mapped the ring: later batches go by slot alone."""
        if not self.acked:
            self.acked = True
            os.close(self.fd)
            os.close(self.wfd)

    def take(self):
        """A free slot (now held by this process), or None."""
        self._drain()
        with self.lock:
            for k in range(self.nslots):
                s = (self.next + k) % self.nslots
                if self.outstanding[s] == 0 and self.local[s] == 0:
                    self.next = (s + 1) % self.nslots
                    self.local[s] += 1          # held until the views exist
                    return s
        return None

    def views(self, slot, specs):
        """Tensors on slot ``slot``, one per (shape, torch dtype) of ``specs`` (None
        stays None); the slot is free again once all of them and their sends
        are gone."""
        out = []
        for (spec, off) in zip(specs, self.region_offsets):
            if spec is None:
                out.append(None)
                continue
            shape, dtype = spec
            nbytes = _nbytes(spec)
            start = slot * self.slot_bytes + off
            view = self.base[start:start + nbytes]
            with self.lock:
                self.local[slot] += 1
            weakref.finalize(view, self._local_release, slot).atexit = False
            out.append(torch.from_numpy(view).view(dtype).view(shape))
        with self.lock:
            self.local[slot] -= 1               # take()'s hold
        return out

    def _local_release(self, slot):
        if os.getpid() == self.pid:
            with self.lock:
                self.local[slot] -= 1

    def reduce(self, ptr, nbytes):
        offset = ptr - self.base_ptr
        slot = offset // self.slot_bytes
        with self.lock:                 # _acked closes the descriptors under it
            self.outstanding[slot] += 1
            fds = None if self.acked else (reduction.DupFd(self.fd), reduction.DupFd(self.wfd))
        token = self.token if offset % self.slot_bytes == 0 else None   # the image: one per batch
        return _received_ring, (self.key, fds, self.size, slot, offset, nbytes, token)


def _nbytes(spec):
    shape, dtype = spec
    return int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


def worker_buffers(token, specs, capacity_specs, want_slots, workers, fresh):
    """The tensors of one batch in a DataLoader worker: views of a slot of this
    worker's ring for dataset ``token`` (made at the first call, its slots
    sized for ``capacity_specs``), else ``fresh(shape, dtype)`` tensors, whose
    image is tagged with the reason for the main process's count."""
    key = (token, os.getpid())          # a forked child makes its own
    ring = _worker_rings.get(key)
    if ring is None:
        ring = _worker_rings[key] = _make_ring(token, capacity_specs, want_slots, workers)
    reason = ring if isinstance(ring, str) else None
    if reason is None:
        if any(s is not None and _nbytes(s) > n
               for s, n in zip(specs, ring.region_bytes)):
            reason = f"batch of {specs[0][0][0]} samples larger than the ring's slots"
        else:
            slot = ring.take()
            if slot is not None:
                return ring.views(slot, specs)
            reason = f"ring dry: all {ring.nslots} slots held"
    out = [None if s is None else fresh(*s) for s in specs]
    _fresh_tags[out[0].untyped_storage().data_ptr()] = (token, reason)
    if len(_fresh_tags) > 64:                  # tags of batches never pickled
        _fresh_tags.pop(next(iter(_fresh_tags)))
    return out


def _make_ring(token, capacity_specs, want_slots, workers):
    """A ring for dataset ``token`` in this worker, or the reason there is none."""
    _install_reducer()
    if want_slots <= 0:
        return "ring off (ring_slots=0)"
    region_bytes = [0 if s is None else _nbytes(s) for s in capacity_specs]
    slot_bytes = sum(_round_up(n) for n in region_bytes)
    n, reason = ring_slots_for(slot_bytes, want_slots, workers)
    if n == 0:
        return reason
    try:
        return _WorkerRing(token, region_bytes, n)
    except OSError as e:
        return f"no ring: {e.strerror or e}"
