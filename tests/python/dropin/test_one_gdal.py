"""One GDAL per process: rasterloader runs on the GDAL rasterio loaded
(rasterloader/_gdal_runtime.py).  Each case runs in a fresh interpreter,
since what is mapped depends on what was imported first."""

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

import rasterloader
from conftest import FIXTURE_DIR, own_arena_env

_CORE = importlib.util.find_spec("rasterloader._core").origin
_RUNTIME = importlib.util.find_spec("rasterloader._gdal_runtime").origin

_REPORT = """
import json, os, sys
{imports}
def mapped(fam):
    with open("/proc/self/maps") as maps:
        return sorted({{l.split()[-1] for l in maps
                       if os.path.basename(l.split()[-1]).startswith("lib" + fam)}})
ds = rasterloader.open(sys.argv[1])
ds.read(window=((0, 16), (0, 16)))          # a read: every GDAL call bound
print(json.dumps({{"rl": rasterloader.__gdal_version__,
                  "rio": sys.modules["rasterio"].__gdal_version__,
                  "gdal": mapped("gdal"), "tiff": mapped("tiff"), "zstd": mapped("zstd"),
                  "deflate": mapped("deflate")}}))
"""


def _run(code, *args, **env):
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=120, env=own_arena_env(**env))


@pytest.mark.parametrize("imports", [
    "import rasterloader",
    "import rasterio\nimport rasterloader",
    "import rasterloader\nimport rasterio",
])
def test_one_libgdal_mapped_whatever_the_import_order(imports):
    path = os.path.join(FIXTURE_DIR, "u16_zstd_pred2_tile256_pixel_3b_700x531_bigtiff.tif")
    r = _run(_REPORT.format(imports=imports), path)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert len(got["gdal"]) == 1, got["gdal"]
    assert got["rl"] == got["rio"]
    for fam in ("tiff", "zstd", "deflate"):        # no second copy of those either
        assert len(got[fam]) == 1, (fam, got[fam])


def test_extension_links_no_gdal_tiff_zstd_deflate_curl():
    out = subprocess.run(["readelf", "-d", _CORE], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)
    assert needed, out
    assert not [n for n in needed if re.match(r"lib(gdal|tiff|zstd|deflate|curl)", n)], needed


def test_gdal_version_is_rasterios():
    import rasterio
    assert rasterloader.__gdal_version__ == rasterio.__gdal_version__


def test_missing_rasterio_is_a_clear_import_error():
    # sys.modules[name] = None makes 'import name' raise ImportError.
    r = _run("import sys\nsys.modules['rasterio'] = None\nimport rasterloader")
    assert r.returncode != 0
    assert "ImportError: rasterloader runs on the GDAL that rasterio loads" in r.stderr, r.stderr
    assert "pip install 'rasterio>=1.4'" in r.stderr


def _standalone_runtime(setup):
    # _gdal_runtime.py loaded as a module of its own (not through the
    # package, whose import would have run load() already).
    return ("import importlib.util\n"
            "spec = importlib.util.spec_from_file_location('rt', %r)\n"
            "rt = importlib.util.module_from_spec(spec); spec.loader.exec_module(rt)\n"
            "%s\nrt.load()\n" % (_RUNTIME, setup))


def test_gdal_outside_the_supported_range_is_an_import_error_naming_both():
    import rasterio
    r = _run(_standalone_runtime("rt.SUPPORTED = ((3, 0), (3, 5))"))
    assert r.returncode != 0
    assert ("ImportError: rasterloader supports GDAL 3.0 to 3.5; rasterio %s runs on GDAL %s"
            % (rasterio.__version__, rasterio.__gdal_version__)) in r.stderr, r.stderr


def test_gdal_without_gtiff_is_an_import_error():
    r = _run(_standalone_runtime(""), GDAL_SKIP="GTiff")   # GDALAllRegister leaves GTiff out
    assert r.returncode != 0
    assert "has no GTiff driver" in r.stderr, r.stderr


def test_nothing_is_made_global_before_the_version_check():
    # An unsupported GDAL must leave the process as it found it: GDAL's
    # symbols still invisible to RTLD_DEFAULT after the ImportError.
    code = _standalone_runtime("rt.SUPPORTED = ((3, 0), (3, 5))").replace(
        "rt.load()", "try:\n    rt.load()\nexcept ImportError:\n    pass\n"
        "import ctypes\nlibc = ctypes.CDLL(None)\nlibc.dlsym.restype = ctypes.c_void_p\n"
        "print(libc.dlsym(None, b'GDALVersionInfo'))")
    r = _run(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "None"


def test_libzstd_symbols_bind_to_libzstd_not_to_a_private_copy():
    # The wheel's libblosc exports its own ZSTD_*; the runtime makes libzstd
    # global first, so ZSTD_versionNumber is libzstd's.
    assert "zstd" in rasterloader._GDAL["libraries"]
    assert "/libzstd" in rasterloader._GDAL["libraries"]["zstd"]
