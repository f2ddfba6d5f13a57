#!/usr/bin/env bash
# The root file system `make test-wheel` installs the wheel into: a minimal
# Debian bookworm (debootstrap --variant=minbase) with python3 and venv from
# apt, and nothing else: no GDAL, libtiff, libzstd or libdeflate (checked
# here and again by tests/wheel/run.sh).  Made once, in a folder outside the
# repository (RASTER_WHEEL_ROOT, default /var/cache/rasterloader-wheel-root);
# a second call finds the .ready stamp and returns at once.  Building into
# a temporary sibling and renaming it at the end means an interrupted run
# leaves no half-made root behind to be trusted.
set -euo pipefail
ROOT=${RASTER_WHEEL_ROOT:-/var/cache/rasterloader-wheel-root}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
[ -e "$ROOT/.ready" ] && exit 0
[ "$(id -u)" = 0 ] || { echo "make_root.sh: needs root (debootstrap, chroot)"; exit 1; }
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap
tmp="$ROOT.partial"
rm -rf "$tmp"
mkdir -p "$(dirname "$ROOT")"
debootstrap --variant=minbase bookworm "$tmp" "$MIRROR"
# python3 and venv only; --no-install-recommends keeps the libraries out.
# libexpat1 is not in it: the rasterio wheel's GDAL needs the system's.
# A tiny policy-rc.d: no service starts inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"; chmod +x "$tmp/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$tmp/etc/resolv.conf"
chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  python3 python3-venv ca-certificates libexpat1 >/dev/null
chroot "$tmp" apt-get clean
# minbase's apt and libsystemd0 need libzstd1: take it out by force once
# apt's work is done (the cached root never runs apt again), so the only
# libzstd a test process can find is the rasterio wheel's.
for p in libzstd1 libdeflate0 libtiff6 libgdal32; do
  if chroot "$tmp" dpkg -s "$p" >/dev/null 2>&1; then
    chroot "$tmp" dpkg --purge --force-depends "$p" >/dev/null
  fi
done
chroot "$tmp" ldconfig
"$(dirname "$0")/check_root.sh" "$tmp"
rm -rf "$ROOT"
mv "$tmp" "$ROOT"
touch "$ROOT/.ready"
echo "wheel root ready: $ROOT"
