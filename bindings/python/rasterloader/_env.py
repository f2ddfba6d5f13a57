"""rasterio.Env for rasterloader's own GDAL.

rasterloader links its own GDAL (Debian's), rasterio bundles another, so the
options a ``rasterio.Env(...)`` sets (credentials, HTTP headers,
``GDAL_DISABLE_READDIR_ON_OPEN``, ...) never reach rasterloader's GDAL by
themselves.  Every entry that calls into C is wrapped
by :func:`with_gdal_env`, which reads the options of the Env active in the calling
thread (rasterio keeps it per thread, in ``rasterio.env.local``) and pushes
them to C (``raster_gdal_config_push``) as thread-local GDAL options for the
duration of the call, on every thread that does GDAL work for it; the pop
afterwards restores what was there before.

rasterio is never imported here: if the program has not imported it, no Env
can be active and nothing changes (one dict lookup per call).
"""

import contextlib
import functools
import sys

from . import _core

# Not passed on: rasterio's marker that an Env is active, and the data
# directories rasterio points at its own bundled GDAL and PROJ (another GDAL
# version's data files would not match the GDAL rasterloader links).
_NOT_PASSED = frozenset({"RASTERIO_ENV", "GDAL_DATA", "PROJ_DATA", "PROJ_LIB"})


def _gdal_value(v):
    # As rasterio's set_gdal_config(): booleans are ON/OFF, the rest str().
    if v is True:
        return "ON"
    if v is False:
        return "OFF"
    return str(v)


def active_options():
    """The GDAL options of the rasterio.Env active in this thread, as a tuple
    of ``(KEY, "value")`` pairs (credentials from ``session=`` included, the
    data directories of rasterio's own GDAL and PROJ left out), or None when
    rasterio is not imported or no Env is active (or it sets nothing else)."""
    env = sys.modules.get("rasterio.env")
    if env is None:
        return None
    local = getattr(env, "local", None)
    if local is None or not getattr(local, "_env", None):
        return None
    try:
        options = env.getenv()
    except Exception:          # an Env being torn down on this thread
        return None
    return tuple((str(k), _gdal_value(v)) for k, v in options.items()
                 if k not in _NOT_PASSED and v is not None) or None


@contextlib.contextmanager
def gdal_options(options):
    """Push ``options`` (``active_options()``'s pairs, or None for nothing)
    for the calls made in the block on this thread."""
    if not options:
        yield
        return
    _core.gdal_config_push(options)
    try:
        yield
    finally:
        _core.gdal_config_pop()


def with_gdal_env(fn):
    """Decorator for the public entries (open, read, read_masks, read_hwc,
    loader reads): the body runs with the calling thread's rasterio.Env
    options pushed (:func:`gdal_options`)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        options = active_options()
        if not options:
            return fn(*args, **kwargs)
        with gdal_options(options):
            return fn(*args, **kwargs)
    return wrapper
