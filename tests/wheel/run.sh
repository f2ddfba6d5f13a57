#!/usr/bin/env bash
# make test-wheel: the wheel in a Debian bookworm root that has no GDAL,
# libtiff, libzstd or libdeflate at all (tests/wheel/make_root.sh makes it
# once, outside the repository), so that everything the package loads comes
# from the wheels pip installs: a fresh venv there, `pip install rasterio
# numpy`, torch from /opt/wheels when that file is there (by path: pip would
# otherwise fetch a CUDA build of several GB), then the wheel, then
# tests/wheel/check_wheel.py against the fixtures (bind-mounted read-only).
# The venv and the mounts are made for the run and removed on exit, so the
# cached root stays clean; pip's download cache stays in it (later runs do
# not download again).
# Usage: run.sh WHEEL FIXTURES_DIR
set -euo pipefail
wheel=$(realpath "$1"); fixtures=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
ROOT=${RASTER_WHEEL_ROOT:-/var/cache/rasterloader-wheel-root}
TORCH_WHEEL=${RASTER_TORCH_WHEEL:-$(ls /opt/wheels/torch-*+cpu-cp311-*.whl 2>/dev/null | head -1 || true)}
if [ "$(id -u)" != 0 ]; then
  echo "test-wheel: SKIPPED: needs root (debootstrap, chroot, mounts)"; exit 0
fi
start=$(date +%s)
"$here/make_root.sh"
"$here/check_root.sh" "$ROOT"

work=/tmp/rl-wheel-$$            # inside the root
mounts=()
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}" || true; done
  rm -rf "${ROOT:?}$work"
}
trap cleanup EXIT
bind() {                          # bind SRC DST [ro]
  mkdir -p "$2"; mount --bind "$1" "$2"; mounts+=("$2")
  if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}
bind /proc "$ROOT/proc"
bind /dev "$ROOT/dev"
bind /dev/shm "$ROOT/dev/shm"
mkdir -p "$ROOT$work"
bind "$fixtures" "$ROOT$work/fixtures" ro
cp "$wheel" "$here/check_wheel.py" "$ROOT$work/"
torch_arg=""
if [ -n "$TORCH_WHEEL" ] && [ -f "$TORCH_WHEEL" ]; then
  bind "$(dirname "$TORCH_WHEEL")" "$ROOT$work/wheels" ro
  torch_arg="$work/wheels/$(basename "$TORCH_WHEEL")"
fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# pip trusts the host's CA bundle (the one the host's pip uses: a machine
# behind a TLS-intercepting proxy has its CA only there).
host_ca=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
cert_env=()
if [ -f "$host_ca" ]; then
  cp "$host_ca" "$ROOT$work/host-ca.crt"; cert_env=(PIP_CERT="$work/host-ca.crt")
fi
# A clean environment: nothing of the host's (PIP_FIND_LINKS, LD_*) inside.
in_root() {
  chroot "$ROOT" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 "${cert_env[@]}" "$@"
}
in_root python3 -m venv "$work/venv"
in_root "$work/venv/bin/pip" install -q --disable-pip-version-check rasterio numpy
if [ -n "$torch_arg" ]; then
  in_root "$work/venv/bin/pip" install -q --disable-pip-version-check "$torch_arg"
fi
in_root "$work/venv/bin/pip" install -q --disable-pip-version-check "$work/$(basename "$wheel")"
in_root "$work/venv/bin/python" "$work/check_wheel.py" "$work/fixtures"
echo "test-wheel: OK in $(( $(date +%s) - start )) s ($(basename "$wheel"), $(du -k "$wheel" | cut -f1) KiB)"
