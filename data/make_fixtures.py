#!/usr/bin/env python3
"""Make the rasterloader test fixtures, the committed training sample and the bench data.

    python data/make_fixtures.py [--out data/fixtures] [--sample data/sample]
                                 [--bench DIR [--bench-size 4096]] [--force] [--verify]

Every file is named for the property it shows and listed in <out>/manifest.json (see
data/README.md for the fields).  Pixels come from seeded numpy generators, so every run
gives the same pixels (and, with one GDAL version, the same bytes).  A run is skipped when
the manifest records the sha256 of this script and every listed file exists; --force
regenerates.  --verify re-opens every file with rasterio, compares it with the manifest and
runs Debian's /usr/bin/gdalinfo -checksum on it (the C library links that GDAL, 3.6).

Only formats GDAL 3.6 reads are written: no Float16, no LERC/JXL/WEBP.
"""

import argparse
import concurrent.futures
import hashlib
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass

import numpy as np
import rasterio
import rasterio.errors
import rasterio.shutil
import tifffile
from rasterio.enums import ColorInterp
from rasterio.io import MemoryFile
from rasterio.transform import Affine

SCRIPT_SHA256 = hashlib.sha256(open(__file__, "rb").read()).hexdigest()

DTYPES = {"u8": "uint8", "i8": "int8", "u16": "uint16", "i16": "int16",
          "u32": "uint32", "i32": "int32", "f32": "float32", "f64": "float64"}
PREDICTOR_CODECS = ("deflate", "zstd", "lzw")
NATIVE_CODECS = ("none", "deflate", "zstd", "lzw", "packbits")
# Noise standard deviation in units of the dtype's value span (before min/max scaling).
NOISE = {"uint8": 1.5 / 255, "int8": 1.5 / 255, "uint16": 3e-4, "int16": 3e-4,
         "uint32": 2e-5, "int32": 2e-5, "float32": 5e-4, "float64": 5e-4}
FLOAT_SCALE = {"float32": 1.0e4, "float64": 1.0e6}
# Georeferencing cycles through these (EPSG code, geotransform).
GEOREFS = [
    (32633, Affine(10.0, 0.0, 399960.0, 0.0, -10.0, 5800020.0)),
    (4326, Affine(1e-4, 0.0, 13.0, 0.0, -1e-4, 52.5)),
    (32618, Affine(30.0, 0.0, 300000.0, 0.0, -30.0, 4600000.0)),
]


# --------------------------------------------------------------------------- pixels

