"""The smaller gaps of the drop-in (issue 25, item 4), each against rasterio:
NotGeoreferencedWarning at open, a nodata the dtype cannot hold, window_transform,
an empty read with out_dtype, and the __cause__ of a read failure.

Rasters that need particular metadata (no georeferencing, a nodata out of the
dtype's range) are written in tmp_path: a GeoTIFF by rasterio, and a VRT over it
for the nodata (GDAL will not write -10000 into a Byte GeoTIFF's nodata, a VRT
keeps it as given)."""

import warnings

import numpy as np
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

import rasterloader
from conftest import assert_same, fixture_path

GEO = "u16_deflate_pred2_tile256_pixel_3b_700x531.tif"


@pytest.fixture
def not_georeferenced(tmp_path):
    path = str(tmp_path / "nogeo.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="GTiff", width=10, height=8, count=1,
                           dtype="uint8") as d:
            d.write(np.arange(80, dtype="uint8").reshape(1, 8, 10))
    return path


def warnings_of(fn):
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        result = fn()
    return result, [type(w.message) for w in got]


@pytest.mark.parametrize("mod", [rasterio, rasterloader], ids=["rasterio", "rasterloader"])
def test_not_georeferenced_warns_at_open_only(mod, not_georeferenced):
    """rasterio warns NotGeoreferencedWarning when it opens a raster without a
    geotransform, GCPs or RPCs, and not again when it is read; rasterloader the
    same (its class is rasterio's subclass, so rasterio's filters catch it)."""
    ds, at_open = warnings_of(lambda: mod.open(not_georeferenced))
    with ds:
        assert [issubclass(w, NotGeoreferencedWarning) for w in at_open] == [True]
        _, later = warnings_of(lambda: (ds.read(), ds.transform, ds.read(window=Window(0, 0, 2, 2))))
        assert later == []


def test_georeferenced_or_gcps_do_not_warn(rio):
    for name in (GEO, "dropin/gcps_u8_1b.tif"):
        _, want = warnings_of(lambda: rasterio.open(fixture_path(name)).close())
        _, got = warnings_of(lambda: rasterloader.open(fixture_path(name)).close())
        assert [issubclass(w, NotGeoreferencedWarning) for w in got] == \
            [issubclass(w, NotGeoreferencedWarning) for w in want] == []


@pytest.fixture
def uint8_nodata_out_of_range(not_georeferenced, tmp_path):
    path = tmp_path / "nodata_m10000.vrt"
    path.write_text(
        '<VRTDataset rasterXSize="10" rasterYSize="8"><GeoTransform>0,1,0,8,0,-1</GeoTransform>'
        '<VRTRasterBand dataType="Byte" band="1"><NoDataValue>-10000</NoDataValue>'
        '<SimpleSource><SourceFilename relativeToVRT="0">' + not_georeferenced +
        '</SourceFilename><SourceBand>1</SourceBand></SimpleSource></VRTRasterBand></VRTDataset>')
    return str(path)


def test_nodata_the_dtype_cannot_hold_is_none(uint8_nodata_out_of_range):
    """rasterio reports a nodata its band's dtype cannot hold (uint8, -10000) as
    None, everywhere the nodata shows, and reads as if there were none."""
    with rasterio.open(uint8_nodata_out_of_range) as a, \
            rasterloader.open(uint8_nodata_out_of_range) as b:
        assert a.nodata is None
        assert (b.nodata, b.nodatavals, b.meta["nodata"], b.profile["nodata"]) == \
            (a.nodata, a.nodatavals, a.meta["nodata"], a.profile["nodata"])
        w = Window(-3, -2, 8, 6)
        for kw in ({}, {"masked": True}):
            assert_same(b.read(window=w, boundless=True, **kw),
                        a.read(window=w, boundless=True, **kw))


WINDOWS = [Window(1.5, 2.25, 3, 4), Window(-3, -2, 5, 5), ((1, 5), (2, 8)),
           ((-5, None), (None, -3)), ((None, None), (None, None)), ((-7, -2), (-9, 4)),
           Window(0.1, 0.7, 1, 1), Window(123.456789, 456.789123, 7, 7)]


@pytest.mark.parametrize("window", WINDOWS, ids=repr)
def test_window_transform(rio, rl, window):
    """rasterio evaluates a slice window with height = width = 0 (a negative start
    stays negative) and composes the offset with the transform in affine's
    order: the same floats."""
    want = rio(GEO).window_transform(window)
    got = rl(GEO).window_transform(window)
    assert tuple(got) == tuple(want)


@pytest.mark.parametrize("kw", [
    dict(window=Window(1000, 1000, 5, 5), out_dtype="float32"),
    dict(window=Window(-10, -10, 5, 5), out_dtype="uint8"),
    dict(indexes=1, window=Window(-10, 5, 5, 5), out_dtype="float32"),
    dict(window=((5, 10), (800, 900)), out_dtype="float64", fill_value=3),
    dict(window=Window(1000, 1000, 5, 5), out_dtype="float32", masked=True),
], ids=repr)
def test_window_clipped_to_nothing_with_out_dtype_is_empty(rio, rl, kw):
    """A window that clips to zero size reads as an empty array of out_dtype
    (rasterio's GDAL call reads nothing), masked or not."""
    assert_same(rl(GEO).read(**kw), rio(GEO).read(**kw))


def test_read_failure_is_chained_like_rasterio(rio, rl):
    """rasterio raises a failed read as RasterioIOError ``from`` GDAL's error
    (a CPLE_AppDefinedError); rasterloader's failure (a RasterioIOError too)
    has the same kind of __cause__, carrying its message."""
    from rasterio._err import CPLE_AppDefinedError
    name = "corrupt_tile.tif"
    with pytest.raises(rasterio.errors.RasterioIOError) as want:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rio(name).read()
    for read in (lambda d: d.read(), lambda d: d.read(1, window=Window(200, 200, 300, 300)),
                 lambda d: d.read(out_shape=(3, 50, 50), resampling=1)):
        with pytest.raises(rasterio.errors.RasterioIOError) as got:
            read(rl(name))
        assert type(got.value.__cause__) is type(want.value.__cause__) is CPLE_AppDefinedError
        assert got.value.__suppress_context__ and want.value.__suppress_context__
        assert str(got.value) in str(got.value.__cause__)


def test_argument_errors_have_no_cause(rl):
    """Only read failures are chained: a bad argument raises as before."""
    with pytest.raises(IndexError) as e:
        rl(GEO).read(9)
    assert e.value.__cause__ is None
