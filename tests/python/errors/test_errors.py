"""Every error case: exception class, built-in base class, .status and the C message."""

import errno
import json
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

import rasterloader
from rasterloader import _core, errors
from conftest import GOOD, MALFORMED, ROOT, fixture_path

GOOD_NAME = next(e["name"] for e in GOOD if e["count"] >= 3 and e["dtype"] == "uint8")
NEEDS_READ = [e["name"] for e in MALFORMED if e["dtype"]]           # open fine, read fails
NOT_RASTER = [e["name"] for e in MALFORMED if not e["dtype"]]       # open fails


def test_missing_file():
    path = fixture_path("does_not_exist.tif")
    with pytest.raises(FileNotFoundError) as ei:
        rasterloader.open(path)
    e = ei.value
    assert isinstance(e, errors.RasterFileNotFoundError) and isinstance(e, errors.RasterIOError)
    assert isinstance(e, OSError) and isinstance(e, errors.RasterError)
    assert e.status == _core.E_IO and e.status_name == "RASTER_E_IO"
    assert e.errno == errno.ENOENT
    assert path in str(e) and "no such file" in str(e)


@pytest.mark.parametrize("name", NOT_RASTER)
def test_not_a_raster(name):
    with pytest.raises(errors.FormatError) as ei:
        rasterloader.open(fixture_path(name))
    assert isinstance(ei.value, OSError) and ei.value.status == _core.E_FORMAT
    assert name in str(ei.value) and "not recognized" in str(ei.value)


@pytest.mark.parametrize("reader", [None, "gdal"])
@pytest.mark.parametrize("name", NEEDS_READ)
def test_corrupt_file(name, reader):
    with rasterloader.open(fixture_path(name), reader=reader) as ds:
        with pytest.raises(errors.CorruptError) as ei:
            ds.read()
        assert isinstance(ei.value, OSError) and ei.value.status == _core.E_CORRUPT
        assert name in str(ei.value)
        with pytest.raises(errors.CorruptError):
            ds.read_hwc()


def test_band_out_of_range(rl):
    ds = rl(GOOD_NAME)
    for idx in (0, ds.count + 1, [1, 99]):
        with pytest.raises(IndexError, match="out of range") as ei:
            ds.read(idx)
        assert isinstance(ei.value, errors.BandIndexError)
    with pytest.raises(IndexError):
        ds.read_hwc(indexes=ds.count + 1)
    with pytest.raises(ValueError, match="No indexes"):
        ds.read([])


def test_window_outside_in_core_is_window_error(rl):
    ds = rl(GOOD_NAME)
    out = np.empty((10, 10, ds.count), np.uint8)
    with pytest.raises(errors.WindowError) as ei:
        ds._core.read_into((ds.width - 5, 0, 10, 10), out)
    assert isinstance(ei.value, ValueError) and ei.value.status == _core.E_BOUNDS
    assert "outside" in str(ei.value) and GOOD_NAME in str(ei.value)


def test_read_hwc_empty_window(rl):
    ds = rl(GOOD_NAME)
    with pytest.raises(errors.WindowError, match="empty"):
        ds.read_hwc(window=((ds.height + 5, ds.height + 10), (0, 5)))


def test_closed_dataset():
    ds = rasterloader.open(fixture_path(GOOD_NAME))
    ds.close()
    for call in (ds.read, ds.read_masks, ds.dataset_mask, ds.read_hwc):
        with pytest.raises(errors.ClosedError) as ei:
            call()
        assert isinstance(ei.value, ValueError) and ei.value.status == _core.E_CLOSED
        assert "closed" in str(ei.value)
    with pytest.raises(errors.ClosedError):
        ds._core.info()


def test_closed_pool(rl):
    p = rasterloader.BufferPool(1 << 20)
    p.close()
    assert p.closed
    with pytest.raises(errors.ClosedError, match="closed"):
        rl(GOOD_NAME).read_hwc(window=((0, 4), (0, 4)), pool=p)
    with pytest.raises(errors.ClosedError):
        p.stats()


def test_pool_budget_too_small(rl):
    with rasterloader.BufferPool(1024) as p:
        with pytest.raises(MemoryError) as ei:
            rl(GOOD_NAME).read_hwc(window=((0, 64), (0, 64)), pool=p)
        assert isinstance(ei.value, errors.RasterMemoryError)
        assert ei.value.status == _core.E_NOMEM and "budget" in str(ei.value)


