"""The per-process default BufferPool used by Dataset.read_hwc() without pool=.

Budget: RASTERLOADER_POOL_BYTES (an integer, optionally with a K/M/G suffix)
or 256 MiB.  256 MiB holds 256 float32 tiles of 256x256x4 (1 MiB each) at
once, far more than a DataLoader needs in flight, and it is a ceiling, not an
allocation: blocks are made on first use and reused by size class.  Each
process has its own pool; a forked DataLoader worker inherits the parent's
pool object (the C pool is fork-safe), and a tile read in the worker lives
in the worker's memory.
"""

import os
import threading

from ._core import BufferPool

DEFAULT_POOL_BYTES = 256 << 20
_lock = threading.Lock()
_pool = None


def _parse_bytes(text):
    text = text.strip().upper().rstrip("B").rstrip("I")
    mult = 1
    if text and text[-1] in "KMG":
        mult = 1 << {"K": 10, "M": 20, "G": 30}[text[-1]]
        text = text[:-1]
    value = int(float(text) * mult)
    if value <= 0:
        raise ValueError
    return value


def default_pool_budget():
    """The byte budget the default pool gets (env RASTERLOADER_POOL_BYTES or 256 MiB)."""
    env = os.environ.get("RASTERLOADER_POOL_BYTES")
    if not env:
        return DEFAULT_POOL_BYTES
    try:
        return _parse_bytes(env)
    except ValueError:
        raise ValueError(f"RASTERLOADER_POOL_BYTES={env!r} is not a positive byte count "
                         "(e.g. 268435456, 512M, 2G)") from None


def default_pool():
    """The process's default BufferPool, made on first use."""
    global _pool
    with _lock:
        if _pool is None or _pool.closed:
            _pool = BufferPool(default_pool_budget())
        return _pool
