"""Exceptions raised by rasterloader.

Every failure of the C library arrives as a subclass of :class:`RasterError`
carrying ``.status`` (the C ``raster_status_t`` value), ``.status_name``
(``"RASTER_E_..."``) and the C detail message (naming file, window and cause)
as ``str(exc)``.  Each class also subclasses the built-in exception a caller
would expect, so ``except FileNotFoundError`` or ``except ValueError`` keep
working when swapping rasterio for rasterloader:

===================== ================================ ==========================
C status              class                            also a
===================== ================================ ==========================
RASTER_E_INVALID_ARG  InvalidArgumentError             ValueError
RASTER_E_IO           RasterIOError                    OSError
  (missing file)      RasterFileNotFoundError          FileNotFoundError
RASTER_E_FORMAT       FormatError                      OSError
RASTER_E_CORRUPT      CorruptError                     OSError
RASTER_E_UNSUPPORTED  UnsupportedError                 NotImplementedError
RASTER_E_NOMEM        RasterMemoryError                MemoryError
RASTER_E_BOUNDS       WindowError                      ValueError
RASTER_E_TIMEOUT      PoolTimeoutError                 TimeoutError
RASTER_E_CLOSED       ClosedError                      ValueError
===================== ================================ ==========================

A band number out of range raises :class:`BandIndexError` (an IndexError, as
rasterio does).

When rasterio is importable, the classes are also rasterio's, so code written
for rasterio catches them unchanged: open, read and closed-dataset failures
(RasterIOError, RasterFileNotFoundError, FormatError, CorruptError,
UnsupportedError, ClosedError) are ``rasterio.errors.RasterioIOError``,
window errors are ``rasterio.errors.WindowError``, :class:`RasterBlockError`
and :class:`StatisticsError` are rasterio's classes of those names, and
:class:`RasterloaderDeprecationWarning` is a ``RasterioDeprecationWarning``.
Without rasterio they have only the bases in the table.

Attributes survive process boundaries: pickling keeps every attribute
(``.status``, ``.message``, a failing sample's ``.index``, ...), and so does
torch's DataLoader, which does not pickle a worker's exception but re-raises
``type(exc)(text)`` in the main process from the worker's formatted traceback
(torch/_utils.py, ExceptionWrapper).  rasterloader.torch's Datasets add the
attributes to that traceback as one note line (:func:`_attributes_note`);
the class's constructor finds it in the text and restores them, while
``str(exc)`` stays torch's text with the worker's traceback.
"""

__all__ = [
    "RasterError", "InvalidArgumentError", "RasterIOError", "RasterFileNotFoundError",
    "FormatError", "CorruptError", "UnsupportedError", "RasterMemoryError", "WindowError",
    "PoolTimeoutError", "ClosedError", "BandIndexError", "RasterBlockError", "StatisticsError",
    "RasterloaderDeprecationWarning", "NotGeoreferencedWarning",
]

import errno as _errno
import json as _json

from . import _core

try:  # rasterio is optional: its classes become extra bases when it is there
    import rasterio.errors as _rio
except ImportError:  # pragma: no cover - exercised by a subprocess test
    _rio = None


def _rio_bases(*names):
    """The rasterio.errors classes called 'names', or () without rasterio."""
    return tuple(getattr(_rio, n) for n in names) if _rio is not None else ()


# rasterio raises RasterioIOError (an OSError) for open, read and closed-dataset
# failures; it goes before OSError itself so the class order stays consistent.
_IO = _rio_bases("RasterioIOError")

# The C library's statuses, {"RASTER_E_IO": 2, ...}: C is their one source.
_STATUS = dict(_core.STATUS)
_STATUS_NAMES = {v: k for k, v in _STATUS.items()}


# The note line that carries an exception's attributes through a DataLoader
# worker's traceback text (see the module doc).
_NOTE_PREFIX = "rasterloader error attributes: "


def _jsonable(v):
    try:
        _json.dumps(v)
        return True
    except (TypeError, ValueError):
        return False


def _attributes_note(exc):
    """One line holding ``exc``'s attributes as JSON, for a traceback that is
    sent as text (``exc.add_note(_attributes_note(exc))``)."""
    attrs = {k: v for k, v in vars(exc).items() if not k.startswith("_") and _jsonable(v)}
    return _NOTE_PREFIX + _json.dumps(attrs, sort_keys=True)


def _attributes_from_text(text):
    """The attributes of the last note line in ``text``, or None."""
    at = text.rfind(_NOTE_PREFIX) if isinstance(text, str) else -1
    if at < 0:
        return None
    line = text[at + len(_NOTE_PREFIX):].split("\n", 1)[0]
    try:
        attrs = _json.loads(line)
    except ValueError:
        return None
    return attrs if isinstance(attrs, dict) else None


