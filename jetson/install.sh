#!/usr/bin/env bash
# Install the RC car runtime as a systemd service on a Jetson with JetPack 6 (Ubuntu 22.04,
# Python 3.10, CUDA 12.6, TensorRT 10.3). Run from a checkout of this repository, as root:
#
#   sudo jetson/install.sh [--bundle builds/rc_pilot/v3] [--usb-serial SERIAL] [--no-start]
#
# What it does: a virtualenv in /opt/rc-car/venv with --system-site-packages (TensorRT's and
# OpenCV's Python bindings come from JetPack's apt packages: pip's OpenCV has no GStreamer, pip's
# TensorRT cannot be had), `pip install .[jetson]` and pycuda into it, pinned by
# requirements/car-constraints.txt; a system user rc-car
# (groups dialout video render); /etc/rc-car/runtime.toml (never overwritten); the udev rule for
# /dev/rc-car; the rc-runtime.service unit, enabled and started.
#
#   --dry-run       print the commands instead of running them (files go under --root, if given)
#   --root DIR      write the files under DIR instead of / (for packaging and tests)
#   --prefix DIR    install prefix (default /opt/rc-car)
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX=/opt/rc-car
ROOT=""
DRY_RUN=0
START=1
BUNDLE=""
USB_SERIAL=""
SERVICE_USER=rc-car

die() { echo "install.sh: $*" >&2; exit 1; }
warn() { echo "install.sh: WARNING: $*" >&2; }
say() { echo "install.sh: $*"; }
run() {
    if [ "$DRY_RUN" = 1 ]; then echo "+ $*"; else "$@"; fi
}

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --root) ROOT="${2:?--root needs a directory}"; shift ;;
        --prefix) PREFIX="${2:?--prefix needs a directory}"; shift ;;
        --bundle) BUNDLE="${2:?--bundle needs a bundle directory}"; shift ;;
        --usb-serial) USB_SERIAL="${2:?--usb-serial needs the board serial number}"; shift ;;
        --no-start) START=0 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

[ -n "$ROOT" ] && [ "$DRY_RUN" = 0 ] && die "--root stages files for packaging and needs --dry-run"
[ "$DRY_RUN" = 1 ] || [ "$(id -u)" = 0 ] || die "run as root (sudo $0 $*)"
if [ ! -f "$SRC/setup.py" ] || [ ! -d "$SRC/runtime" ]; then
    die "$SRC is not a checkout of the rc-edge repository"
fi
if [ -n "$BUNDLE" ]; then
    [ -f "$BUNDLE/manifest.json" ] || die "--bundle $BUNDLE has no manifest.json; give a directory made by convert-model"
fi
VENV="$PREFIX/venv"

# Files: with --dry-run and no --root they are only announced.
put() {  # put SOURCE DEST MODE [GROUP]
    local src="$1" dest="$2" mode="$3" group="${4:-root}"
    if [ "$DRY_RUN" = 1 ] && [ -z "$ROOT" ]; then echo "+ install -m $mode $src $dest"; return; fi
    mkdir -p "$(dirname "$ROOT$dest")"
    if [ -n "$ROOT" ]; then install -m "$mode" "$src" "$ROOT$dest"
    else install -m "$mode" -o root -g "$group" "$src" "$dest"; fi
}

# --- checks: JetPack, TensorRT, OpenCV with GStreamer ------------------------------------------
if [ -f /etc/nv_tegra_release ]; then
    l4t="$(dpkg-query -W -f='${Version}' nvidia-l4t-core 2>/dev/null || true)"
    case "$l4t" in 36.*) say "JetPack 6 (L4T $l4t)" ;; *) warn "L4T '$l4t' is not JetPack 6 (36.x); this script targets JetPack 6" ;; esac
else
    warn "/etc/nv_tegra_release missing: not a Jetson; TensorRT and the CSI camera will not be available"
fi
command -v python3 >/dev/null || die "python3 missing: apt-get install python3"
pyver="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[ "$pyver" = "3.10" ] || warn "system Python is $pyver; JetPack 6 ships 3.10 (the runtime needs >= 3.10)"
python3 -c 'import tensorrt' 2>/dev/null \
    || warn "TensorRT's Python bindings are missing: apt-get install python3-libnvinfer (part of nvidia-jetpack)"
