"""What `make test-wheel` runs inside the clean root, in the fresh venv that
has rasterio, numpy, (torch,) and the rasterloader wheel (tests/wheel/run.sh).

rasterloader is imported before rasterio on purpose (it must import rasterio
itself).  Checks, each against rasterio as the oracle:
  - one libgdal mapped, from rasterio's wheel, and the same GDAL version;
  - the fixture matrix (every readable GeoTIFF of data/fixtures, JPEG-YCbCr
    included): the full image and three windows (corner, interior, edge
    crossing) through both readers, identical to rasterio's arrays;
  - NumPy (and torch, when installed) export through DLPack;
  - a 2-worker torch DataLoader reading windows with rasterloader.
Usage: check_wheel.py FIXTURES_DIR
"""

import glob
import os
import sys
import warnings

import rasterloader  # first: it imports rasterio itself
import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)   # fixtures without georeferencing


def mapped(fragment):
    with open("/proc/self/maps") as maps:
        return sorted({ln.split()[-1] for ln in maps if fragment in ln.split()[-1]})


def check_one_gdal():
    gdals = mapped("/libgdal")
    assert len(gdals) == 1 and "rasterio.libs" in gdals[0], gdals
    assert rasterloader.__gdal_version__ == rasterio.__gdal_version__, (
        rasterloader.__gdal_version__, rasterio.__gdal_version__)
    for fam in ("libtiff", "libzstd", "libdeflate"):
        assert all("rasterio.libs" in p for p in mapped("/" + fam)), (fam, mapped("/" + fam))
    print("one GDAL: %s, %s" % (rasterio.__gdal_version__, gdals[0]))


BAD = {"bad_bytecount.tif", "corrupt_tile.tif", "not_a_tiff.tif", "truncated.tif", "zero_length.tif"}


def windows_of(width, height):
    w, h = min(width, 64), min(height, 64)
    yield None
    yield Window(0, 0, w, h)
    yield Window(width // 3, height // 3, w, h)
    yield Window(max(width - w // 2, 0), max(height - h // 2, 0), w, h)   # crosses the edge


def check_matrix(fixtures):
    same = differ = 0
    files = sorted(p for p in glob.glob(os.path.join(fixtures, "*.tif")) if os.path.basename(p) not in BAD)
    for path in files:
        with rasterio.open(path) as rio:
            wins = list(windows_of(rio.width, rio.height))
            want = [rio.read(window=w, boundless=w is not None and
                             (w.col_off + w.width > rio.width or w.row_off + w.height > rio.height))
                    for w in wins]
        for reader in ("gdal", "native"):
            try:
                ds = rasterloader.open(path, reader=reader)
            except rasterloader.errors.UnsupportedError:
                assert reader == "native", path      # a layout the native reader leaves to GDAL
                continue
            with ds:
                for w, expected in zip(wins, want):
                    boundless = w is not None and (w.col_off + w.width > ds.width or
                                                   w.row_off + w.height > ds.height)
                    got = ds.read(window=w, boundless=boundless)
                    if got.dtype == expected.dtype and np.array_equal(got, expected, equal_nan=got.dtype.kind == "f"):
                        same += 1
                    else:
                        differ += 1
                        print("DIFFERS: %s %s %s" % (os.path.basename(path), reader, w))
    print("fixture matrix: %d files, %d windows identical to rasterio, %d differing"
          % (len(files), same, differ))
    assert differ == 0 and same > 0
    return files


def check_dlpack(path):
    window = ((0, 32), (0, 48))
    with rasterloader.open(path) as ds, rasterio.open(path) as rio:
        expected = np.moveaxis(rio.read(window=window), 0, -1)
        tile = ds.read_hwc(window=window, out_dtype=expected.dtype)
        assert np.array_equal(np.from_dlpack(tile), expected)
        try:
            import torch
        except ImportError:
            print("DLPack: NumPy OK; torch not installed")
            return None
        assert torch.equal(torch.from_dlpack(tile), torch.from_numpy(expected))
    print("DLPack: NumPy and torch OK")
    return torch


class WindowsOfOneFile:
    """A map-style Dataset: item i is rasterloader's read of window i."""

    def __init__(self, path, windows):
        self.path, self.windows = path, windows

    def __len__(self):
        return len(self.windows)

    def __getitem__(self, i):
        with rasterloader.open(self.path) as ds:
            return ds.read(window=self.windows[i])


def check_dataloader(torch, path):
    windows = [((r, r + 32), (c, c + 32)) for r in range(0, 256, 64) for c in range(0, 256, 64)]
    loader = torch.utils.data.DataLoader(WindowsOfOneFile(path, windows), batch_size=4, num_workers=2)
    got = torch.cat(list(loader)).numpy()
    with rasterio.open(path) as rio:
        expected = np.stack([rio.read(window=w) for w in windows])
    assert np.array_equal(got, expected)
    print("DataLoader, 2 workers: %d windows identical to rasterio" % len(windows))


def main(fixtures):
    check_one_gdal()
    files = check_matrix(fixtures)
    jpeg = next(p for p in files if "_jpeg_" in p)
    torch = check_dlpack(jpeg)
    if torch is not None:
        check_dataloader(torch, jpeg)
    check_one_gdal()                      # still one after all of that
    print("wheel check: OK")


if __name__ == "__main__":
    main(sys.argv[1])
