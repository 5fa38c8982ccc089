#!/usr/bin/env bash
# A Debian arm64 root run under qemu-user-static, with the runtime extra's aarch64 wheels from PyPI,
# so an x86-only wheel or assumption in the car's code shows up here before it does on a car.
#
#   .ci/arm64-root.sh              make (or reuse) the root: debootstrap + pip install; idempotent
#   .ci/arm64-root.sh --run CMD..  run CMD inside it (as root, /proc /dev /dev/pts mounted, this
#                                  checkout bound at /src, the venv's bin first on PATH)
#
# Root: $ARM64_ROOT (default .cache/arm64-root); suite $ARM64_SUITE (default bookworm); mirror
# $ARM64_MIRROR; wheels cached in .cache/arm64-wheels. Needs root (debootstrap, chroot, mount) and a
# kernel with binfmt_misc. Exit 3: Debian's mirror cannot be reached (or the host's debootstrap and
# qemu-user-static cannot be installed), so no root could be made: callers print SKIPPED.
#
# Why bookworm: its python3 is 3.11, the nearest a Debian root gives to the car's 3.10 (JetPack 6);
# trixie's is 3.13, for which the car's numpy<2 has no wheel at all. See README "On arm64".
#
# Speed (emulation is slow; CI starts clean): debootstrap's first stage resolves and unpacks the
# required packages natively; the second stage, which runs every maintainer script under qemu
# (~10 min on 2 loaded cores), is replaced by unpacking the remaining downloaded packages with
# dpkg-deb and writing passwd/group: nothing here needs dpkg's database or a configured service.
# ARM64_SECOND_STAGE=1 runs the real second stage instead. The wheels are downloaded natively by the
# host's pip for the root's tags; the root's own pip then installs them (refusing any wheel whose
# tags do not fit aarch64) and goes to PyPI itself when the host's pip could not fetch them.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
ROOT=${ARM64_ROOT:-$REPO/.cache/arm64-root}
SUITE=${ARM64_SUITE:-bookworm}
MIRROR=${ARM64_MIRROR:-http://deb.debian.org/debian}
WHEELS=$REPO/.cache/arm64-wheels
VENV=/opt/rc-venv
READY=$ROOT/.rc-arm64-ready
FORMAT=2  # bump when the root's layout changes, so old roots are remade
UNREACHABLE=3

log() { echo "arm64-root: $*" >&2; }

# The root runs with a clean environment (the host's PIP_* settings name host paths), plus the
# NAME=VALUE words of $ARM64_ENV.
in_root() {
  local extra=()
  read -ra extra <<<"${ARM64_ENV:-}"
  env -i PATH=$VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CERT=/etc/ssl/rc-host-ca.crt PIP_DEFAULT_TIMEOUT=120 \
    PYTHONUNBUFFERED=1 "${extra[@]}" chroot "$ROOT" "$@"
}

host_tools() {
  if ! command -v debootstrap >/dev/null || [ ! -x /usr/bin/qemu-aarch64-static ]; then
    log "installing debootstrap and qemu-user-static"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap qemu-user-static binfmt-support >/dev/null; }; then
      log "could not install debootstrap/qemu-user-static from Debian's packages"
      exit $UNREACHABLE
    fi
  fi
  # binfmt: aarch64 ELF files run through qemu. The F flag opens the interpreter at registration, so
  # it runs inside the chroot without a copy of qemu there.
  [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && command -v update-binfmts >/dev/null; then
    update-binfmts --enable qemu-aarch64 2>/dev/null || log "update-binfmts could not enable qemu-aarch64; registering it by hand"
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:F' \
      >/proc/sys/fs/binfmt_misc/register
  fi
  grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 || {
    log "qemu-aarch64 is registered without the F flag (it cannot run inside a chroot): remove it (echo -1 > /proc/sys/fs/binfmt_misc/qemu-aarch64) and run again"
    exit 1
  }
}

MOUNTED=()
bind() {  # bind SRC DIR-IN-ROOT, once
  mkdir -p "$ROOT$2"
  mountpoint -q "$ROOT$2" && return 0
  mount --bind "$1" "$ROOT$2"
  MOUNTED=("$ROOT$2" "${MOUNTED[@]}")
}
mount_root() {
  trap umount_root EXIT
  if ! mountpoint -q "$ROOT/proc"; then
    mount -t proc proc "$ROOT/proc"
    MOUNTED=("$ROOT/proc" "${MOUNTED[@]}")
  fi
  bind /dev /dev
  bind /dev/pts /dev/pts
  # No /sys: ONNX Runtime's cpuinfo then logs "failed to parse the list of possible processors" and
  # goes on; with the host's (x86) /sys bound it crashed the import (SIGSEGV) under qemu.
  bind "$REPO" /src
}
umount_root() {
  local m
  for m in "${MOUNTED[@]}"; do umount "$m" 2>/dev/null || umount -l "$m"; done
  MOUNTED=()
}

# What the root installs, one requirement a line: the runtime extra from setup.py (the car's code and
# its CPU backends) and the test tools the Python 3.10 venv has (onnx: test fixtures only).
requirements() {
  python3 - <<'EOF'
import runpy
import setuptools

captured = {}
setuptools.setup = lambda **kw: captured.update(kw)
runpy.run_path("setup.py")
for r in captured["extras_require"]["runtime"]:
    print(r)
EOF
  printf '%s\n' onnx pytest pytest-timeout hypothesis
}

# Pins: the car's constraints file once it exists; until then the workstation's, less numpy and
# OpenCV, with numpy<2 as jetson/install.sh pins it on the car (OpenCV 4.12+ wheels want numpy>=2;
# the car's cv2 is JetPack's, so pip takes the newest OpenCV wheel that works with numpy 1.x).
constraints() {
  if [ -f requirements/car-constraints.txt ]; then
    cat requirements/car-constraints.txt
  else
    grep -v -E '^(numpy|opencv-python-headless)[=<>]' requirements/constraints.txt
    echo 'numpy<2'
  fi
}

debootstrap_root() {
  if ! curl -fsS --max-time 30 -o /dev/null "$MIRROR/dists/$SUITE/Release"; then
    log "cannot reach $MIRROR/dists/$SUITE/Release"
    exit $UNREACHABLE
  fi
  umount_root
  rm -rf "$ROOT"
  mkdir -p "$ROOT"
  local blog=$ROOT.debootstrap.log
  log "debootstrap $SUITE arm64 into $ROOT (first stage: download and unpack, native)"
  # minbase + python3-venv: a small root; the test tools come from PyPI.
  debootstrap --arch=arm64 --variant=minbase --foreign --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$ROOT" "$MIRROR" >"$blog" 2>&1 || {
      tail -5 "$blog" >&2; log "debootstrap failed (log: $blog)"
      grep -q -E "Couldn't download|Failed getting release|Couldn't get" "$blog" && exit $UNREACHABLE
      exit 1; }
  if [ "${ARM64_SECOND_STAGE:-0}" = 1 ]; then
    log "second stage under qemu-aarch64 (every maintainer script; slow)"
    in_root /debootstrap/debootstrap --second-stage >>"$blog" 2>&1 || {
      tail -5 "$blog" >&2; log "debootstrap second stage failed (log: $blog)"; exit 1; }
  else
    log "unpacking the other $(find "$ROOT/var/cache/apt/archives" -name '*.deb' | wc -l) downloaded packages (native dpkg-deb; no maintainer scripts)"
    local deb
    for deb in "$ROOT"/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" "$ROOT"; done
    cp "$ROOT/usr/share/base-passwd/passwd.master" "$ROOT/etc/passwd"
    cp "$ROOT/usr/share/base-passwd/group.master" "$ROOT/etc/group"
    in_root /sbin/ldconfig
    rm -f "$ROOT"/var/cache/apt/archives/*.deb
  fi
  echo "$SUITE" >"$ROOT/.rc-arm64-debootstrapped"
}

# The root's tags: cp3XX, manylinux up to its glibc, aarch64. The host's pip asks PyPI for exactly
# those (prints nothing and fails when it cannot; the root's pip then fetches them itself).
download_wheels() {
  local pyver glibc m plats=()
  pyver=$(in_root /usr/bin/python3 -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
  glibc=$(in_root /usr/bin/python3 -c 'import platform; print(platform.libc_ver()[1].split(".")[1])')
  plats=(--platform manylinux2014_aarch64)
  for m in $(seq 17 "$glibc"); do plats+=(--platform "manylinux_2_${m}_aarch64"); done
  mkdir -p "$WHEELS"
  # The host's pip config (extra indexes, find-links of x86 wheels) stays out of this.
  env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null \
    python3 -m pip download -q --disable-pip-version-check --only-binary=:all: "${plats[@]}" \
      --python-version "$pyver" --implementation cp --abi "cp$pyver" -d "$WHEELS" \
      -c "$ROOT/tmp/rc-constraints.txt" -r "$ROOT/tmp/rc-requirements.txt" pip 2>"$ROOT.pip-download.log"
}

make_root() {
  local want have=""
  want=$( { echo "format=$FORMAT suite=$SUITE second=${ARM64_SECOND_STAGE:-0}"; requirements; constraints; } | sha256sum | cut -c1-16)
  [ -f "$READY" ] && have=$(cat "$READY")
  if [ "$have" = "$want" ]; then
    log "reusing $ROOT ($SUITE, $(cat "$ROOT/.rc-arm64-python" 2>/dev/null))"
    return 0
  fi
  local stamp=""
  [ -f "$ROOT/.rc-arm64-debootstrapped" ] && stamp=$(cat "$ROOT/.rc-arm64-debootstrapped")
  if [ ! -x "$ROOT/usr/bin/python3" ] || [ "$stamp" != "$SUITE" ]; then
    debootstrap_root
  fi
  # pip in the root reaches PyPI as the host's does: same resolver, same CA bundle.
  cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
  cp -L "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$ROOT/etc/ssl/rc-host-ca.crt"
  mkdir -p "$ROOT/tmp" && chmod 1777 "$ROOT/tmp"
  requirements >"$ROOT/tmp/rc-requirements.txt"
  constraints >"$ROOT/tmp/rc-constraints.txt"
  mount_root
  rm -rf "${ROOT:?}$VENV"
  in_root /usr/bin/python3 -m venv --without-pip "$VENV"
  log "pip install (aarch64 wheels only): $(tr '\n' ' ' <"$ROOT/tmp/rc-requirements.txt")"
  # --only-binary: an sdist-only or x86-only dependency fails here, loudly, instead of compiling.
  # --no-compile: bytecode is written on first import instead (compiling all under qemu is slow).
  local pip_args=(install -q --no-compile --only-binary=:all: -c /tmp/rc-constraints.txt -r /tmp/rc-requirements.txt)
  if download_wheels; then
    bind "$WHEELS" /wheels
    local pipwhl
    pipwhl=$(find "$WHEELS" -maxdepth 1 -name 'pip-*.whl' -printf '%f\n' | sort -V | tail -1)
    in_root python "/wheels/$pipwhl/pip" "${pip_args[@]}" --no-index --find-links /wheels pip || {
      log "pip install from the downloaded wheels failed: see above (a dependency without an aarch64 wheel fails here)"
      exit 1; }
  else
    log "the host's pip could not download the aarch64 wheels ($(tail -1 "$ROOT.pip-download.log")); the root's pip fetches them"
    in_root python -m ensurepip -q
    in_root pip "${pip_args[@]}" || {
      log "pip install failed: see above (a dependency without an aarch64 wheel fails here)"
      exit 1; }
  fi
  in_root python -c 'import platform, sys; print(platform.machine(), sys.version.split()[0])' >"$ROOT/.rc-arm64-python"
  in_root pip freeze >"$ROOT/.rc-arm64-freeze.txt"
  echo "$want" >"$READY"
  log "ready: $ROOT ($SUITE, $(cat "$ROOT/.rc-arm64-python"); installed: $(tr '\n' ' ' <"$ROOT/.rc-arm64-freeze.txt"))"
}

main() {
  [ "$(id -u)" -eq 0 ] || { log "needs root (debootstrap, chroot, mount)"; exit 1; }
  host_tools
  if [ "${1:-}" = "--run" ]; then
    shift
    [ -f "$READY" ] || { log "no root at $ROOT: run .ci/arm64-root.sh first"; exit 1; }
    mount_root
    local rc=0
    in_root "$@" || rc=$?
    return $rc
  fi
  make_root
}

main "$@"; exit $?  # one line: bash has read it all before the script can change under it
