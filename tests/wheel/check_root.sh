#!/usr/bin/env bash
# Fails unless the root at $1 holds no GDAL, libtiff, libzstd or libdeflate:
# no such Debian package (dpkg -l) and no such library known to the dynamic
# linker (ldconfig -p), so whatever the wheel's package loads comes from the
# rasterio wheel.
set -euo pipefail
root=$1
pkgs=$(chroot "$root" dpkg -l | awk '$1 == "ii" {print $2}' | grep -E '^lib(gdal|tiff|zstd|deflate)' || true)
libs=$(chroot "$root" ldconfig -p | grep -E 'lib(gdal|tiff|zstd|deflate)\.so' || true)
if [ -n "$pkgs$libs" ]; then
  echo "wheel root $root is not clean:"; echo "$pkgs"; echo "$libs"; exit 1
fi
echo "wheel root $root: no libgdal/libtiff/libzstd/libdeflate package or library"