if ! python3 -c 'import cv2, sys; sys.exit("GStreamer:                   YES" not in cv2.getBuildInformation())' 2>/dev/null; then
    warn "system OpenCV without GStreamer: the CSI camera (csi://) needs JetPack's OpenCV (apt-get install nvidia-opencv python3-opencv)"
fi

# --- packages, user, groups ---------------------------------------------------------------------
run apt-get install -y --no-install-recommends python3-venv python3-pip python3-dev build-essential
getent group render >/dev/null || run groupadd --system render  # JetPack < 6.2 has none; the unit needs it
if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
    run useradd --system --user-group --home-dir /var/lib/rc-car --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
fi
run usermod -a -G dialout,video,render "$SERVICE_USER"
# The unit's StateDirectory=/CacheDirectory= make these at its first start; made here too so that
# `rc-runtime --check` as rc-car can cache the TensorRT engine before the service ever ran.
run install -d -o "$SERVICE_USER" -g "$SERVICE_USER" -m 0750 /var/lib/rc-car /var/cache/rc-car

# --- virtualenv ---------------------------------------------------------------------------------
run mkdir -p "$PREFIX/bundles"
run python3 -m venv --system-site-packages "$VENV"
run "$VENV/bin/pip" install --upgrade pip wheel
# Every package pinned (numpy 1.26.4: JetPack 6's apt OpenCV and TensorRT bindings are built against
# numpy 1.x; pycuda and its dependencies): the same pins the Python 3.10 test venv runs the tests on.
constraints="$SRC/requirements/car-constraints.txt"
[ -f "$constraints" ] || die "$constraints missing: run from a complete checkout"
run "$VENV/bin/pip" install --constraint "$constraints" "${SRC}[jetson]"
# pycuda builds against the CUDA toolkit that JetPack installs in /usr/local/cuda.
run env PATH="/usr/local/cuda/bin:$PATH" CUDA_ROOT=/usr/local/cuda \
    "$VENV/bin/pip" install --constraint "$constraints" pycuda
run "$VENV/bin/python" -c 'import runtime.link, runtime.notify; import tensorrt, pycuda.driver'

# --- files --------------------------------------------------------------------------------------
put "$SRC/jetson/README.md" "$PREFIX/README.md" 0644
if [ -n "$BUNDLE" ]; then
    name="$(basename "$(dirname "$(cd "$BUNDLE" && pwd)")")/$(basename "$(cd "$BUNDLE" && pwd)")"
    run mkdir -p "$PREFIX/bundles/$(dirname "$name")"
    run cp -a "$BUNDLE" "$PREFIX/bundles/$name"
    run ln -sfn "$PREFIX/bundles/$name" "$PREFIX/bundles/current"
fi

config=/etc/rc-car/runtime.toml
if [ -e "$ROOT$config" ]; then
    put "$SRC/jetson/config/runtime.toml" "$config.new" 0640 "$SERVICE_USER"
    say "kept your $config; the new default is $config.new"
else
    put "$SRC/jetson/config/runtime.toml" "$config" 0640 "$SERVICE_USER"
fi

rules="$(mktemp)"
trap 'rm -f "$rules"' EXIT
if [ -n "$USB_SERIAL" ]; then
    sed "s/^SUBSYSTEM==\"tty\", /SUBSYSTEM==\"tty\", ATTRS{serial}==\"$USB_SERIAL\", /" "$SRC/jetson/udev/99-rc-car.rules" > "$rules"
else
    cp "$SRC/jetson/udev/99-rc-car.rules" "$rules"
fi
put "$rules" /etc/udev/rules.d/99-rc-car.rules 0644

unit="$(mktemp)"
trap 'rm -f "$rules" "$unit"' EXIT
sed "s#/opt/rc-car#$PREFIX#g" "$SRC/jetson/systemd/rc-runtime.service" > "$unit"
put "$unit" /etc/systemd/system/rc-runtime.service 0644

# --- activate -----------------------------------------------------------------------------------
run udevadm control --reload-rules
run udevadm trigger --subsystem-match=tty
run systemctl daemon-reload
run systemctl enable rc-runtime.service
if [ "$START" = 1 ]; then
    run systemctl restart rc-runtime.service
    say "started; follow it with: journalctl -u rc-runtime -f"
else
    say "installed; start it with: systemctl start rc-runtime"
fi
