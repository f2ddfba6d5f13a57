#!/usr/bin/env python3
"""Seed corpora for the libFuzzer harnesses, made from the fixture matrix.

    python tests/fuzz/make_seeds.py OUT_DIR

Writes OUT_DIR/fuzz_tiff/ (whole files, for fuzz_tiff_native and fuzz_tiff_gdal)
and OUT_DIR/fuzz_codec/ (raw segments behind the 8-byte header that
tests/fuzz/fuzz_targets.h describes).  The fixtures themselves are far larger
than a useful fuzz input, so every fixture spec of data/make_fixtures.py is
written again at a small size (at most 37x29 pixels, 16x16 tiles) with the same
dtype, codec, predictor, interleave, byte order, BigTIFF, nodata, mask, NBITS,
photometric and sparse settings; fixture files already under the size cap are
copied as they are.  Nothing here is committed: the seeds live in the build
directory, and a second run with the same script is a no-op.
"""

import dataclasses
import hashlib
import os
import shutil
import sys
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "data"))

import make_fixtures as mf  # noqa: E402  (the fixture specs and writers)
import tifffile  # noqa: E402

MAX_SEED_NBYTES = 48 * 1024       # libFuzzer runs with -max_len=65536
SMALL_W, SMALL_H = 37, 29
CODEC_INDEX = {1: 0, 8: 1, 32946: 1, 50000: 2, 5: 3, 32773: 4}   # TIFF tag -> fuzz_codec


def stamp_of():
    h = hashlib.sha256()
    for p in (__file__, mf.__file__):
        h.update(open(p, "rb").read())
    return h.hexdigest()


def small_spec(fx):
    """The same spec at seed size, or None if it is not a GTiff fixture."""
    if fx.malformed or fx.driver != "GTiff" and not fx.cog:
        return None
    layout = fx.layout
    if fx.tiled:
        layout = "tile16"
    w, h = min(fx.width, SMALL_W), min(fx.height, SMALL_H)
    return dataclasses.replace(fx, width=w, height=h, layout=layout, name="small_" + fx.name)


def write_tiff_seeds(out):
    os.makedirs(out, exist_ok=True)
    written = 0
    for index, fx in enumerate(mf.fixture_specs()):
        s = small_spec(fx)
        if s is None:
            continue
        path = os.path.join(out, s.name)
        try:
            mf.write_fixture(s, path, index)
        except Exception as e:          # a profile GDAL refuses at this size: skip it
            print(f"make_seeds: skipping {s.name}: {e}", file=sys.stderr)
            continue
        for side in (path + ".msk",):
            if os.path.exists(side):
                os.remove(side)         # a memfd input has no sidecar
        if os.path.getsize(path) > MAX_SEED_NBYTES:
            os.remove(path)
            continue
        written += 1
    fixtures = os.path.join(ROOT, "data", "fixtures")
    for name in sorted(os.listdir(fixtures)) if os.path.isdir(fixtures) else []:
        p = os.path.join(fixtures, name)
        if name.startswith("manifest") or not os.path.isfile(p):
            continue
        if 0 < os.path.getsize(p) <= MAX_SEED_NBYTES:
            shutil.copyfile(p, os.path.join(out, "fixture_" + name))
            written += 1
    return written


def codec_header(codec, pred, swap, nsamp, size, ncols, nrows, needed_rows):
    size_code = {1: 0, 2: 1, 4: 2, 8: 3}[size]
    return bytes([codec, (pred - 1) | (0x80 if swap else 0), (nsamp - 1) | (size_code << 4),
                  (ncols - 1) & 0xff, (ncols - 1) >> 8, (nrows - 1) & 0xff, (nrows - 1) >> 8,
                  needed_rows])


def write_codec_seeds(tiff_dir, out):
    os.makedirs(out, exist_ok=True)
    written = 0
    for name in sorted(os.listdir(tiff_dir)):
        try:
            with tifffile.TiffFile(os.path.join(tiff_dir, name)) as t, \
                    open(os.path.join(tiff_dir, name), "rb") as f:
                page = t.pages[0]
                codec = CODEC_INDEX.get(int(page.compression))
                if codec is None or page.bitspersample not in (8, 16, 32, 64):
                    continue
                planar = int(page.planarconfig) == 2
                nsamp = 1 if planar else page.samplesperpixel
                if nsamp > 4:
                    continue
                pred = int(page.predictor) if int(page.predictor) in (1, 2, 3) else 1
                if page.is_tiled:
                    ncols, nrows = page.tilewidth, page.tilelength
                else:
                    ncols, nrows = page.imagewidth, min(page.rowsperstrip, page.imagelength)
                for k, (off, n) in enumerate(zip(page.dataoffsets[:2], page.databytecounts[:2])):
                    if n == 0:
                        continue
                    f.seek(off)
                    raw = f.read(n)
                    for needed in ((0, 1 + nrows // 2) if nrows > 1 else (0,)):
                        hdr = codec_header(codec, pred, t.byteorder == ">", nsamp,
                                           page.bitspersample // 8, ncols, nrows, needed)
                        seed = os.path.join(out, f"{name}.seg{k}.rows{needed}")
                        with open(seed, "wb") as s:
                            s.write(hdr + raw)
                        written += 1
        except Exception as e:          # not a TIFF tifffile reads: fine for the file fuzzer
            print(f"make_seeds: no codec seeds from {name}: {e}", file=sys.stderr)
    return written


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = argv[1]
    stamp = os.path.join(out, ".stamp")
    want = stamp_of()
    if os.path.exists(stamp) and open(stamp).read() == want:
        return 0
    shutil.rmtree(out, ignore_errors=True)
    warnings.filterwarnings("ignore")
    n_tiff = write_tiff_seeds(os.path.join(out, "fuzz_tiff"))
    n_codec = write_codec_seeds(os.path.join(out, "fuzz_tiff"), os.path.join(out, "fuzz_codec"))
    with open(stamp, "w") as s:
        s.write(want)
    print(f"make_seeds: {n_tiff} file seeds, {n_codec} codec seeds in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
