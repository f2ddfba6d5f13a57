"""rasterio's small value types when rasterio is importable, stand-ins when not.

rasterio is optional at run time.  With it, ``crs``, ``bounds``, ``window()``
``colorinterp`` and friends return rasterio's own objects, so code that
compares them with a rasterio dataset's keeps working; without it, the
stand-ins below carry the same fields and comparisons.
"""

import collections
import enum
import math

try:  # pragma: no cover - both branches are exercised in the test suite
    import rasterio.coords as _rio_coords
    import rasterio.crs as _rio_crs
    import rasterio.enums as _rio_enums
    import rasterio.windows as _rio_windows
    HAVE_RASTERIO = True
except ImportError:  # pragma: no cover
    HAVE_RASTERIO = False


class _Resampling(enum.IntEnum):
    """Subset of rasterio.enums.Resampling (same values)."""
    nearest = 0
    bilinear = 1
    cubic = 2
    cubic_spline = 3
    lanczos = 4
    average = 5
    mode = 6
    gauss = 7


class CRS:
    """Minimal CRS used when rasterio is not installed: WKT in, WKT/EPSG out.

    Two CRS compare equal when their WKT strings are equal (rasterio's CRS
    compares semantically; with rasterio installed, rasterloader returns
    rasterio.crs.CRS instead of this class).
    """

    __slots__ = ("_wkt",)

    def __init__(self, wkt):
        self._wkt = wkt

    @classmethod
    def from_wkt(cls, wkt):
        return cls(wkt)

    def to_wkt(self):
        return self._wkt

    def to_string(self):
        epsg = self.to_epsg()
        return f"EPSG:{epsg}" if epsg is not None else self._wkt

    def to_epsg(self):
        """EPSG code from the WKT's last top-level AUTHORITY/ID, or None."""
        wkt = self._wkt
        for key, close in (('AUTHORITY["EPSG",', "]"), ('ID["EPSG",', "]")):
            i = wkt.rfind(key)
            if i >= 0:
                tail = wkt[i + len(key):]
                code = tail[:tail.find(close)].strip().strip('"')
                try:
                    return int(code)
                except ValueError:
                    return None
        return None

    @property
    def wkt(self):
        return self._wkt

    def __eq__(self, other):
        if isinstance(other, CRS):
            return self._wkt == other._wkt
        to_wkt = getattr(other, "to_wkt", None)
        return to_wkt is not None and to_wkt() == self._wkt

    def __hash__(self):
        return hash(self._wkt)

    def __repr__(self):
        return f"CRS.from_wkt({self._wkt!r})"

    def __str__(self):
        return self.to_string()


class _Window(collections.namedtuple("Window", "col_off row_off width height")):
    """Stand-in for rasterio.windows.Window (same fields)."""

    def toranges(self):
        return ((self.row_off, self.row_off + self.height),
                (self.col_off, self.col_off + self.width))


_BoundingBox = collections.namedtuple("BoundingBox", "left bottom right top")

if HAVE_RASTERIO:
    Resampling = _rio_enums.Resampling
    Window = _rio_windows.Window
    BoundingBox = _rio_coords.BoundingBox
    ColorInterp = _rio_enums.ColorInterp
    Compression = _rio_enums.Compression
    Interleaving = _rio_enums.Interleaving
    MaskFlags = _rio_enums.MaskFlags

    def make_crs(wkt):
        return _rio_crs.CRS.from_wkt(wkt) if wkt else None
else:  # pragma: no cover
    Resampling = _Resampling
    Window = _Window
    BoundingBox = _BoundingBox
    ColorInterp = Compression = Interleaving = MaskFlags = None

    def make_crs(wkt):
        return CRS(wkt) if wkt else None


def floor_half(v):
    return int(math.floor(v + 0.5))
