#!/usr/bin/env python3
"""Give the wheel `make wheel` built its manylinux tag, and check it.

scikit-build-core tags a wheel ``linux_x86_64`` (no promise about the glibc
it needs).  auditwheel would set the right tag, but it also copies every
library the extension needs into the wheel, and rasterloader must bundle no
GDAL, libtiff, libzstd, libdeflate or libcurl: it runs on rasterio's
(rasterloader/_gdal_runtime.py).  So this does the tagging part by hand:

- the extension's DT_NEEDED (readelf -d) may name only glibc's libraries and
  libz.so.1 (which rasterio's own GDAL needs from the system as well);
- the newest GLIBC_x.y symbol version it needs (objdump -T) gives the tag
  ``manylinux_2_y_<arch>``;
- the wheel must be under 5 MB;
- the WHEEL file's Tag and the RECORD line of WHEEL are rewritten and the
  wheel renamed; everything else is copied byte for byte.

Usage: retag_wheel.py IN.whl OUT_DIR  (prints the new path)
"""

import base64
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import zipfile

MAX_BYTES = 5 * 1024 * 1024
ALLOWED_NEEDED = re.compile(r"^(libc|libm|libpthread|libdl|librt|ld-linux[-a-z0-9_]*|libz)\.so(\.\d+)*$")


def _run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def _glibc_tag(so_path, arch):
    versions = {tuple(int(x) for x in v.split("."))
                for v in re.findall(r"GLIBC_(\d+\.\d+)", _run("objdump", "-T", so_path))}
    major, minor = max(versions)
    assert major == 2, versions
    return "manylinux_%d_%d_%s" % (major, minor, arch)


def _check_needed(so_path):
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", _run("readelf", "-d", so_path))
    bad = [n for n in needed if not ALLOWED_NEEDED.match(n)]
    if bad:
        sys.exit("retag_wheel: %s needs %s (only glibc and libz may be linked: GDAL & co. "
                 "come from rasterio at run time)" % (so_path, ", ".join(bad)))
    return needed


def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (name, digest, len(data))


def main(src, out_dir):
    with zipfile.ZipFile(src) as zin:
        names = zin.namelist()
        sos = [n for n in names if n.endswith(".so")]
        if len(sos) != 1:
            sys.exit("retag_wheel: expected one extension in %s, found %s" % (src, sos))
        with tempfile.TemporaryDirectory() as tmp:
            so_path = zin.extract(sos[0], tmp)
            needed = _check_needed(so_path)
            arch = os.uname().machine
            plat = _glibc_tag(so_path, arch)
        wheel_info = next(n for n in names if n.endswith(".dist-info/WHEEL"))
        record = next(n for n in names if n.endswith(".dist-info/RECORD"))
        old_tag = re.search(r"^Tag: (\S+)$", zin.read(wheel_info).decode(), re.M).group(1)
        new_tag = old_tag.rsplit("-", 1)[0] + "-" + plat
        wheel_text = re.sub(r"^Tag: \S+$", "Tag: " + new_tag, zin.read(wheel_info).decode(), flags=re.M)
        wheel_bytes = wheel_text.encode()
        record_lines = [(_record_line(wheel_info, wheel_bytes) if ln.split(",")[0] == wheel_info else ln)
                        for ln in zin.read(record).decode().splitlines()]
        base = os.path.basename(src)
        dist_ver = base[: -len(old_tag) - len(".whl") - 1]
        dst = os.path.join(out_dir, "%s-%s.whl" % (dist_ver, new_tag))
        os.makedirs(out_dir, exist_ok=True)
        with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
            for info in zin.infolist():
                if info.filename == wheel_info:
                    zout.writestr(info, wheel_bytes)
                elif info.filename == record:
                    zout.writestr(info, "\n".join(record_lines) + "\n")
                else:
                    zout.writestr(info, zin.read(info.filename))
    size = os.path.getsize(dst)
    if size >= MAX_BYTES:
        sys.exit("retag_wheel: %s is %d bytes, over the 5 MB budget" % (dst, size))
    print("%s  (%.2f MB; extension needs %s)" % (dst, size / 1e6, ", ".join(needed)), file=sys.stderr)
    print(dst)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
