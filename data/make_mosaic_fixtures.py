"""Sentinel-2-like mosaic fixtures (issue 16): one file per band, two scenes in
two UTM zones, and a label raster.

Written into <out>/mosaic/ by `make fixtures` (data/make_fixtures.py calls
make_mosaic_fixtures()), or on its own: python data/make_mosaic_fixtures.py --out DIR.

- s2_32631_<band>.tif: a scene in UTM 31N just west of 6 deg E (the zone
  border), s2_32632_<band>.tif: a scene in UTM 32N overlapping it across the
  border.  Bands B02, B03, B04 at 10 m (SIZE x SIZE), B8A and B11 at 20 m
  (SIZE/2 x SIZE/2); uint16, DEFLATE with predictor 2, 256x256 tiles,
  nodata 0, as Sentinel-2 L2A COGs are (without overviews).
- Nodata: the 32631 scene has a swath edge (a diagonal band of 0 along its
  east side, like the edge of an orbit's swath), the 32632 scene a 0 blob;
  valid pixels are never 0.  So where the scenes overlap, "first scene wins"
  and "a later scene fills the first one's nodata" both happen.
- labels_32631.tif: uint8 classes 0..5 on the 32631 scene's 10 m grid, over
  the bounds of both scenes (in 32631), no nodata.
Rewritten when this script changes (stamp.sha256 holds its hash).
"""

import argparse
import hashlib
import os
import sys

import numpy as np

MOSAIC_DIR = "mosaic"
SIZE = 1024                      # 10 m bands: SIZE x SIZE pixels (10.24 km)
BANDS = (("B02", 10), ("B03", 10), ("B04", 10), ("B8A", 20), ("B11", 20))
SCENES = (                       # crs, upper-left corner (lon, lat)
    ("32631", (5.80, 50.06)),
    ("32632", (5.87, 50.02)),
)
SCRIPT_SHA256 = hashlib.sha256(open(os.path.abspath(__file__), "rb").read()).hexdigest()


def band_path(out_dir, crs, band):
    return os.path.join(out_dir, MOSAIC_DIR, f"s2_{crs}_{band}.tif")


def scene_paths(out_dir):
    """[[B02, B03, B04, B8A, B11] per scene], 32631 first."""
    return [[band_path(out_dir, crs, b) for b, _ in BANDS] for crs, _ in SCENES]


def label_path(out_dir):
    return os.path.join(out_dir, MOSAIC_DIR, "labels_32631.tif")


def _origin(crs, lonlat):
    from rasterio.warp import transform
    (x,), (y,) = transform("EPSG:4326", f"EPSG:{crs}", [lonlat[0]], [lonlat[1]])
    return round(x / 60.0) * 60.0, round(y / 60.0) * 60.0   # on every band's grid, as S2 tiles


def _field(rng, n, band_no):
    """Smooth fields plus noise in 1..60000, so resampling and warping have
    something to do; never 0 (0 is nodata)."""
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64) / n
    f = np.sin(7.1 * xx * (band_no + 1) + rng.uniform(0, 6)) * np.cos(5.3 * yy + rng.uniform(0, 6))
    v = 20000 + 15000 * f + rng.normal(0, 900, (n, n))
    return np.clip(v, 1, 60000).astype(np.uint16)


def _nodata_area(scene_no, n):
    yy, xx = np.mgrid[0:n, 0:n] / n
    if scene_no == 0:             # swath edge along the east side
        return xx + 0.35 * yy > 1.05
    return (xx - 0.3) ** 2 + (yy - 0.6) ** 2 < 0.04     # a cloud-mask-like blob


def _write(path, data, crs, x0, y0, res, nodata=0, dtype="uint16"):
    import rasterio
    from rasterio.transform import from_origin
    h, w = data.shape
    with rasterio.open(path + ".part", "w", driver="GTiff", width=w, height=h, count=1, dtype=dtype,
                       crs=f"EPSG:{crs}", transform=from_origin(x0, y0, res, res), nodata=nodata,
                       tiled=True, blockxsize=256, blockysize=256, compress="deflate",
                       predictor=2) as dst:
        dst.write(data, 1)
    os.replace(path + ".part", path)


def _write_labels(out_dir):
    from rasterio.warp import transform_bounds
    (crs0, ll0), (crs1, ll1) = SCENES
    x0, y0 = _origin(crs0, ll0)
    x1, y1 = _origin(crs1, ll1)
    ext = SIZE * 10.0
    l, b, r, t = transform_bounds(f"EPSG:{crs1}", f"EPSG:{crs0}", x1, y1 - ext, x1 + ext, y1)
    left, top = min(x0, l), max(y0, t)
    w = int(np.ceil((max(x0 + ext, r) - left) / 10.0))
    h = int(np.ceil((top - min(y0 - ext, b)) / 10.0))
    rng = np.random.default_rng(16)
    coarse = rng.integers(0, 6, (h // 64 + 1, w // 64 + 1), dtype=np.uint8)
    labels = np.kron(coarse, np.ones((64, 64), np.uint8))[:h, :w]
    _write(label_path(out_dir), labels, crs0, left, top, 10.0, nodata=None, dtype="uint8")


def make_mosaic_fixtures(out_dir):
    d = os.path.join(out_dir, MOSAIC_DIR)
    stamp = os.path.join(d, "stamp.sha256")
    paths = [p for s in scene_paths(out_dir) for p in s] + [label_path(out_dir)]
    if (os.path.exists(stamp) and open(stamp).read().strip() == SCRIPT_SHA256
            and all(os.path.exists(p) for p in paths)):
        return
    os.makedirs(d, exist_ok=True)
    for scene_no, (crs, lonlat) in enumerate(SCENES):
        x0, y0 = _origin(crs, lonlat)
        rng = np.random.default_rng(1600 + scene_no)
        for band_no, (band, res) in enumerate(BANDS):
            n = SIZE * 10 // res
            data = _field(rng, n, band_no)
            data[_nodata_area(scene_no, n)] = 0
            _write(band_path(out_dir, crs, band), data, crs, x0, y0, float(res))
    _write_labels(out_dir)
    with open(stamp, "w") as f:
        f.write(SCRIPT_SHA256 + "\n")
    print(f"{d}: wrote {len(paths)} mosaic fixtures")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures"))
    make_mosaic_fixtures(ap.parse_args().out)
    sys.exit(0)
