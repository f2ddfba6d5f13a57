"""Small GeoTIFF scenes in two UTM zones (EPSG:32631 and 32632) on both sides of
6 deg E, for the WarpedVRT tests, the TorchGeo-style integration test and its
bench.  Written with rasterio (the oracle), so they are valid for both readers.

make_scenes(dir, size=...) writes them and returns their paths: three zone-31
scenes (10 m, uint16 x 3, tiled 256, deflate; one with nodata 0 and a zero
corner), one zone-32 scene (10 m) overlapping them across the zone border, and
one zone-31 scene at 20 m (a file whose resolution differs from the others).
"""

import os

import numpy as np


def _pixels(rng, count, size, dtype):
    """Smooth fields plus noise, so reprojection and resampling have something
    to do (a constant image hides kernel differences)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    out = np.empty((count, size, size), dtype)
    for b in range(count):
        f = (np.sin(6.3 * xx * (b + 1) + rng.uniform(0, 6)) * np.cos(4.1 * yy + rng.uniform(0, 6)))
        v = 20000 + 15000 * f + rng.normal(0, 800, (size, size))
        out[b] = np.clip(v, 1, 60000).astype(dtype)
    return out


def _write(path, data, crs, x0, y0, res, nodata=None):
    import rasterio
    from rasterio.transform import from_origin
    count, h, w = data.shape
    profile = dict(driver="GTiff", width=w, height=h, count=count, dtype=data.dtype.name,
                   crs=crs, transform=from_origin(x0, y0, res, res), tiled=True,
                   blockxsize=256, blockysize=256, compress="deflate", predictor=2)
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def make_scenes(directory, size=600, seed=0):
    """Write the scenes (once per directory) and return their paths."""
    from rasterio.warp import transform as warp_transform
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    # Upper-left corners near lon 5.85 E, lat 50.0 N, in each zone's metres.
    (x31,), (y31,) = warp_transform("EPSG:4326", "EPSG:32631", [5.80], [50.05])
    (x32,), (y32,) = warp_transform("EPSG:4326", "EPSG:32632", [5.95], [50.04])
    x31, y31, x32, y32 = (round(v, -1) for v in (x31, y31, x32, y32))
    ext = size * 10.0
    specs = [
        ("z31_a.tif", "EPSG:32631", x31, y31, 10.0, None),
        ("z31_b.tif", "EPSG:32631", x31 + 0.75 * ext, y31, 10.0, None),
        ("z31_c.tif", "EPSG:32631", x31, y31 - 0.75 * ext, 10.0, 0),
        ("z32_a.tif", "EPSG:32632", x32, y32, 10.0, None),
        ("z31_coarse.tif", "EPSG:32631", x31 + 0.5 * ext, y31 - 0.5 * ext, 20.0, None),
    ]
    paths = []
    for name, crs, x0, y0, res, nodata in specs:
        path = os.path.join(directory, name)
        paths.append(path)
        if os.path.exists(path):
            continue
        data = _pixels(rng, 3, size, np.uint16)
        if nodata is not None:
            data[:, : size // 5, : size // 4] = 0
        _write(path + ".part", data, crs, x0, y0, res, nodata)
        os.replace(path + ".part", path)
    return paths