def test_pool_timeout(rl):
    ds = rl(GOOD_NAME)
    with rasterloader.BufferPool(64 * 64 * ds.count) as p:
        held = ds.read_hwc(window=((0, 64), (0, 64)), pool=p)
        with pytest.raises(TimeoutError) as ei:
            ds.read_hwc(window=((0, 64), (0, 64)), pool=p, timeout=0.05)
        assert isinstance(ei.value, errors.PoolTimeoutError)
        assert ei.value.status == _core.E_TIMEOUT
        held.release()
        ds.read_hwc(window=((0, 64), (0, 64)), pool=p, timeout=0.05).release()


def test_bad_out_arrays(rl):
    ds = rl(GOOD_NAME)
    w = ((0, 8), (0, 8))
    with pytest.raises(ValueError, match="shape"):
        ds.read_hwc(window=w, out=np.empty((8, 9, ds.count), np.uint8))
    with pytest.raises(ValueError, match="not writable"):
        ro = np.empty((8, 8, ds.count), np.uint8)
        ro.flags.writeable = False
        ds.read_hwc(window=w, out=ro)
    with pytest.raises(ValueError, match="negative stride"):
        ds.read_hwc(window=w, out=np.empty((8, 8, ds.count), np.uint8)[::-1])
    with pytest.raises(ValueError, match="format"):
        ds.read_hwc(window=w, out=np.empty((8, 8, ds.count), np.int64))
    with pytest.raises(ValueError, match="format"):
        ds.read_hwc(window=w, out=np.empty((8, 8, ds.count), ">u2"))
    with pytest.raises(TypeError, match="writable numpy array or torch tensor"):
        ds.read_hwc(window=w, out=[[0]])
    with pytest.raises(ValueError, match="out_dtype"):
        ds.read_hwc(window=w, out=np.empty((8, 8, ds.count), np.uint8), out_dtype="float32")
    with pytest.raises(ValueError, match="does not match"):
        ds.read(window=w, out=np.empty((ds.count + 1, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="exclusive"):
        ds.read(window=w, out=np.empty((ds.count, 8, 8), np.uint8), out_shape=(8, 8))


def test_bad_arguments(rl):
    ds = rl(GOOD_NAME)
    w = (0, 0, 4, 4)
    with pytest.raises(errors.InvalidArgumentError, match="dtype"):
        ds._core.read_tile(w, rasterloader.default_pool(), "complex64")
    with pytest.raises(errors.InvalidArgumentError, match="scale has 5 values"):
        ds._core.read_into(w, np.empty((4, 4, ds.count), np.float32), scale=[1.0] * 5)
    with pytest.raises(ValueError):
        ds.read_hwc(window=((0, 4), (0, 4)), scale=[1.0, 2.0] * 5)
    with pytest.raises(ValueError, match="not both"):
        ds.read_hwc(scale=2.0, mean=1.0)
    with pytest.raises(ValueError, match="nonzero"):
        ds.read_hwc(std=0.0)
    with pytest.raises(errors.InvalidArgumentError):
        rasterloader.BufferPool(0)
    with pytest.raises(TypeError):
        ds.read(window="nope")
    with pytest.raises(errors.WindowError):
        ds.read(window=((0, 1, 2), (0, 1)))


def test_errors_pickle_and_hierarchy():
    e = errors.CorruptError("boom", 4)
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is errors.CorruptError and e2.status == 4 and str(e2) == "boom"
    table = {errors.InvalidArgumentError: ValueError, errors.RasterIOError: OSError,
             errors.RasterFileNotFoundError: FileNotFoundError, errors.FormatError: OSError,
             errors.CorruptError: OSError, errors.UnsupportedError: NotImplementedError,
             errors.RasterMemoryError: MemoryError, errors.WindowError: ValueError,
             errors.PoolTimeoutError: TimeoutError, errors.ClosedError: ValueError,
             errors.BandIndexError: IndexError}
    for cls, base in table.items():
        assert issubclass(cls, base) and issubclass(cls, errors.RasterError)
        assert _core.status_name(cls.default_status) == cls("x").status_name


def test_env_pool_budget(monkeypatch):
    from rasterloader import _pool
    monkeypatch.setenv("RASTERLOADER_POOL_BYTES", "512M")
    assert _pool.default_pool_budget() == 512 << 20
    monkeypatch.setenv("RASTERLOADER_POOL_BYTES", "12345")
    assert _pool.default_pool_budget() == 12345
    monkeypatch.setenv("RASTERLOADER_POOL_BYTES", "lots")
    with pytest.raises(ValueError, match="RASTERLOADER_POOL_BYTES"):
        _pool.default_pool_budget()
    monkeypatch.delenv("RASTERLOADER_POOL_BYTES")
    assert _pool.default_pool_budget() == rasterloader.DEFAULT_POOL_BYTES == 256 << 20


# ------------------------------------------------ the binding's own messages
# Every rl_raise_status() call of bindings/python that names a dataset
# (%U: formatted by PyUnicode_FromFormatV), reached through _core where the
# Python layer would check first.  Each message names the file and holds no
# unformatted conversion (the issue: "image %U is closed").

def _closed_core():
    d = _core.Dataset(fixture_path(GOOD_NAME))
    bands = d.info()["count"]
    d.close()
    return d, bands


def _hwc(bands, lead=()):
    return np.zeros(lead + (4, 4, bands), np.uint8)


BINDING_CLOSED_CALLS = {
    "read_into (dataset_type.c)": lambda d, b: d.read_into((0, 0, 4, 4), _hwc(b)),
    "read_tile (dataset_type.c)": lambda d, b: d.read_tile((0, 0, 4, 4), rasterloader.default_pool(), "uint8"),
    "file_list (dataset_meta.c)": lambda d, b: _core.file_list(d),
    "batch sample (batch_read.c)": lambda d, b: _core.read_batch([(d, (0, 0, 4, 4), None, 1)],
                                                                 out=_hwc(b, (1,))),
    "open_warped (warped_vrt.c)": lambda d, b: _core.open_warped(d, crs="EPSG:4326"),
    "warp_info (warped_vrt.c)": lambda d, b: _core.warp_info(d),
    "mosaic_read (mosaic_read.c)": lambda d, b: _core.mosaic_read(
        [(d, 1, (0.0, 0.0, 4.0, 4.0), np.zeros((4, 4), np.uint8), 0, 0, 0.0, None, 0)]),
}


def _assert_names_file(exc, path):
    text = str(exc)
    assert path in text, text
    assert "%" not in text, text


@pytest.mark.parametrize("call", sorted(BINDING_CLOSED_CALLS))
def test_binding_closed_messages_name_the_file(call):
    d, bands = _closed_core()
    with pytest.raises(errors.ClosedError) as ei:
        BINDING_CLOSED_CALLS[call](d, bands)
    assert ei.value.status == _core.E_CLOSED
    _assert_names_file(ei.value, fixture_path(GOOD_NAME))
    if "batch" in call:
        assert "batch sample 0: image" in str(ei.value)


def test_closed_warped_vrt_message_names_its_source():
    from rasterloader.vrt import WarpedVRT
    with rasterloader.open(fixture_path(GOOD_NAME)) as src:
        vrt = WarpedVRT(src, crs="EPSG:4326")
        vrt.close()
        with pytest.raises(errors.ClosedError) as ei:
            vrt.read()
    _assert_names_file(ei.value, f"WarpedVRT({fixture_path(GOOD_NAME)})")


@pytest.mark.parametrize("window, out_hw, needle", [
    ((0, 0, 0, 4), None, "window (col 0, row 0, 0x4) must have width and height >= 1"),
    ((0, 0, 4, 4), (0, 5), "out_hw (0, 5) must be >= 1 each"),
])
def test_bad_window_and_out_hw_messages_name_the_file(rl, window, out_hw, needle):
    ds = rl(GOOD_NAME)
    with pytest.raises(errors.InvalidArgumentError) as ei:
        ds._core.read_tile(window, rasterloader.default_pool(), "uint8", out_hw=out_hw)
    _assert_names_file(ei.value, fixture_path(GOOD_NAME))
    assert needle in str(ei.value)


def test_bad_dtype_message_quotes_it(rl):
    with pytest.raises(errors.InvalidArgumentError) as ei:
        rl(GOOD_NAME)._core.read_tile((0, 0, 4, 4), rasterloader.default_pool(), "complex128")
    assert str(ei.value).startswith("dtype 'complex128' is not one of uint8")


# The conversions PyUnicode_FromFormatV knows (Python's C API docs); others
# (%g, %f, %n, ...) print as they are or fail, depending on the version.
_FROM_FORMAT = re.compile(r"%(?:%|[-0-9.]*(?:l|ll|z)?[cdiuxsp]|[-0-9.]*[AUSRV])")


def _rl_raise_status_formats():
    """(file, format) of every rl_raise_status() call in the binding's C."""
    src_dir = os.path.join(ROOT, "bindings", "python")
    for name in sorted(os.listdir(src_dir)):
        if not name.endswith(".c") or name == "errors.c":
            continue
        text = open(os.path.join(src_dir, name)).read()
        for m in re.finditer(r"rl_raise_status\(\s*RASTER_E_\w+\s*,((?:\s*\"(?:[^\"\\]|\\.)*\")+)", text):
            yield name, "".join(re.findall(r"\"((?:[^\"\\]|\\.)*)\"", m.group(1)))


def test_every_rl_raise_status_format_is_one_python_formats():
    found = list(_rl_raise_status_formats())
    assert len(found) >= 15, found          # the scan still finds the calls
    for name, fmt in found:
        rest = _FROM_FORMAT.sub("", fmt)
        assert "%" not in rest, f"{name}: {fmt!r}: a conversion PyUnicode_FromFormat does not know"


def test_undecodable_path_in_a_message():
    """C's message is bytes: a path that is not UTF-8 comes back as the str
    os.fsdecode gives it, not as a UnicodeDecodeError."""
    path = b"/nonexistent/dir/\xff.tif"
    with pytest.raises(FileNotFoundError) as ei:
        _core.Dataset(path)
    assert os.fsdecode(path) in str(ei.value)


# ------------------------------------------------ the descriptor limit
# A subprocess with RLIMIT_NOFILE at 256 opens datasets (and reads a pixel
# of each) until an open fails, with rasterio and then rasterloader, closing
# everything in between, so both start from the same descriptors (after one
# dataset of each, for what each library opens once per process).  A dataset
# the native reader serves holds one descriptor, as rasterio's does; an open
# holds GDAL's and the reader's for a moment, hence the margin of one.
_FD_LIMIT = 256
_FD_MARGIN = 1
_FD_SCRIPT = r"""
import json, resource, sys
import rasterio, rasterloader
path, gdal_only = sys.argv[1], sys.argv[2]
# What each library opens once per process (its PROJ database, the tile
# cache's arena) is taken before the count starts.
for open_ in (rasterio.open, rasterloader.open):
    with open_(path) as ds:
        ds.read(1, window=((0, 1), (0, 1)))
resource.setrlimit(resource.RLIMIT_NOFILE, (%(limit)d, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

def fill(open_):
    held = []
    try:
        while len(held) < 4 * %(limit)d:
            ds = open_(path)
            held.append(ds)
            ds.read(1, window=((0, 1), (0, 1)))
    except Exception as e:
        return held, {"class": type(e).__module__ + "." + type(e).__name__, "text": str(e),
                      "oserror": isinstance(e, OSError)}
    return held, None

out = {}
for name, open_ in (("rasterio", rasterio.open), ("rasterloader", rasterloader.open)):
    held, err = fill(open_)
    out[name] = {"count": len(held), "error": err}
    if name == "rasterloader":
        try:
            rasterloader.open(gdal_only)
        except Exception as e:
            out["gdal_only"] = {"class": type(e).__name__, "text": str(e)}
    for ds in held:
        ds.close()
print(json.dumps(out))
"""


def test_descriptor_limit_matches_rasterio():
    native = fixture_path(GOOD_NAME)
    gdal_only = fixture_path("hfa_i16_1b_700x531.img")
    with rasterloader.open(native) as ds:
        assert ds._info["reader"] == "native"      # one descriptor: the reader's
    res = subprocess.run([sys.executable, "-c", _FD_SCRIPT % {"limit": _FD_LIMIT}, native, gdal_only],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.strip().splitlines()[-1])
    rio, ours = got["rasterio"], got["rasterloader"]
    print(f"under RLIMIT_NOFILE={_FD_LIMIT}: rasterio opened {rio['count']}, rasterloader {ours['count']}")
    assert rio["error"] is not None and ours["error"] is not None
    assert ours["count"] >= rio["count"] - _FD_MARGIN, got
    assert ours["error"]["class"] == "rasterloader.errors.RasterIOError", ours["error"]
    assert ours["error"]["oserror"]
    for text in (ours["error"]["text"], got["gdal_only"]["text"]):
        assert "RLIMIT_NOFILE" in text and f"limit of {_FD_LIMIT} open files" in text, text
    assert native in ours["error"]["text"]
    assert got["gdal_only"]["class"] == "RasterIOError" and gdal_only in got["gdal_only"]["text"]
