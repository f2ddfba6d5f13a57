"""rasterloader's exceptions are rasterio's too, so code written for rasterio
catches them: ``except RasterioIOError`` around open and read (TorchGeo skips
unreadable files that way), WindowError, RasterioDeprecationWarning.  Without
rasterio the package still imports and reads (a subprocess hides rasterio)."""

import pickle
import subprocess
import sys
import textwrap

import pytest
import rasterio
import rasterio.errors
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

import rasterloader
from rasterloader import errors
from conftest import GOOD, MALFORMED, ROOT, fixture_path

NEEDS_READ = [e["name"] for e in MALFORMED if e["dtype"]]       # open fine, read fails
NOT_RASTER = [e["name"] for e in MALFORMED if not e["dtype"]]   # open fails
GOOD_NAME = next(e["name"] for e in GOOD if e["count"] >= 3 and e["dtype"] == "uint16")


def test_open_failures_are_rasterio_io_errors():
    for path in [fixture_path("does_not_exist.tif")] + [fixture_path(n) for n in NOT_RASTER]:
        try:
            rasterloader.open(path)
        except RasterioIOError as e:      # the line TorchGeo has
            assert isinstance(e, errors.RasterError) and isinstance(e, OSError)
        else:
            pytest.fail(f"{path} opened")
        # rasterio says the same about the same file
        with pytest.raises(RasterioIOError):
            rasterio.open(path)
    with pytest.raises(FileNotFoundError):      # the built-in bases still hold
        rasterloader.open(fixture_path("does_not_exist.tif"))


@pytest.mark.parametrize("reader", [None, "gdal"])
@pytest.mark.parametrize("name", NEEDS_READ)
def test_read_failures_are_rasterio_io_errors(name, reader):
    calls = [lambda s: s.read(), lambda s: s.read(1, masked=True), lambda s: s.checksum(1),
             lambda s: s.read(out_shape=(s.count, 10, 10))]
    with rasterio.open(fixture_path(name)) as a, \
            rasterloader.open(fixture_path(name), reader=reader) as b:
        for read in calls:
            try:
                read(a)
            except RasterioIOError:
                with pytest.raises(RasterioIOError) as ei:   # where rasterio fails, so do we
                    read(b)
                assert isinstance(ei.value, errors.CorruptError) and name in str(ei.value)
            else:
                read(b)          # a decimated read may skip the damaged tile, as in rasterio
        with pytest.raises(RasterioIOError):
            b.read_hwc()


def test_closed_dataset_is_a_rasterio_io_error():
    b = rasterloader.open(fixture_path(GOOD_NAME))
    b.close()
    with pytest.raises(RasterioIOError):
        b.read(1)
    with pytest.raises(ValueError):             # ClosedError keeps its ValueError base
        b.read(1)


def test_window_errors_are_rasterio_window_errors():
    with rasterloader.open(fixture_path(GOOD_NAME)) as b:
        for bad in (lambda: b.read_hwc(window=Window(b.width + 5, 0, 10, 10)),
                    lambda: b.read(window=((0, 1, 2), (0, 1))),
                    lambda: b.checksum(1, window=Window(-1, 0, 5, 5))):
            with pytest.raises(rasterio.errors.WindowError) as ei:
                bad()
            assert isinstance(ei.value, errors.WindowError) and isinstance(ei.value, ValueError)


def test_deprecations_warn_as_rasterio():
    with rasterloader.open(fixture_path(GOOD_NAME)) as b, rasterio.open(fixture_path(GOOD_NAME)) as a:
        box = tuple(a.bounds)
        with pytest.warns(rasterio.errors.RasterioDeprecationWarning):
            wa = a.window(*box, precision=3)
        with pytest.warns(rasterio.errors.RasterioDeprecationWarning):
            wb = b.window(*box, precision=3)
        assert wa == wb
    assert issubclass(errors.RasterloaderDeprecationWarning, FutureWarning)


def test_errors_pickle_with_their_rasterio_bases():
    for cls in (errors.CorruptError, errors.FormatError, errors.RasterIOError,
                errors.RasterFileNotFoundError, errors.UnsupportedError, errors.ClosedError,
                errors.WindowError):
        e = pickle.loads(pickle.dumps(cls("f.tif: damaged", cls.default_status)))
        assert type(e) is cls and str(e) == "f.tif: damaged"
        assert isinstance(e, (RasterioIOError, rasterio.errors.WindowError))


HIDE_RASTERIO = textwrap.dedent("""
    import importlib.abc, sys
    class HideRasterio(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "rasterio" or name.startswith("rasterio."):
                raise ImportError("rasterio hidden for this test: " + name)
    sys.meta_path.insert(0, HideRasterio())
    try:
        import rasterloader
    except ImportError as e:
        print("ImportError:", e)
    else:
        raise AssertionError("imported without rasterio")
""")


def test_without_rasterio_the_import_error_says_what_to_install():
    """rasterio is a runtime dependency (rasterloader runs on its GDAL): without
    it, import fails cleanly, naming it and what to install."""
    r = subprocess.run([sys.executable, "-c", HIDE_RASTERIO], capture_output=True,
                       text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "rasterio hidden for this test" in r.stdout and "pip install 'rasterio>=1.4'" in r.stdout, r.stdout
