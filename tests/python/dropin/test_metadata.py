"""Dataset properties equal rasterio's: geometry, CRS, nodata, dtypes, blocks, profile."""

import math
import warnings

import pytest
from affine import Affine
from rasterio.windows import Window

import rasterloader
from conftest import GOOD, fixture_path

NAMES = [e["name"] for e in GOOD]


def eq_nan(a, b):
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("name", NAMES)
def test_metadata_equals_rasterio(rio, rl, name):
    a, b = rio(name), rl(name)
    assert (b.width, b.height, b.count, b.shape) == (a.width, a.height, a.count, a.shape)
    assert b.indexes == a.indexes
    assert b.dtypes == a.dtypes
    assert isinstance(b.transform, Affine) and b.transform == a.transform
    assert b.crs == a.crs
    if a.crs is not None:
        assert b.crs.to_epsg() == a.crs.to_epsg()
    assert tuple(b.bounds) == tuple(a.bounds)
    assert b.res == a.res
    assert eq_nan(b.nodata, a.nodata)
    assert all(eq_nan(x, y) for x, y in zip(b.nodatavals, a.nodatavals))
    assert b.block_shapes == a.block_shapes
    assert b.colorinterp == a.colorinterp
    assert b.mask_flag_enums == a.mask_flag_enums
    assert b.driver == a.driver
    if a.driver == "GTiff" and a.compression is not None and a.compression.value != "JPEG":
        assert b.compression == a.compression
    assert b.meta.keys() == a.meta.keys()
    pa, pb = dict(a.profile), dict(b.profile)
    assert pb.get("photometric") == pa.get("photometric")
    assert pb.keys() == pa.keys()
    for k in ("width", "height", "count", "dtype", "transform", "crs", "blockxsize",
              "blockysize", "driver"):
        assert pb[k] == pa[k], k


@pytest.mark.parametrize("name", NAMES[:10])
def test_geometry_helpers_equal_rasterio(rio, rl, name):
    a, b = rio(name), rl(name)
    w = Window(3, 5, 17, 11)
    assert b.window_transform(w) == a.window_transform(w)
    assert b.window_transform(((5, 16), (3, 20))) == a.window_transform(((5, 16), (3, 20)))
    x, y = a.xy(7, 9)
    assert b.xy(7, 9) == (x, y)
    assert b.xy(7, 9, offset="ul") == a.xy(7, 9, offset="ul")
    assert b.index(x, y) == a.index(x, y)
    left, bottom, right, top = a.bounds
    wa, wb = a.window(left, bottom, right, top), b.window(left, bottom, right, top)
    fields = lambda w: (w.col_off, w.row_off, w.width, w.height)
    assert fields(wb) == pytest.approx(fields(wa))


def test_name_closed_context_manager():
    path = fixture_path(NAMES[0])
    with rasterloader.open(path) as ds:
        assert ds.name == path and not ds.closed and ds.mode == "r"
        assert "open" in repr(ds)
    assert ds.closed and "closed" in repr(ds)
    ds.close()  # idempotent


def test_pathlike_open(tmp_path):
    import pathlib
    ds = rasterloader.open(pathlib.Path(fixture_path(NAMES[0])))
    assert ds.width > 0
    ds.close()


def test_fallback_crs_without_rasterio(rio):
    from rasterloader._compat import CRS
    name = next(e["name"] for e in GOOD if e["georeferenced"])
    wkt = rio(name).crs.to_wkt()
    c = CRS.from_wkt(wkt)
    assert c.to_wkt() == wkt and c == CRS(wkt) and c != CRS("")
    assert c.to_epsg() == rio(name).crs.to_epsg()
    assert c == rio(name).crs       # compares WKT with anything that has to_wkt()


def test_reader_choice():
    path = fixture_path(NAMES[0])
    with rasterloader.open(path, reader="gdal") as ds:
        assert ds.reader == "gdal"
    with pytest.raises(ValueError):
        rasterloader.open(path, reader="bogus")
    with pytest.raises(ValueError):
        rasterloader.open(path, mode="w")
