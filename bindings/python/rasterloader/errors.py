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
"""

__all__ = [
    "RasterError", "InvalidArgumentError", "RasterIOError", "RasterFileNotFoundError",
    "FormatError", "CorruptError", "UnsupportedError", "RasterMemoryError", "WindowError",
    "PoolTimeoutError", "ClosedError", "BandIndexError",
]

import errno as _errno

_STATUS_NAMES = {
    0: "RASTER_OK", 1: "RASTER_E_INVALID_ARG", 2: "RASTER_E_IO", 3: "RASTER_E_FORMAT",
    4: "RASTER_E_CORRUPT", 5: "RASTER_E_UNSUPPORTED", 6: "RASTER_E_NOMEM", 7: "RASTER_E_BOUNDS",
    8: "RASTER_E_TIMEOUT", 9: "RASTER_E_CLOSED",
}


class RasterError(Exception):
    """Base class of every rasterloader error."""

    #: the C status this class stands for (instances carry the actual one)
    default_status = 0

    def __init__(self, message="", status=None):
        super().__init__(message)
        self.message = message
        self.status = self.default_status if status is None else int(status)
        self.status_name = _STATUS_NAMES.get(self.status, "RASTER_E_UNKNOWN")

    def __reduce__(self):   # picklable across DataLoader workers
        return (type(self), (self.message, self.status))

    def __str__(self):
        return self.message


class InvalidArgumentError(RasterError, ValueError):
    """A documented precondition was broken (RASTER_E_INVALID_ARG)."""
    default_status = 1


class RasterIOError(RasterError, OSError):
    """The OS or the network said no (RASTER_E_IO)."""
    default_status = 2


class RasterFileNotFoundError(RasterIOError, FileNotFoundError):
    """The path does not exist (RASTER_E_IO); errno is ENOENT."""
    default_status = 2

    def __init__(self, message="", status=None):
        super().__init__(message, status)
        self.errno = _errno.ENOENT


class FormatError(RasterError, OSError):
    """Not a raster GDAL can open (RASTER_E_FORMAT)."""
    default_status = 3


class CorruptError(RasterError, OSError):
    """The file or a compressed segment is malformed (RASTER_E_CORRUPT)."""
    default_status = 4


class UnsupportedError(RasterError, NotImplementedError):
    """A valid file or request that no reader serves (RASTER_E_UNSUPPORTED)."""
    default_status = 5


class RasterMemoryError(RasterError, MemoryError):
    """An allocation failed, or a request exceeds a pool's whole budget (RASTER_E_NOMEM)."""
    default_status = 6


class WindowError(RasterError, ValueError):
    """A window outside the raster without boundless (RASTER_E_BOUNDS)."""
    default_status = 7


class PoolTimeoutError(RasterError, TimeoutError):
    """A pool stayed full for the whole timeout (RASTER_E_TIMEOUT)."""
    default_status = 8


class ClosedError(RasterError, ValueError):
    """The dataset or pool was closed (RASTER_E_CLOSED)."""
    default_status = 9


class BandIndexError(RasterError, IndexError):
    """A band number that is not in the dataset (RASTER_E_BOUNDS)."""
    default_status = 7