def rng_for(name):
    """A numpy Generator seeded from the fixture name, so runs and processes agree."""
    return np.random.default_rng(int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little"))


def field01(h, w, band, rng, noise):
    """Smooth gradient + waves + two sharp edges + seeded noise, scaled to [0, 1]."""
    y = np.linspace(0.0, 1.0, h)[:, None]
    x = np.linspace(0.0, 1.0, w)[None, :]
    p = rng.uniform(0.0, 2.0 * np.pi, 4)
    f = 0.45 * (x * np.cos(p[3]) + y * np.sin(p[3]))
    f = f + 0.25 * np.sin(2 * np.pi * (1.3 + 0.6 * band) * x + p[0]) * np.cos(2 * np.pi * (0.9 + 0.4 * band) * y + p[1])
    f = f + 0.08 * np.sin(2 * np.pi * (5.0 + band) * (x + 0.7 * y) + p[2])
    r0, r1 = np.sort(rng.integers(0, h + 1, 2))
    c0, c1 = np.sort(rng.integers(0, w + 1, 2))
    f[r0:r1, c0:c1] += 0.3                                   # a rectangular step
    f = f - 0.2 * ((x - 0.5 * y) > (0.35 + 0.1 * band))      # a diagonal step
    f = f + rng.normal(0.0, noise, (h, w))
    lo, hi = float(f.min()), float(f.max())
    if hi <= lo:
        return np.full((h, w), 0.25 + 0.2 * band)
    return (f - lo) / (hi - lo)


def to_dtype(f, dtype, band):
    """Map a [0, 1] field onto the dtype's range (floats: signed, fractional)."""
    dt = np.dtype(dtype)
    if dt.kind == "f":
        s = FLOAT_SCALE[dtype]
        return ((2.0 * f - 1.0) * s + 0.37 * band).astype(dt)
    info = np.iinfo(dt)
    v = np.rint(float(info.min) + f * (float(info.max) - float(info.min)))
    return np.clip(v, info.min, info.max).astype(np.int64).astype(dt)


def make_pixels(name, dtype, count, h, w):
    rng = rng_for(name)
    return np.stack([to_dtype(field01(h, w, b, rng, NOISE[dtype]), dtype, b) for b in range(count)])


def blob(h, w, rng, n=3):
    """An irregular region: a union of wavy ellipses (about 10-20 % of the image)."""
    y = np.linspace(0.0, 1.0, h)[:, None]
    x = np.linspace(0.0, 1.0, w)[None, :]
    m = np.zeros((h, w), bool)
    for _ in range(n):
        cy, cx = rng.uniform(0.2, 0.8, 2)
        ry, rx = rng.uniform(0.08, 0.2, 2)
        ph = rng.uniform(0.0, 2.0 * np.pi)
        dy, dx = (y - cy) / ry, (x - cx) / rx
        m |= np.hypot(dy, dx) < 1.0 + 0.3 * np.sin(5.0 * np.arctan2(dy, dx) + ph)
    return m


def irregular_mask(h, w, rng):
    """A 0/255 validity mask: a wavy boundary, an invalid blob and an invalid diagonal stripe."""
    y = np.linspace(0.0, 1.0, h)[:, None]
    x = np.linspace(0.0, 1.0, w)[None, :]
    valid = y < 0.85 + 0.1 * np.sin(2 * np.pi * 3 * x)       # wavy bottom edge
    valid &= ~blob(h, w, rng, n=2)
    valid &= ~(np.abs((x - y) - 0.1) < 0.02)                   # thin diagonal stripe
    return np.where(valid, 255, 0).astype(np.uint8)


# --------------------------------------------------------------------------- fixture specs

@dataclass
class Fx:
    dtype: str
    compress: str
    predictor: int
    layout: str                   # tile256, tile512, strip7, strip16, stripall
    interleave: str               # pixel / band
    count: int
    width: int
    height: int
    group: str = "core"
    purpose: str = ""
    prefix: str = ""
    suffix: str = ""
    byteorder: str = "little"
    bigtiff: bool = False
    nodata: object = None
    mask: str = "none"
    cog: bool = False
    driver: str = "GTiff"
    ext: str = ".tif"
    nbits: int = 0
    photometric: str = ""
    palette: bool = False
    georef: bool = True
    special: str = ""              # naninf, sparse, rgba, labels
    malformed: str = None
    name: str = ""

    @property
    def tiled(self):
        return self.layout.startswith("tile")

    @property
    def block(self):
        """(blockxsize, blockysize) as GDAL will report it."""
        if self.tiled:
            t = int(self.layout[4:])
            return t, t
        rows = self.height if self.layout == "stripall" else int(self.layout[5:])
        return self.width, min(rows, self.height)

    @property
    def native_expected(self):
        return (self.driver == "GTiff" and self.compress in NATIVE_CODECS and not self.nbits
                and not self.palette and self.dtype in DTYPES.values() and self.malformed is None)


def F(desc, **kw):
    """Build a spec from 'u16 deflate 2 tile256 pixel 3 700x531' and name it after its properties."""
    dt, comp, pred, layout, il, count, size = desc.split()
    w, h = (int(v) for v in size.split("x"))
    fx = Fx(DTYPES[dt], comp, int(pred), layout, il, int(count), w, h, **kw)
    parts = [fx.prefix] if fx.prefix else []
    parts += [dt, comp]
    if comp in PREDICTOR_CODECS:
        parts.append(f"pred{pred}")
    parts += [layout, il, f"{count}b", size]
    if fx.suffix:
        parts.append(fx.suffix)
    if not fx.name:
        fx.name = "_".join(parts) + fx.ext
    if not fx.purpose:
        shape = "partial edge blocks" if (w % fx.block[0] or h % fx.block[1]) else "exact block multiple"
        codec = f"{comp} pred{pred}" if comp in PREDICTOR_CODECS else comp
        fx.purpose = f"{dt} {codec} {layout} {il}-interleaved, {shape}"
    return fx


def fixture_specs():
    S = []
    core = [
        # dtype codec pred layout interleave bands WxH
        "u8 none 1 tile256 pixel 3 700x531",
        "u8 deflate 1 tile256 pixel 1 1000x777",
        "u8 deflate 2 tile512 band 3 1024x768",
        "u8 zstd 2 tile256 pixel 4 512x512",
        "u8 lzw 2 strip16 pixel 3 700x531",
        "u8 packbits 1 strip7 band 1 257x513",
        "u8 zstd 1 stripall pixel 1 1000x777",
        "i8 none 1 strip16 pixel 1 700x531",
        "i8 deflate 2 tile256 pixel 3 700x531",
        "i8 zstd 1 tile512 band 3 1000x777",
        "i8 lzw 2 strip7 band 4 257x513",
        "u16 none 1 tile512 pixel 4 512x512",
        "u16 deflate 2 tile256 pixel 3 700x531",
        "u16 deflate 1 tile256 band 4 1000x777",
        "u16 deflate 2 strip7 band 3 257x513",
        "u16 zstd 2 tile512 pixel 4 1024x768",
        "u16 zstd 1 strip16 band 3 700x531",
        "u16 lzw 2 tile256 band 3 257x513",
        "u16 lzw 1 strip16 pixel 1 1000x777",
        "u16 packbits 1 tile256 pixel 4 700x531",
        "i16 none 1 strip16 band 3 700x531",
        "i16 deflate 2 tile256 pixel 1 1000x777",
        "i16 deflate 1 tile512 band 4 1024x768",
        "i16 zstd 2 tile256 band 3 700x531",
        "i16 lzw 2 strip7 pixel 1 257x513",
        "i16 packbits 1 tile512 pixel 3 1000x777",
        "u32 none 1 tile256 pixel 1 257x513",
        "u32 deflate 2 tile256 pixel 3 700x531",
        "u32 zstd 2 strip16 band 3 700x531",
        "u32 lzw 1 tile512 band 1 1024x768",
        "i32 none 1 strip7 pixel 1 700x531",
        "i32 deflate 1 tile256 band 3 257x513",
        "i32 zstd 2 tile256 pixel 4 700x531",
        "i32 lzw 2 strip16 pixel 1 1000x777",
        "i32 packbits 1 tile256 pixel 1 512x512",
        "f32 none 1 tile256 pixel 1 700x531",
        "f32 deflate 3 tile256 pixel 3 700x531",
        "f32 deflate 2 tile512 band 1 1000x777",
        "f32 deflate 1 strip16 pixel 4 257x513",
        "f32 zstd 3 strip16 band 4 700x531",
        "f32 zstd 2 tile256 pixel 3 512x512",
        "f32 lzw 3 tile256 band 3 700x531",
        "f32 packbits 1 strip7 pixel 1 257x513",
        "f64 none 1 strip16 band 1 257x513",
        "f64 deflate 3 tile256 pixel 1 700x531",
        "f64 zstd 2 tile512 band 3 513x257",
        "f64 lzw 3 strip7 pixel 1 700x531",
    ]
    S += [F(d) for d in core]

    S += [
        F("u8 lzw 1 tile256 pixel 1 1x1", group="sizes", purpose="1x1 image, one mostly-empty tile"),
        F("u16 deflate 2 tile256 band 1 1x1", group="sizes", purpose="1x1 image, planar tag on one band"),
        F("f32 zstd 3 stripall pixel 3 1x1", group="sizes", purpose="1x1 image, one 1-row strip"),
        F("u16 zstd 2 tile256 pixel 1 3x1000", group="sizes", purpose="tall thin image, 3 px wide in 256 tiles"),
        F("f64 zstd 1 strip16 pixel 1 3x1000", group="sizes", purpose="tall thin image in strips"),
        F("u16 deflate 2 stripall pixel 4 1000x3", group="sizes", purpose="wide short image, one strip"),
        F("f32 lzw 1 tile256 band 3 1000x3", group="sizes", purpose="wide short image, 3 rows in 256 tiles"),
    ]

    S += [
        F("u16 deflate 2 tile256 pixel 3 700x531", group="byteorder", suffix="be", byteorder="big",
          purpose="big-endian u16 with horizontal predictor"),
        F("i16 zstd 1 strip16 band 1 700x531", group="byteorder", suffix="be", byteorder="big",
          purpose="big-endian i16 strips"),
        F("f32 zstd 3 strip16 band 4 700x531", group="byteorder", suffix="be", byteorder="big",
          purpose="big-endian f32 with floating-point predictor"),
        F("f64 lzw 2 tile256 pixel 1 257x513", group="byteorder", suffix="be", byteorder="big",
          purpose="big-endian f64 with predictor 2"),
        F("i32 none 1 tile256 pixel 1 257x513", group="byteorder", suffix="be", byteorder="big",
          purpose="big-endian uncompressed i32"),
    ]
    S += [
        F("u16 zstd 2 tile256 pixel 3 700x531", group="bigtiff", suffix="bigtiff", bigtiff=True,
          purpose="BigTIFF tiled ZSTD (8-byte offsets)"),
        F("f32 none 1 strip16 band 1 257x513", group="bigtiff", suffix="bigtiff", bigtiff=True,
          purpose="BigTIFF uncompressed strips"),
        F("i16 deflate 2 tile512 band 3 1000x777", group="bigtiff", suffix="bigtiff_be", bigtiff=True,
          byteorder="big", purpose="big-endian BigTIFF, planar"),
    ]
    S += [
        F("u8 deflate 2 tile256 pixel 1 700x531", group="nodata", suffix="nodata0", nodata=0, mask="nodata",
          purpose="u8 nodata=0 with a nodata blob"),
        F("i16 zstd 2 tile256 pixel 1 1000x777", group="nodata", suffix="nodata_m9999", nodata=-9999,
          mask="nodata", purpose="i16 nodata=-9999 with a nodata blob"),
        F("f32 deflate 3 tile256 pixel 1 700x531", group="nodata", suffix="nodata_nan", nodata=float("nan"),
          mask="nodata", purpose="f32 nodata=NaN with a NaN blob"),
        F("f32 lzw 1 strip16 pixel 3 700x531", group="nodata", suffix="nodata_m3.4e38", nodata=-3.4e38,
          mask="nodata", purpose="f32 nodata=-3.4e38 in all 3 bands"),
        F("f32 deflate 3 tile256 pixel 1 257x513", group="naninf", suffix="naninf", special="naninf",
          purpose="NaN, +inf and -inf pixels without nodata"),
    ]
    S += [
        F("u8 deflate 2 tile256 pixel 3 700x531", group="mask", suffix="mask_internal", mask="internal",
          purpose="irregular internal 1-bit mask IFD"),
        F("u16 zstd 2 strip16 band 1 1000x777", group="mask", suffix="mask_internal", mask="internal",
          purpose="internal mask on a stripped file"),
        F("u16 deflate 2 tile256 pixel 1 700x531", group="mask", suffix="mask_external", mask="external_msk",
          purpose="sidecar .msk mask file"),
        F("u8 deflate 2 tile256 pixel 4 512x512", group="mask", suffix="rgba", mask="alpha", special="rgba",
          photometric="RGB", purpose="RGBA with unassociated alpha, partly non-binary"),
        F("u16 deflate 2 tile256 pixel 1 1000x777", group="sparse", suffix="sparse", special="sparse",
          purpose="sparse tiles (offset 0, bytecount 0) read as zeros"),
    ]
    S += [
        F("u16 deflate 2 tile256 pixel 3 1024x1024", group="cog", prefix="cog", cog=True,
          purpose="COG with 2 overviews, block leaders/trailers"),
        F("i16 zstd 2 tile256 pixel 1 1000x777", group="cog", prefix="cog", cog=True,
          purpose="ZSTD COG, odd size, with overviews"),
    ]
    S += [
        F("u8 jpeg 1 tile256 pixel 3 700x531", group="gdal_fallback", suffix="ycbcr", photometric="YCBCR",
          purpose="JPEG YCbCr needs GDAL"),
        F("u8 deflate 1 tile256 pixel 1 512x512", group="gdal_fallback", suffix="palette", palette=True,
          special="labels", purpose="paletted image needs GDAL"),
        F("u8 deflate 1 tile256 pixel 1 700x531", group="gdal_fallback", suffix="nbits1", nbits=1,
          special="labels", purpose="1-bit image needs GDAL"),
        F("u16 lzw 1 strip16 pixel 1 257x513", group="gdal_fallback", suffix="nbits12", nbits=12,
          purpose="12-bit image needs GDAL"),
        F("i16 none 1 tile64 band 1 700x531", group="gdal_fallback", name="hfa_i16_1b_700x531.img", driver="HFA",
          purpose="ERDAS Imagine (non-TIFF) via GDAL"),
    ]
    S += [
        F("u8 deflate 2 tile256 pixel 1 512x512", group="nogeo", prefix="nogeo", georef=False,
          purpose="no CRS and no geotransform"),
    ]
    # Malformed files: all but two start from one valid u16 DEFLATE 256-tiled 3-band file.
    base = dict(group="malformed")
    S += [
        Fx("uint16", "deflate", 2, "tile256", "pixel", 3, 700, 531, name="truncated.tif",
           malformed="file cut in the middle of a tile", purpose="truncated tile data", **base),
        Fx("uint16", "deflate", 2, "tile256", "pixel", 3, 700, 531, name="corrupt_tile.tif",
           malformed="garbage deflate stream in one tile", purpose="undecodable tile", **base),
        Fx("uint16", "deflate", 2, "tile256", "pixel", 3, 700, 531, name="bad_bytecount.tif",
           malformed="TileByteCounts entry runs past EOF", purpose="false TileByteCounts", **base),
        Fx("", "", 0, "", "", 0, 0, 0, name="not_a_tiff.tif", malformed="text and random bytes",
           purpose="not a TIFF at all", **base),
        Fx("", "", 0, "", "", 0, 0, 0, name="zero_length.tif", malformed="empty file",
           purpose="zero-length file", **base),
    ]
    names = [s.name for s in S]
    assert len(names) == len(set(names)), "duplicate fixture names"
    return S


# --------------------------------------------------------------------------- writers

def georef_for(index):
    epsg, t = GEOREFS[index % len(GEOREFS)]
    return {"crs": f"EPSG:{epsg}", "transform": t}


def fixture_data(fx):
    """Pixels (count, h, w), optional mask (h, w) u8 and colormap for one spec."""
    rng = rng_for(fx.name + "/extra")
    h, w = fx.height, fx.width
    mask = cmap = None
    if fx.special == "labels":
        ncls = 2 if fx.nbits == 1 else 6
        data = np.zeros((1, h, w), np.uint8)
        for c in range(1, ncls):
            data[0][blob(h, w, rng, n=2)] = c
        if fx.palette:
            cmap = {c: tuple(int(v) for v in rng.integers(0, 256, 3)) + (255,) for c in range(ncls)}
        return data, mask, cmap
    data = make_pixels(fx.name, fx.dtype, fx.count, h, w)
    if fx.nbits:
        data = (data >> (16 - fx.nbits)).astype(data.dtype)
    if fx.mask == "nodata":
        b = blob(h, w, rng)
        nd = fx.nodata
        if not math.isnan(nd):
            data[data == np.asarray(nd, data.dtype)] += 1     # keep valid pixels off the nodata value
        data[:, b] = np.asarray(nd, data.dtype)
    elif fx.mask in ("internal", "external_msk"):
        mask = irregular_mask(h, w, rng)
    elif fx.special == "naninf":
        data[0][blob(h, w, rng, n=1)] = np.nan
        data[0, h // 3, 10:60] = np.inf
        ys, xs = rng.integers(0, h, 25), rng.integers(0, w, 25)
        data[0, ys, xs] = -np.inf
    elif fx.special == "rgba":
        ramp = field01(h, w, 7, rng, 0.0)
        data[3] = np.clip((ramp - 0.3) / 0.4 * 255.0, 0, 255).astype(np.uint8)   # 0, 255 and a ramp
    elif fx.special == "sparse":
        bx, by = fx.block
        for ty in range(0, (h + by - 1) // by):
            for tx in range(0, (w + bx - 1) // bx):
                if (tx + 2 * ty) % 3 == 0:
                    data[:, ty * by:(ty + 1) * by, tx * bx:(tx + 1) * bx] = 0
    return data, mask, cmap


def gtiff_profile(fx, index):
    p = {"driver": "GTiff", "width": fx.width, "height": fx.height, "count": fx.count, "dtype": fx.dtype,
         "interleave": fx.interleave, "tiled": fx.tiled, "bigtiff": "YES" if fx.bigtiff else "NO"}
    if fx.georef:
        p.update(georef_for(index))
    bx, by = fx.block
    if fx.tiled:
        p.update(blockxsize=bx, blockysize=by)
    else:
        p.update(blockysize=by)
    if fx.compress != "none":
        p["compress"] = fx.compress
    if fx.compress in PREDICTOR_CODECS and fx.predictor != 1:
        p["predictor"] = fx.predictor
    if fx.byteorder == "big":
        p["endianness"] = "BIG"
    if fx.nodata is not None:
        p["nodata"] = fx.nodata
    if fx.nbits:
        p["nbits"] = fx.nbits
    if fx.photometric:
        p["photometric"] = fx.photometric
    if fx.palette:
        p["photometric"] = "PALETTE"
    if fx.dtype == "uint8" and fx.count >= 3 and not fx.photometric:
        p["photometric"] = "MINISBLACK"     # GDAL would make 3/4-band u8 RGB(A) on its own
    if fx.special == "rgba":
        p["alpha"] = "YES"
    if fx.special == "sparse":
        p["sparse_ok"] = "TRUE"
    if fx.compress == "jpeg":
        p["jpeg_quality"] = 90
    return p


def write_fixture(fx, path, index):
    data, mask, cmap = fixture_data(fx)
    if fx.cog:
        mem_profile = {k: v for k, v in gtiff_profile(fx, index).items()
                       if k in ("driver", "width", "height", "count", "dtype", "crs", "transform", "nodata")}
        with MemoryFile() as mf:
            with mf.open(**mem_profile) as tmp:
                tmp.write(data)
            with mf.open() as src:
                rasterio.shutil.copy(src, path, driver="COG", BLOCKSIZE=fx.block[0], COMPRESS=fx.compress.upper(),
                                     PREDICTOR={1: "NO", 2: "STANDARD", 3: "FLOATING_POINT"}[fx.predictor],
                                     OVERVIEWS="AUTO", BIGTIFF="NO")
        return
    if fx.driver == "HFA":
        p = {"driver": "HFA", "width": fx.width, "height": fx.height, "count": fx.count, "dtype": fx.dtype}
        p.update(georef_for(index))
        with rasterio.open(path, "w", **p) as dst:
            dst.write(data)
        return
    env = {}
    if mask is not None:
        env["GDAL_TIFF_INTERNAL_MASK"] = fx.mask == "internal"
    with rasterio.Env(**env):
        with rasterio.open(path, "w", **gtiff_profile(fx, index)) as dst:
            dst.write(data)
            if mask is not None:
                dst.write_mask(mask)
            if cmap is not None:
                dst.write_colormap(1, cmap)
            if fx.special == "rgba":
                dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]


def tiff_block_table(path):
    """Byte order, block offsets and byte counts, the file position and struct code of the
    byte-count array, and the end of the IFD and its out-of-line tag values."""
    with tifffile.TiffFile(path) as t:
        page = t.pages[0]
        tag = page.tags.get(325) or page.tags.get(279)           # TileByteCounts / StripByteCounts
        code = {3: "H", 4: "I", 16: "Q"}[int(tag.dtype)]
        end = max(tg.valueoffset + tg.valuebytecount for tg in page.tags.values())
        return (t.byteorder, list(page.dataoffsets), list(page.databytecounts), tag.valueoffset, code,
                max(end, page.offset))


def write_malformed(fx, path, index):
    """Write one malformed file; return a short description of the defect."""
    rng = rng_for(fx.name)
    if fx.name == "zero_length.tif":
        open(path, "wb").close()
        return fx.malformed
    if fx.name == "not_a_tiff.tif":
        with open(path, "wb") as f:
            f.write(b"This is not a TIFF file; rasterloader must reject it cleanly.\n")
            f.write(rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
        return fx.malformed
    write_fixture(fx, path, index)
    byteorder, offsets, counts, bc_pos, code, header_end = tiff_block_table(path)
    order = sorted(range(len(offsets)), key=offsets.__getitem__)
    middle = order[len(order) // 2]
    raw = bytearray(open(path, "rb").read())
    assert header_end <= min(offsets), "IFD is not ahead of the tile data"
    if fx.name == "truncated.tif":
        cut = offsets[middle] + counts[middle] // 2
        del raw[cut:]
        detail = f"file cut inside tile {middle} of {len(offsets)} (at byte {cut})"
    elif fx.name == "corrupt_tile.tif":
        o, n = offsets[middle], counts[middle]
        raw[o:o + n] = b"\xff\xff" + rng.integers(0, 256, n - 2, dtype=np.uint8).tobytes()
        detail = f"tile {middle} of {len(offsets)} replaced by garbage (not a zlib stream)"
    else:   # bad_bytecount.tif
        last = order[-1]
        size = np.dtype(code).itemsize
        new = len(raw) - offsets[last] + 4096
        assert new < 1 << (8 * size)
        raw[bc_pos + last * size:bc_pos + (last + 1) * size] = \
            np.array(new, np.dtype(code).newbyteorder(byteorder)).tobytes()
        detail = f"TileByteCounts[{last}] = {new}, runs 4096 bytes past EOF"
    with open(path, "wb") as f:
        f.write(bytes(raw))
    return detail


def manifest_entry(fx):
    nodata = fx.nodata
    if isinstance(nodata, float) and math.isnan(nodata):
        nodata = "nan"
    blank = fx.malformed and not fx.dtype
    bx, by = (None, None) if blank or fx.driver != "GTiff" else fx.block
    return {
        "name": fx.name, "path": fx.name,
        "width": fx.width or None, "height": fx.height or None, "count": fx.count or None,
        "dtype": fx.dtype or None,
        "compress": None if blank else ("none" if fx.driver != "GTiff" else fx.compress),
        "predictor": None if blank or fx.driver != "GTiff" else fx.predictor,
        "interleave": None if blank or fx.driver != "GTiff" else fx.interleave,
        "tiled": None if blank or fx.driver != "GTiff" else fx.tiled,
        "blockxsize": bx, "blockysize": by,
        "nodata": nodata, "mask": "none" if blank else fx.mask,
        "bigtiff": None if blank or fx.driver != "GTiff" else fx.bigtiff,
        "byteorder": None if blank or fx.driver != "GTiff" else fx.byteorder,
        "cog": fx.cog,
        "native_expected": fx.native_expected if not fx.malformed else not blank,
        "malformed": fx.malformed, "purpose": fx.purpose,
        "group": fx.group, "georeferenced": fx.georef and not blank,
        "script_sha256": SCRIPT_SHA256,
    }


def build_one(args):
    index, fx, out_dir = args
    warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)   # nogeo_ is meant to be so
    path = os.path.join(out_dir, fx.name)
    for p in (path, path + ".msk", path + ".aux.xml"):
        if os.path.exists(p):
            os.remove(p)
    entry = manifest_entry(fx)
    if fx.malformed:
        entry["malformed"] = write_malformed(fx, path, index)
    else:
        write_fixture(fx, path, index)
    return entry


# --------------------------------------------------------------------------- idempotence

def up_to_date(out_dir, extra=None):
    mpath = os.path.join(out_dir, "manifest.json")
    try:
        entries = json.load(open(mpath))
    except (OSError, ValueError):
        return False
    return (isinstance(entries, list) and entries
            and all(e.get("script_sha256") == SCRIPT_SHA256 and all(e.get(k) == v for k, v in (extra or {}).items())
                    and os.path.exists(os.path.join(out_dir, e["path"])) for e in entries))


def remove_listed(out_dir):
    """Delete the manifest and the files it listed (never anything else), before a rebuild."""
    mpath = os.path.join(out_dir, "manifest.json")
    try:
        entries = json.load(open(mpath))
    except (OSError, ValueError):
        return
    for e in entries if isinstance(entries, list) else []:
        base = e.get("path") or ""
        for p in (base, base + ".msk", base + ".aux.xml"):
            if base and os.path.dirname(p) == "" and os.path.isfile(os.path.join(out_dir, p)):
                os.remove(os.path.join(out_dir, p))
    os.remove(mpath)


def write_manifest(out_dir, entries):
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(entries, f, indent=1, allow_nan=False)
        f.write("\n")


def make_fixtures(out_dir, force, jobs):
    if not force and up_to_date(out_dir):
        print(f"{out_dir}: up to date (manifest matches script sha256 {SCRIPT_SHA256[:12]})")
        return
    os.makedirs(out_dir, exist_ok=True)
    remove_listed(out_dir)
    specs = fixture_specs()
    work = [(i, fx, out_dir) for i, fx in enumerate(specs)]
    if jobs > 1:
        with concurrent.futures.ProcessPoolExecutor(jobs) as ex:
            entries = list(ex.map(build_one, work))
    else:
        entries = [build_one(w) for w in work]
    stray = [f for f in os.listdir(out_dir) if f.endswith(".aux.xml")]
    assert not stray, f"GDAL wrote PAM sidecars: {stray}"
    write_manifest(out_dir, entries)
    print(f"{out_dir}: wrote {len(entries)} fixtures")


# --------------------------------------------------------------------------- scenes (sample, bench)

def parcels(h, w, rng, cell):
    """Voronoi-like parcels from one jittered seed per grid cell: (parcel id per pixel, parcel count).

    A pixel only looks at the seeds of its own and the 8 neighbouring cells, so this is O(pixels)."""
    gh, gw = h // cell + 3, w // cell + 3                 # one spare ring of cells on every side
    sy = (np.arange(gh)[:, None] - 1 + rng.uniform(0.0, 1.0, (gh, gw))) * cell
    sx = (np.arange(gw)[None, :] - 1 + rng.uniform(0.0, 1.0, (gh, gw))) * cell
    out = np.empty((h, w), np.int32)
    xs = np.arange(w)
    for y0 in range(0, h, 256):
        ys = np.arange(y0, min(y0 + 256, h))
        best = np.full((len(ys), w), np.inf)
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                gy = (ys // cell + dy)[:, None]
                gx = (xs // cell + dx)[None, :]
                d = (sy[gy, gx] - ys[:, None]) ** 2 + (sx[gy, gx] - xs[None, :]) ** 2
                better = d < best
                best[better] = d[better]
                out[y0:y0 + len(ys)][better] = np.broadcast_to(gy * gw + gx, d.shape)[better]
    return out, gh * gw


# Typical reflectance (x10000) for (blue, green, red, nir) per class.
CLASS_REFL = np.array([
    [900, 1100, 1300, 2200],    # 0 other / bare
    [600, 900, 700, 3800],      # 1 cropland
    [350, 550, 400, 2900],      # 2 forest
    [700, 600, 400, 250],       # 3 water
    [1300, 1350, 1450, 2000],   # 4 urban
    [550, 850, 650, 3300],      # 5 grassland
], np.float64)


def make_scene(seed, h, w, noise, tex):
    """4-band u16 reflectance and a u8 label raster (classes 0..5) that agree with each other.

    noise is the pixel noise in DN, tex the relative amplitude of a smooth in-field texture."""
    rng = np.random.default_rng(seed)
    pid, n = parcels(h, w, rng, cell=96)
    cls_of = rng.choice(6, size=n, p=[0.1, 0.35, 0.2, 0.0, 0.1, 0.25])
    label = cls_of[pid].astype(np.uint8)
    y = np.linspace(0.0, 1.0, h)[:, None]
    x = np.linspace(0.0, 1.0, w)[None, :]
    river = np.abs(y - (0.5 + 0.15 * np.sin(2 * np.pi * (1.2 * x + rng.uniform())))) < 0.012 + 0.006 * np.sin(9 * x)
    label[river] = 3
    parcel_gain = rng.uniform(0.85, 1.15, n)
    illum = 1.0 + 0.06 * (x - 0.5) + 0.04 * np.sin(2 * np.pi * (0.7 * y + rng.uniform()))
    bands = []
    for b in range(4):
        t = 1.0 + tex * np.sin(2 * np.pi * (6.0 + b) * x + 3.0) * np.cos(2 * np.pi * 5.0 * y + b)
        v = CLASS_REFL[label, b] * parcel_gain[pid] * illum * t
        v = v + rng.normal(0.0, noise, (h, w))
        bands.append(np.clip(np.rint(v), 0, 65535).astype(np.uint16))
    return np.stack(bands), label


def write_if_changed(path, writer):
    """Write through a temp file and keep the old file when the bytes are equal (stable mtimes in git)."""
    d = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(suffix=os.path.splitext(path)[1], dir=d)
    os.close(fd)
    os.remove(tmp)
    writer(tmp)
    if os.path.exists(path) and open(path, "rb").read() == open(tmp, "rb").read():
        os.remove(tmp)
        return False
    os.replace(tmp, path)
    return True


SAMPLE_README = """\
Two synthetic 1024x1024 "scenes" for examples and smoke tests: `scene_X.tif` is 4-band uint16 reflectance
(blue, green, red, nir; DEFLATE predictor 2, 256x256 tiles, EPSG:32633, 10 m) and `scene_X_label.tif` is the
matching 1-band uint8 class raster (0 other, 1 crop, 2 forest, 3 water, 4 urban, 5 grass; DEFLATE, same grid).
Made by `python data/make_fixtures.py --sample data/sample` (seeded, reproducible); do not edit by hand.
"""


def make_sample(sample_dir):
    os.makedirs(sample_dir, exist_ok=True)
    changed = []
    for i, tag in enumerate(("a", "b")):
        img, label = make_scene(1000 + i, 1024, 1024, noise=0.25, tex=0.005)   # < 1 MiB each
        t = Affine(10.0, 0.0, 399960.0 + 20480.0 * i, 0.0, -10.0, 5800020.0 - 10240.0 * i)
        common = dict(driver="GTiff", width=1024, height=1024, crs="EPSG:32633", transform=t, tiled=True,
                      blockxsize=256, blockysize=256, compress="deflate", zlevel=9, bigtiff="NO")

        def w_img(p):
            with rasterio.open(p, "w", count=4, dtype="uint16", predictor=2, interleave="pixel", **common) as d:
                d.write(img)
                d.descriptions = ("blue", "green", "red", "nir")

        def w_lab(p):
            with rasterio.open(p, "w", count=1, dtype="uint8", **common) as d:
                d.write(label[None])

        for name, wr in ((f"scene_{tag}.tif", w_img), (f"scene_{tag}_label.tif", w_lab)):
            if write_if_changed(os.path.join(sample_dir, name), wr):
                changed.append(name)
    readme = os.path.join(sample_dir, "README.md")
    if not os.path.exists(readme) or open(readme).read() != SAMPLE_README:
        open(readme, "w").write(SAMPLE_README)
        changed.append("README.md")
    total = sum(os.path.getsize(os.path.join(sample_dir, f)) for f in os.listdir(sample_dir))
    print(f"{sample_dir}: {'updated ' + ', '.join(changed) if changed else 'unchanged'} ({total / 2**20:.2f} MiB)")


def make_bench(bench_dir, size, force):
    if not force and up_to_date(bench_dir, {"width": size}) and \
            len(json.load(open(os.path.join(bench_dir, "manifest.json")))) == 5:
        print(f"{bench_dir}: up to date ({size}x{size})")
        return
    os.makedirs(bench_dir, exist_ok=True)
    remove_listed(bench_dir)
    img, label = make_scene(2000, size, size, noise=12.0, tex=0.03)
    crs, t = "EPSG:32633", Affine(10.0, 0.0, 399960.0, 0.0, -10.0, 5800020.0)
    common = dict(driver="GTiff", width=size, height=size, crs=crs, transform=t, tiled=True,
                  blockxsize=512, blockysize=512, bigtiff="IF_SAFER", num_threads="ALL_CPUS")
    entries = []
    for codec in ("deflate", "zstd", "lzw", "none"):
        fx = Fx("uint16", codec, 2 if codec != "none" else 1, "tile512", "pixel", 4, size, size, group="bench",
                name=f"bench_u16_{codec}.tif", purpose=f"throughput, {codec}")
        extra = {"compress": codec, "predictor": 2} if codec != "none" else {}
        with rasterio.open(os.path.join(bench_dir, fx.name), "w", count=4, dtype="uint16", interleave="pixel",
                           **common, **extra) as d:
            d.write(img)
        entries.append(manifest_entry(fx))
    fx = Fx("uint8", "deflate", 1, "tile512", "pixel", 1, size, size, group="bench", name="bench_mask_u8.tif",
            purpose="label mask read alongside the images")
    with rasterio.open(os.path.join(bench_dir, fx.name), "w", count=1, dtype="uint8", compress="deflate",
                       **common) as d:
        d.write(label[None])
    entries.append(manifest_entry(fx))
    for e in entries:   # BIGTIFF=IF_SAFER decides per file; record what it chose
        e["bigtiff"] = tifffile.TiffFile(os.path.join(bench_dir, e["path"])).is_bigtiff
    write_manifest(bench_dir, entries)
    print(f"{bench_dir}: wrote {len(entries)} files ({size}x{size})")


# --------------------------------------------------------------------------- verification

def system_gdalinfo(path):
    """Run Debian's gdalinfo -checksum with an environment free of the venv's GDAL settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GDAL_", "PROJ_", "CPL_"))}
    r = subprocess.run(["/usr/bin/gdalinfo", "-checksum", path], capture_output=True, text=True, env=env)
    text = r.stdout + r.stderr
    return r.returncode == 0 and "ERROR" not in text, text


def check_entry(out_dir, e):
    """Return a list of problems for one manifest entry (empty when everything matches)."""
    path = os.path.join(out_dir, e["path"])
    bad = []
    if not os.path.exists(path):
        return [f"{e['name']}: missing"]
    if e["malformed"]:
        try:
            with rasterio.open(path) as src:
                src.read()
            bad.append(f"{e['name']}: rasterio read a malformed file without error")
        except Exception:
            pass
        ok, _ = system_gdalinfo(path)
        if ok:
            bad.append(f"{e['name']}: gdalinfo -checksum did not report the defect")
        return bad
    with rasterio.open(path) as src:
        src.read()
        src.read_masks()
        got = {"width": src.width, "height": src.height, "count": src.count, "dtype": src.dtypes[0],
               "compress": src.compression.value.lower() if src.compression else "none"}
        if e["blockxsize"] is not None:
            got["blockxsize"], got["blockysize"] = src.block_shapes[0][1], src.block_shapes[0][0]
        if src.count > 1 and e["interleave"]:
            got["interleave"] = src.interleaving.value.lower()
        for k, v in got.items():
            if e[k] != v:
                bad.append(f"{e['name']}: {k} manifest={e[k]} rasterio={v}")
        nd = src.nodata
        if e["nodata"] == "nan":
            if nd is None or not math.isnan(nd):
                bad.append(f"{e['name']}: nodata manifest=nan rasterio={nd}")
        elif e["nodata"] is None:
            if nd is not None:
                bad.append(f"{e['name']}: nodata manifest=None rasterio={nd}")
        elif nd is None or not math.isclose(nd, e["nodata"], rel_tol=1e-7):
            bad.append(f"{e['name']}: nodata manifest={e['nodata']} rasterio={nd}")
        flags = [f.name for f in src.mask_flag_enums[0]]
        want = {"none": ["all_valid"], "nodata": ["nodata"], "alpha": ["per_dataset", "alpha"],
                "internal": ["per_dataset"], "external_msk": ["per_dataset"]}[e["mask"]]
        if e["mask"] == "alpha":
            flags = [f.name for f in src.mask_flag_enums[0]]
            if src.colorinterp[3] != ColorInterp.alpha:
                bad.append(f"{e['name']}: band 4 is not alpha")
        if sorted(flags) != sorted(want):
            bad.append(f"{e['name']}: mask flags {flags}, want {want}")
        if e["mask"] == "external_msk" and not os.path.exists(path + ".msk"):
            bad.append(f"{e['name']}: .msk sidecar missing")
        if e["mask"] == "internal" and os.path.exists(path + ".msk"):
            bad.append(f"{e['name']}: internal mask written as sidecar")
        if e.get("georeferenced", True) != (src.crs is not None and not src.transform.is_identity):
            bad.append(f"{e['name']}: georeferencing crs={src.crs} transform={tuple(src.transform)[:6]}")
        if e["cog"] != (src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"):
            bad.append(f"{e['name']}: cog flag does not match GDAL's LAYOUT")
        if e["cog"] and not src.overviews(1):
            bad.append(f"{e['name']}: COG without overviews")
    if e["byteorder"] is not None:
        with tifffile.TiffFile(path) as t:
            p = t.pages[0]
            tg = {"byteorder": {"<": "little", ">": "big"}[t.byteorder], "bigtiff": t.is_bigtiff,
                  "tiled": p.is_tiled, "predictor": int(p.predictor),
                  "interleave": "band" if int(p.planarconfig) == 2 else "pixel"}
            if p.is_tiled:
                tg["blockxsize"], tg["blockysize"] = p.tilewidth, p.tilelength
            else:
                tg["blockysize"] = min(p.rowsperstrip, p.imagelength)
            for k, v in tg.items():
                if e[k] != v:
                    bad.append(f"{e['name']}: {k} manifest={e[k]} tiff-tag={v}")
    ok, text = system_gdalinfo(path)
    if not ok:
        bad.append(f"{e['name']}: system gdalinfo -checksum failed: {text.strip().splitlines()[-1:]}")
    return bad


def verify(out_dir):
    logging.getLogger("tifffile").setLevel(logging.ERROR)     # it cannot parse GDAL_NODATA=-3.4e+38
    warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
    entries = json.load(open(os.path.join(out_dir, "manifest.json")))
    problems = []
    for e in entries:
        problems += check_entry(out_dir, e)
    listed = {e["path"] for e in entries} | {e["path"] + ".msk" for e in entries} | {"manifest.json", "manifest.tsv"}
    stray = sorted(set(os.listdir(out_dir)) - listed)
    if stray:
        problems.append(f"{out_dir}: files not in the manifest: {stray}")
    n_bad = sum(1 for e in entries if e["malformed"])
    print(f"{out_dir}: verified {len(entries)} entries ({n_bad} malformed, "
          f"{sum(1 for e in entries if e['native_expected'] and not e['malformed'])} native_expected): "
          f"{len(problems)} problem(s)")
    for p in problems:
        print("  " + p)
    return not problems


# --------------------------------------------------------------------------- main

def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "fixtures"), help="fixture directory (default data/fixtures)")
    ap.add_argument("--sample", help="also (re)write the committed training sample into this directory")
    ap.add_argument("--bench", help="also write the benchmark files into this directory")
    ap.add_argument("--bench-size", type=int, default=4096, help="bench image width and height (default 4096)")
    ap.add_argument("--force", action="store_true", help="regenerate even when the manifest is up to date")
    ap.add_argument("--verify", action="store_true", help="check every written file against its manifest entry")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes for the fixtures")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    make_fixtures(a.out, a.force, a.jobs)
    make_dropin_fixtures(a.out)
    if a.sample:
        make_sample(a.sample)
    if a.bench:
        make_bench(a.bench, a.bench_size, a.force)
    print(f"done in {time.perf_counter() - t0:.1f} s")
    ok = True
    if a.verify:
        ok = verify(a.out)
        if a.bench:
            ok = verify(a.bench) and ok
    return 0 if ok else 1


# --------------------------------------------------------------------------- drop-in metadata (issue 15)

# Small files for rasterio's metadata API and helpers (tags, overviews, band texts,
# scales/offsets, GCPs, RPCs, statistics, merge sources), in their own directory
# so the fixture sweeps above (manifest.json) do not grow.  Rewritten when this
# script changes (the stamp holds its sha256).
DROPIN_DIR = "dropin"
DROPIN_CRS = "EPSG:32633"


def _dropin_pixels(name, count, h, w, dtype="uint16"):
    return make_pixels("dropin/" + name, dtype, count, h, w)


def _write_tags_file(path):
    """3-band u16, 32x32 tiles, tags in three namespaces, band texts, scale/offset, 2 overviews."""
    h, w = 80, 96
    data = _dropin_pixels("tags", 3, h, w)
    t = rasterio.transform.from_origin(399960.0, 5800020.0, 10.0, 10.0)
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=3, dtype="uint16",
                       crs=DROPIN_CRS, transform=t, tiled=True, blockxsize=32, blockysize=32,
                       compress="deflate", predictor=2, nodata=0) as dst:
        dst.write(data)
        dst.update_tags(PURPOSE="dropin", SENSOR="synthetic")
        dst.update_tags(ns="CUSTOM", KEY="value", OTHER="x=y")
        dst.update_tags(1, BAND_TAG="one", STATISTICS_NOTE="none")
        dst.update_tags(2, ns="CUSTOM", BAND2="two")
        dst.set_band_description(1, "red edge")
        dst.set_band_description(2, "near infrared")
        dst.set_band_unit(1, "metre")
        dst.set_band_unit(3, "dn")
        dst.scales = (0.5, 1.0, 2.0)
        dst.offsets = (10.0, 0.0, -1.5)
    with rasterio.open(path, "r+") as dst:
        dst.build_overviews([2, 4], rasterio.enums.Resampling.average)


def _write_gcps_file(path):
    """u8, 1 band, 4 GCPs in EPSG:4326 and no geotransform."""
    from rasterio.control import GroundControlPoint
    h, w = 40, 50
    gcps = [GroundControlPoint(row=0, col=0, x=15.0, y=52.0, z=0.0, id="ul", info="upper left"),
            GroundControlPoint(row=0, col=w, x=15.01, y=52.001, z=1.0, id="ur", info=""),
            GroundControlPoint(row=h, col=w, x=15.012, y=51.99, z=2.5, id="lr", info="lower right"),
            GroundControlPoint(row=h, col=0, x=14.999, y=51.991, z=0.0, id="ll", info="")]
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype="uint8",
                       gcps=gcps, crs="EPSG:4326") as dst:
        dst.write(_dropin_pixels("gcps", 1, h, w, "uint8"))


def _write_rpcs_file(path):
    """u8, 1 band with RPCs (rasterio.rpc.RPC)."""
    from rasterio.rpc import RPC
    h, w = 40, 50
    rpc = RPC(height_off=100.0, height_scale=500.0, lat_off=52.0, lat_scale=0.01, line_den_coeff=[1.0] + [0.0] * 19,
              line_num_coeff=[0.0, 0.0, -1.0] + [0.0] * 17, line_off=20.0, line_scale=20.0,
              long_off=15.0, long_scale=0.01, samp_den_coeff=[1.0] + [0.0] * 19,
              samp_num_coeff=[0.0, 1.0] + [0.0] * 18, samp_off=25.0, samp_scale=25.0, err_bias=0.5, err_rand=0.25)
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype="uint8") as dst:
        dst.write(_dropin_pixels("rpcs", 1, h, w, "uint8"))
        dst.rpcs = rpc


def _write_allnodata_file(path):
    """u8, every pixel nodata: statistics have nothing to count."""
    with rasterio.open(path, "w", driver="GTiff", width=16, height=16, count=1, dtype="uint8", nodata=255,
                       crs=DROPIN_CRS, transform=rasterio.transform.from_origin(399960.0, 5800020.0, 10, 10)) as dst:
        dst.write(np.full((1, 16, 16), 255, np.uint8))


# Merge sources: same CRS, overlapping; b sits 2.5 pixels off a's grid, c has twice the
# pixel size; each has a nodata hole, so every merge method sees overlaps and holes.
MERGE_SOURCES = {
    "merge_a.tif": (399960.0, 5800020.0, 10.0, 64, 48),
    "merge_b.tif": (399960.0 + 325.0, 5800020.0 - 155.0, 10.0, 64, 48),
    "merge_c.tif": (399960.0 + 150.0, 5800020.0 + 100.0, 20.0, 30, 25),
}


def _write_merge_file(path, name):
    x0, y0, res, w, h = MERGE_SOURCES[name]
    rng = rng_for("dropin/" + name)
    data = _dropin_pixels(name, 2, h, w)
    data[data == 0] = 1
    data[:, blob(h, w, rng, n=1)] = 0
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=2, dtype="uint16", nodata=0,
                       crs=DROPIN_CRS, transform=rasterio.transform.from_origin(x0, y0, res, res),
                       tiled=True, blockxsize=16, blockysize=16, compress="deflate") as dst:
        dst.write(data)


def make_dropin_fixtures(out_dir):
    d = os.path.join(out_dir, DROPIN_DIR)
    stamp = os.path.join(d, "stamp.sha256")
    writers = {"tags_u16_3b_tiled_ovr.tif": _write_tags_file, "gcps_u8_1b.tif": _write_gcps_file,
               "rpcs_u8_1b.tif": _write_rpcs_file, "allnodata_u8_1b.tif": _write_allnodata_file}
    writers.update({n: (lambda p, n=n: _write_merge_file(p, n)) for n in MERGE_SOURCES})
    if (os.path.exists(stamp) and open(stamp).read().strip() == SCRIPT_SHA256
            and all(os.path.exists(os.path.join(d, n)) for n in writers)):
        return
    os.makedirs(d, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        for n, write in writers.items():
            for p in (os.path.join(d, n), os.path.join(d, n) + ".aux.xml"):
                if os.path.exists(p):
                    os.remove(p)
            write(os.path.join(d, n))
    stray = [f for f in os.listdir(d) if f.endswith(".aux.xml")]
    assert not stray, f"GDAL wrote PAM sidecars: {stray}"
    with open(stamp, "w") as f:
        f.write(SCRIPT_SHA256 + "\n")
    print(f"{d}: wrote {len(writers)} drop-in fixtures")


if __name__ == "__main__":
    sys.exit(main())
