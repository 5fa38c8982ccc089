#!/usr/bin/env bash
# Toolchains some tests use (each test skips with a reason when its tool is missing):
# avr-gcc/avr-libc compile the reference firmware; shellcheck checks jetson/install.sh.
# simavr 1.6 (libsimavr-dev) runs the firmware's .elf for the HIL tests (tests/jetson/test_hil*.py).
set -uo pipefail
need=()
command -v avr-gcc >/dev/null || need+=(gcc-avr avr-libc binutils-avr)
command -v shellcheck >/dev/null || need+=(shellcheck)
[ -f /usr/include/simavr/sim_avr.h ] || need+=(simavr libsimavr-dev libsimavrparts1)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo -n"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