class RasterError(Exception):
    """Base class of every rasterloader error."""

    #: the C status this class stands for (instances carry the actual one)
    default_status = _STATUS["RASTER_OK"]

    def __init__(self, message="", status=None):
        super().__init__(message)
        self.message = message
        self.status = self.default_status if status is None else int(status)
        self.status_name = _STATUS_NAMES.get(self.status, "RASTER_E_UNKNOWN")
        # Re-raised by torch from a worker's traceback text: take the
        # worker's attributes (message, status, index, ...) back.
        attrs = _attributes_from_text(message) if status is None else None
        if attrs:
            self.__dict__.update(attrs)

    def __reduce__(self):   # picklable with every attribute (.index, ...)
        return (type(self), (self.args[0] if self.args else self.message, self.status),
                self.__dict__.copy())

    def __str__(self):
        return self.args[0] if self.args and isinstance(self.args[0], str) else self.message


class InvalidArgumentError(RasterError, ValueError):
    """A documented precondition was broken (RASTER_E_INVALID_ARG)."""
    default_status = _STATUS["RASTER_E_INVALID_ARG"]


class RasterIOError(RasterError, *_IO, OSError):
    """The OS or the network said no (RASTER_E_IO)."""
    default_status = _STATUS["RASTER_E_IO"]


class RasterFileNotFoundError(RasterIOError, FileNotFoundError):
    """The path does not exist (RASTER_E_IO); errno is ENOENT."""
    default_status = _STATUS["RASTER_E_IO"]

    def __init__(self, message="", status=None):
        super().__init__(message, status)
        self.errno = _errno.ENOENT


class FormatError(RasterError, *_IO, OSError):
    """Not a raster GDAL can open (RASTER_E_FORMAT)."""
    default_status = _STATUS["RASTER_E_FORMAT"]


class CorruptError(RasterError, *_IO, OSError):
    """The file or a compressed segment is malformed (RASTER_E_CORRUPT)."""
    default_status = _STATUS["RASTER_E_CORRUPT"]


class UnsupportedError(RasterError, NotImplementedError, *_IO):
    """A valid file or request that no reader serves (RASTER_E_UNSUPPORTED)."""
    default_status = _STATUS["RASTER_E_UNSUPPORTED"]


class RasterMemoryError(RasterError, MemoryError):
    """An allocation failed, or a request exceeds a pool's whole budget (RASTER_E_NOMEM)."""
    default_status = _STATUS["RASTER_E_NOMEM"]


class WindowError(RasterError, ValueError, *_rio_bases("WindowError")):
    """A window outside the raster without boundless (RASTER_E_BOUNDS)."""
    default_status = _STATUS["RASTER_E_BOUNDS"]


class PoolTimeoutError(RasterError, TimeoutError):
    """A pool stayed full for the whole timeout (RASTER_E_TIMEOUT)."""
    default_status = _STATUS["RASTER_E_TIMEOUT"]


class ClosedError(RasterError, ValueError, *_IO):
    """The dataset or pool was closed (RASTER_E_CLOSED)."""
    default_status = _STATUS["RASTER_E_CLOSED"]


class BandIndexError(RasterError, IndexError):
    """A band number that is not in the dataset (RASTER_E_BOUNDS)."""
    default_status = _STATUS["RASTER_E_BOUNDS"]


class RasterBlockError(RasterError, *_rio_bases("RasterBlockError")):
    """A block whose size the file does not record (block_size(), as rasterio)."""
    default_status = _STATUS["RASTER_E_BOUNDS"]


class StatisticsError(RasterError, ValueError, *_rio_bases("StatisticsError")):
    """No statistics for a band: no valid pixel in it (as rasterio's)."""
    default_status = _STATUS["RASTER_E_INVALID_ARG"]


# The class the C extension raises for each status (bindings/python/errors.c;
# a missing file and a band out of range pick their subclass by the C cause).
_CLASS_BY_STATUS = {cls.default_status: cls for cls in (
    RasterError, InvalidArgumentError, RasterIOError, FormatError, CorruptError, UnsupportedError,
    RasterMemoryError, WindowError, PoolTimeoutError, ClosedError)}


class RasterloaderDeprecationWarning(*(_rio_bases("RasterioDeprecationWarning") or (FutureWarning,))):
    """A rasterio API that rasterio 1.4 deprecates (its RasterioDeprecationWarning)."""


class NotGeoreferencedWarning(*(_rio_bases("NotGeoreferencedWarning") or (UserWarning,))):
    """A raster opened without a geotransform, GCPs or RPCs: its transform is the
    identity (rasterio's NotGeoreferencedWarning, warned when it is opened)."""


def read_failure_cause(err):
    """What rasterio chains a read failure to (``raise RasterioIOError(...) from
    cplerr``): a rasterio CPLE_AppDefinedError with the failure's message, or
    None without rasterio."""
    try:
        from rasterio._err import CPLE_AppDefinedError
    except ImportError:  # pragma: no cover - exercised by a subprocess test
        return None
    return CPLE_AppDefinedError(3, 1, str(err))      # CE_Failure, CPLE_AppDefined
