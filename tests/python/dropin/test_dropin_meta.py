"""rasterio 1.4's DatasetReader metadata API on rasterloader equals rasterio's.

Covers what rasterio's own tests check for these APIs (tests/test_blocks.py,
test_tags.py, test_overviews.py, test_sampling.py, test_band_descriptions,
test_gcps, test_rpcs, test_checksum, test_stats): the same calls on the same
files give equal values, types and exception classes.  The oracle is rasterio
1.4.4 (GDAL 3.10), and rasterloader runs on that same GDAL (one GDAL per
process), so every value is expected identical: checksums of JPEG files, tag
order, statistics to the last bit.
"""

import math
import os
import shutil
import sys
import warnings

import numpy as np
import pytest
import rasterio
import rasterio.errors
from rasterio.windows import Window

import rasterloader
from rasterloader import errors
from conftest import FIXTURE_DIR, GOOD, ROOT

NAMES = [e["name"] for e in GOOD]


def dropin(name):
    d = os.path.join(FIXTURE_DIR, "dropin")
    if not os.path.exists(os.path.join(d, name)):
        sys.path.insert(0, os.path.join(ROOT, "data"))
        import make_fixtures
        make_fixtures.make_dropin_fixtures(FIXTURE_DIR)
    return os.path.join(d, name)


DROPIN = ["tags_u16_3b_tiled_ovr.tif", "gcps_u8_1b.tif", "rpcs_u8_1b.tif", "allnodata_u8_1b.tif",
          "merge_a.tif"]


@pytest.fixture(scope="module")
def pair():
    """(rasterio dataset, rasterloader dataset) of a fixture or drop-in fixture, cached."""
    opened = {}

    def get(name):
        if name not in opened:
            path = dropin(name) if name in DROPIN else os.path.join(FIXTURE_DIR, name)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                opened[name] = (rasterio.open(path), rasterloader.open(path))
        return opened[name]
    yield get
    for a, b in opened.values():
        a.close()
        b.close()


def outcome(f, ds):
    """f(ds)'s value, or the rasterio exception class it is an instance of."""
    try:
        return ("ok", f(ds))
    except Exception as e:   # noqa: BLE001 - the class is the result
        for cls in (IndexError, rasterio.errors.RasterBlockError, rasterio.errors.CRSError,
                    rasterio.errors.WindowError, rasterio.errors.RasterioIOError, ValueError):
            if isinstance(e, cls):
                return ("raises", cls)
        raise


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


