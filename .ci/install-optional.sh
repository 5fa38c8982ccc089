#!/usr/bin/env bash
# Toolchains some tests use (each test skips with a reason when its tool is missing):
# avr-gcc/avr-libc compile the reference firmware; shellcheck checks jetson/install.sh.
# `.ci/install-optional.sh --check` installs nothing: it lists what is missing and which tests skip
# for it (`make test` runs it so a new user sees that plainly).
# simavr 1.6 (libsimavr-dev) runs the firmware's .elf for the HIL tests (tests/jetson/test_hil*.py).
set -uo pipefail
if [ "${1:-}" = "--check" ]; then
  missing=()
  { command -v gcc && command -v make; } >/dev/null || missing+=("gcc/make: firmware host tests, TensorRT API tests (binding stub) - apt-get install gcc make")
  command -v avr-gcc >/dev/null || missing+=("avr-gcc/avr-libc: firmware build test - apt-get install gcc-avr avr-libc binutils-avr")
  command -v shellcheck >/dev/null || missing+=("shellcheck: jetson/*.sh lint test - apt-get install shellcheck")
  command -v systemd-analyze >/dev/null || missing+=("systemd-analyze: unit file check - apt-get install systemd")
  [ -f /usr/include/simavr/sim_avr.h ] || missing+=("simavr: firmware HIL tests - apt-get install simavr libsimavr-dev libsimavrparts1")
  command -v prometheus >/dev/null || missing+=("prometheus: the server that scrapes rc-runtime --metrics in its test - apt-get install prometheus")
  if [ ${#missing[@]} -eq 0 ]; then
    echo "optional toolchains: all present"
  else
    echo "optional toolchains MISSING (their tests skip; .ci/install-optional.sh installs them):"
    printf '  - %s\n' "${missing[@]}"
  fi
  exit 0
fi
need=()
command -v avr-gcc >/dev/null || need+=(gcc-avr avr-libc binutils-avr)
command -v shellcheck >/dev/null || need+=(shellcheck)
[ -f /usr/include/simavr/sim_avr.h ] || need+=(simavr libsimavr-dev libsimavrparts1)
command -v prometheus >/dev/null || need+=(prometheus)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo -n"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
