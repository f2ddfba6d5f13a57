"""Leave the shared tile-cache arena when a multiprocessing child ends.

The arena (one per user and machine, in /dev/shm) is unlinked by the last process
that leaves it, which the C library does at exit().  multiprocessing children
(DataLoader workers, with any start method) end with os._exit() after running
multiprocessing's finalizers, so without this the workers of a run whose main
process never read would leave the arena's memory in /dev/shm until the next run
reuses it.  multiprocessing clears its finalizers in every new child and then runs
its after-fork hooks: the hook registers the finalizer there.
"""

from multiprocessing import util

from . import _core


class _Hook:
    """A weak-referenceable key for multiprocessing's after-fork registry."""


def _register_finalizer(_hook):
    util.Finalize(_hook, _core._tile_cache_detach, exitpriority=0)


_HOOK = _Hook()
util.register_after_fork(_HOOK, _register_finalizer)