METADATA_CALLS = {
    "tags": lambda s: s.tags(),
    "tags(1)": lambda s: s.tags(1),
    "tags(-1)": lambda s: s.tags(-1),
    "tags(IMAGE_STRUCTURE)": lambda s: s.tags(ns="IMAGE_STRUCTURE"),
    "tags(1, IMAGE_STRUCTURE)": lambda s: s.tags(1, ns="IMAGE_STRUCTURE"),
    "tags(count+1)": lambda s: s.tags(s.count + 1),
    "tag_namespaces": lambda s: s.tag_namespaces(),             # in GDAL's order
    "tag_namespaces(1)": lambda s: s.tag_namespaces(1),
    "overviews": lambda s: [s.overviews(i) for i in s.indexes],
    "overviews(0)": lambda s: s.overviews(0),
    "descriptions": lambda s: s.descriptions,
    "units": lambda s: s.units,
    "scales": lambda s: s.scales,
    "offsets": lambda s: s.offsets,
    "colormap": lambda s: s.colormap(1),
    "colormap(count+1)": lambda s: s.colormap(s.count + 1),
    "files": lambda s: s.files,
    "gcps": lambda s: ([g.asdict() for g in s.gcps[0]], s.gcps[1]),
    "rpcs": lambda s: s.rpcs.to_dict() if s.rpcs is not None else None,
    "subdatasets": lambda s: s.subdatasets,
    "photometric": lambda s: s.photometric,
    "interleaving": lambda s: s.interleaving,
    "compression": lambda s: s.compression,
    "options": lambda s: s.options,
    "read_crs": lambda s: s.read_crs(),
    "get_transform": lambda s: s.get_transform(),
    "get_nodatavals": lambda s: tuple(s.get_nodatavals()),
    "lnglat": lambda s: s.lnglat(),
    "block_windows": lambda s: list(s.block_windows()),
    "block_windows(1)": lambda s: list(s.block_windows(1))[-3:],
    "block_windows(count+1)": lambda s: list(s.block_windows(s.count + 1)),
    "block_window": lambda s: s.block_window(1, 0, 0),
    "block_window(last)": lambda s: s.block_window(1, (s.height - 1) // s.block_shapes[0][0],
                                                   (s.width - 1) // s.block_shapes[0][1]),
    "block_window(outside)": lambda s: s.block_window(1, 1000, 1000),
    "block_size": lambda s: s.block_size(1, 0, 0),
    "block_size(row 0, col 1)": lambda s: s.block_size(1, 0, 1),
    "block_size(outside)": lambda s: s.block_size(1, 1000, 1000),
    "get_tag_item": lambda s: s.get_tag_item("BLOCK_SIZE_0_0", "TIFF", bidx=1),
    "get_tag_item(dataset)": lambda s: s.get_tag_item("AREA_OR_POINT"),
    "profile": lambda s: dict(s.profile),
    "name, mode, closed": lambda s: (s.mode, s.closed),
}


@pytest.mark.parametrize("call", list(METADATA_CALLS))
def test_metadata_calls_equal_rasterio(pair, call):
    """Every call on every fixture: same value, or the same rasterio exception class."""
    f = METADATA_CALLS[call]
    for name in NAMES + DROPIN:
        a, b = pair(name)
        ra, rb = outcome(f, a), outcome(f, b)
        assert same(ra, rb), f"{name}: {call}: rasterio {ra!r:.300} != rasterloader {rb!r:.300}"


def test_tags_fixture_has_everything(pair):
    """The drop-in tags fixture really carries what the sweep above compares."""
    a, b = pair("tags_u16_3b_tiled_ovr.tif")
    assert b.tags()["PURPOSE"] == "dropin" and b.tags(ns="CUSTOM") == a.tags(ns="CUSTOM")
    assert b.tags(ns="CUSTOM")["OTHER"] == "x=y"            # only the first '=' splits
    assert b.tags(2, ns="CUSTOM") == {"BAND2": "two"} == a.tags(2, ns="CUSTOM")
    assert "CUSTOM" in b.tag_namespaces() and "CUSTOM" in b.tag_namespaces(2)
    assert b.overviews(1) == [2, 4] == a.overviews(2)
    assert b.descriptions == ("red edge", "near infrared", None) == a.descriptions
    assert b.units == ("metre", None, "dn") == a.units
    assert b.scales == (0.5, 1.0, 2.0) and b.offsets == (10.0, 0.0, -1.5)
    assert b.get_tag_item("BLOCK_SIZE_0_0", "TIFF", bidx=1, ovr=1) == \
        a.get_tag_item("BLOCK_SIZE_0_0", "TIFF", bidx=1, ovr=1)
    with pytest.raises(rasterio.errors.BandOverviewError):
        b.get_tag_item("BLOCK_SIZE_0_0", "TIFF", bidx=1, ovr=2)
    # overviews read like rasterio's decimated reads
    out = (3, b.height // 4, b.width // 4)
    assert np.array_equal(b.read(out_shape=out), a.read(out_shape=out))


def test_gcps_and_rpcs(pair):
    a, b = pair("gcps_u8_1b.tif")
    (ga, ca), (gb, cb) = a.gcps, b.gcps
    assert len(gb) == 4 and cb == ca and cb.to_epsg() == 4326
    assert type(gb[0]) is type(ga[0])
    assert [g.asdict() for g in gb] == [g.asdict() for g in ga]
    a, b = pair("rpcs_u8_1b.tif")
    assert type(b.rpcs) is type(a.rpcs) and b.rpcs.to_dict() == a.rpcs.to_dict()
    assert b.gcps == ([], None)


def test_colormap(pair):
    name = next(n for n in NAMES if "palette" in n)
    a, b = pair(name)
    assert b.colormap(1) == a.colormap(1) and len(b.colormap(1)) == 256
    a, b = pair(NAMES[0])
    with pytest.raises(ValueError, match="NULL color table"):
        b.colormap(1)
    with pytest.raises(IndexError):
        b.colormap(0)


def test_files_lists_the_mask_sidecar(pair):
    name = next(n for n in NAMES if n.endswith("_mask_external.tif"))
    a, b = pair(name)
    assert len(b.files) == 2 and b.files[1].endswith(".msk") and b.files == a.files


@pytest.mark.parametrize("name", NAMES[::4] + [n for n in NAMES if "jpeg" in n])
def test_checksum_equals_rasterio(pair, name):
    a, b = pair(name)
    assert [b.checksum(i) for i in b.indexes] == [a.checksum(i) for i in a.indexes]
    if b.width > 8 and b.height > 8:
        for w in (Window(1, 2, b.width // 2, b.height // 3), ((1, b.height - 1), (2, 7)),
                  Window(0.5, 0.5, b.width / 2.3, b.height / 2.7)):
            assert b.checksum(1, window=w) == a.checksum(1, window=w), w
    # rasterio raises a stale GDAL error or crashes for windows outside the raster
    with pytest.raises(rasterio.errors.WindowError):
        b.checksum(1, window=Window(b.width - 1, 0, 5, 1))


def test_checksum_int8_as_newer_gdal(pair):
    """Int8 bands (GDAL >= 3.7 reports them as such) checksum as rasterio's."""
    for name in [n for n in NAMES if n.startswith("i8_")]:
        a, b = pair(name)
        assert [b.checksum(i) for i in b.indexes] == [a.checksum(i) for i in a.indexes], name
        assert b.tags(1, ns="IMAGE_STRUCTURE") == a.tags(1, ns="IMAGE_STRUCTURE")


@pytest.mark.parametrize("name", ["merge_a.tif", "tags_u16_3b_tiled_ovr.tif",
                                  "f32_deflate_pred3_tile256_pixel_1b_700x531_nodata_nan.tif"])
def test_statistics_equal_rasterio(tmp_path, name):
    """statistics() (deprecated, warns as rasterio) and stats(): GDAL writes what it
    computes into a .aux.xml beside the file, so each side gets its own copy."""
    src = dropin(name) if name in DROPIN else os.path.join(FIXTURE_DIR, name)
    pa, pb = tmp_path / ("a_" + os.path.basename(name)), tmp_path / ("b_" + os.path.basename(name))
    shutil.copy(src, pa)
    shutil.copy(src, pb)
    with rasterio.open(pa) as a, rasterloader.open(pb) as b:
        with pytest.warns(rasterio.errors.RasterioDeprecationWarning):
            sb = b.statistics(1)
        with pytest.warns(rasterio.errors.RasterioDeprecationWarning):
            sa = a.statistics(1)
        assert type(sb) is type(sa)
        # the same GDAL computes both: equal to the last bit
        for x, y in ((sb.min, sa.min), (sb.max, sa.max), (sb.mean, sa.mean), (sb.std, sa.std)):
            assert x == y
        with pytest.warns(rasterio.errors.RasterioDeprecationWarning):
            sb2 = b.statistics(1, approx=True, clear_cache=True)
        with pytest.warns(rasterio.errors.RasterioDeprecationWarning):
            sa2 = a.statistics(1, approx=True, clear_cache=True)
        assert sb2 == sa2 and sb2.min >= sb.min and sb2.max <= sb.max
        for x, y in zip(b.stats(), a.stats()):
            assert (x.min, x.max) == (y.min, y.max)
            assert (x.mean, x.std) == (y.mean, y.std)
        assert len(b.stats(indexes=[1])) == 1


def test_statistics_without_valid_pixels(tmp_path):
    p = tmp_path / "allnodata.tif"
    shutil.copy(dropin("allnodata_u8_1b.tif"), p)
    with rasterloader.open(p) as b:
        with pytest.raises(rasterio.errors.StatisticsError), pytest.warns(
                rasterio.errors.RasterioDeprecationWarning):
            b.statistics(1)
        with pytest.raises(errors.StatisticsError):
            b.stats()


def test_block_windows_cover_the_raster(pair):
    """rasterio's test_blocks: windows tile the raster without gaps, left to right."""
    for name in NAMES[::7]:
        a, b = pair(name)
        seen = np.zeros(b.shape, np.int32)
        for (j, i), w in b.block_windows(1):
            assert w == b.block_window(1, j, i)
            seen[w.row_off:w.row_off + w.height, w.col_off:w.col_off + w.width] += 1
        assert (seen == 1).all(), name
        (ij, w), = list(b.block_windows())[:1]
        assert np.array_equal(b.read(1, window=w), a.read(1, window=w))


def test_block_windows_need_a_band_when_shapes_differ():
    name = next(n for n in NAMES if "_3b_" in n)
    with rasterloader.open(os.path.join(FIXTURE_DIR, name)) as b:
        # no fixture has bands of different block shapes (GTiff cannot): fake one
        b._bands = b._bands[:1] + tuple(dict(x, block_height=1) for x in b._bands[1:])
        with pytest.raises(ValueError, match="band index must be provided"):
            list(b.block_windows())
        assert list(b.block_windows(2))[0][1].height == 1


def test_isinstance_and_fence(pair):
    a, b = pair(NAMES[0])
    assert isinstance(b, rasterio.io.DatasetReader)
    assert set(rasterloader.Dataset._rasterio_fenced) <= {"start", "stop", "write_transform"}
    with pytest.raises(NotImplementedError, match="write_transform"):
        b.write_transform(b.transform)
    with pytest.warns(PendingDeprecationWarning):
        assert b.is_tiled == a.is_tiled


def test_closed_dataset(pair):
    path = os.path.join(FIXTURE_DIR, NAMES[0])
    b = rasterloader.open(path)
    b.close()
    assert b.closed and b.name == path and b.mode == "r"
    for f in (lambda: b.tags(), lambda: b.checksum(1), lambda: b.files, lambda: b.overviews(1),
              lambda: b.read(1)):
        with pytest.raises(rasterio.errors.RasterioIOError):
            f()


def test_xy_and_index_with_gcps_rpcs_and_z(pair):
    """rasterio's transform_method=GCPs/RPCs and z arguments, on our gcps and rpcs."""
    from rasterio.enums import TransformMethod
    for name, tm in (("gcps_u8_1b.tif", TransformMethod.gcps), ("rpcs_u8_1b.tif", TransformMethod.rpcs),
                     ("merge_a.tif", TransformMethod.affine)):
        a, b = pair(name)
        for offset in ("center", "ul", "lr"):
            assert b.xy(3, 4, offset=offset, transform_method=tm) == \
                a.xy(3, 4, offset=offset, transform_method=tm)
        x, y = a.xy(10, 12, transform_method=tm)
        assert b.index(x, y, transform_method=tm) == a.index(x, y, transform_method=tm)
        assert b.xy(3, 4, 0.0) == a.xy(3, 4, 0.0)           # third positional is z, as rasterio
        assert b.index(x, y, op=round) == a.index(x, y, op=round)
