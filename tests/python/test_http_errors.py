"""HTTP failures are RasterIOError (an OSError) naming the URL and the cause.

A server that ignores Range requests answers every GET with the whole file
and 200; GDAL refuses to read it ("Range downloading not supported by this
server!", reported as CPLE_AppDefined, like a codec it lacks), which used to
come out as UnsupportedError (a NotImplementedError).  It is the server's
failure, so it is an I/O error, for both readers, open() and the loaders,
and rasterio's answer on the same URL is an error too.
"""

import os
import sys

import pytest
import rasterio

import rasterloader
from rasterloader import errors
from conftest import FIXTURE_DIR, ROOT

sys.path.insert(0, os.path.join(ROOT, "tests", "remote"))
from recording_httpd import RecordingServer  # noqa: E402

COG = "cog_u16_deflate_pred2_tile256_pixel_3b_1024x1024.tif"
ENV = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_HTTP_MAX_RETRY": "0"}


@pytest.fixture(scope="module")
def no_range():
    with RecordingServer(FIXTURE_DIR, ranges=False) as srv:
        yield srv


def _check(e, url):
    assert isinstance(e, errors.RasterIOError) and isinstance(e, OSError)
    assert not isinstance(e, NotImplementedError)
    assert e.status == 2 and e.status_name == "RASTER_E_IO"
    msg = str(e)
    assert url in msg and "Range" in msg and "server" in msg, msg


@pytest.mark.parametrize("reader", [None, "gdal", "native"])
def test_server_without_range_support_is_an_io_error(no_range, reader):
    url = no_range.url(f"open/{reader}/{COG}")
    with rasterio.Env(**ENV):
        with pytest.raises(errors.RasterIOError) as ei:
            rasterloader.open(url, reader=reader)
        # The oracle: rasterio cannot read it either.
        with pytest.raises(rasterio.errors.RasterioIOError):
            with rasterio.open(url.replace("open/", "rio/")) as src:
                src.read(1, window=((0, 8), (0, 8)))
    _check(ei.value, url)
    assert no_range.requests(f"open/{reader}/"), "the server was asked"


def test_loader_sample_on_a_server_without_range(no_range):
    url = no_range.url(f"loader/{COG}")
    with rasterio.Env(**ENV):
        with pytest.raises(errors.RasterIOError) as ei:
            rasterloader.BatchLoader([(url, None, (0, 0, 64, 64))], 1, prefetch=0)
    _check(ei.value, url)
