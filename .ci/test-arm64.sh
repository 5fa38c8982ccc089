#!/usr/bin/env bash
# The runtime's arm64 subset (tests/runtime/arm64.txt) in the Debian arm64 root that
# .ci/arm64-root.sh makes (made here first when missing), under qemu-user-static.
#
# With a demo bundle ($RC_TEST_BUNDLE, else builds/rc_pilot/v3 when `make demo` made it) it also
# runs the FP32 build oracle: the demo model through ONNX Runtime's and LiteRT's aarch64 wheels.
# Exit status: pytest's (a test failure fails CI); 0 with a `test-arm64: SKIPPED` line when Debian's
# mirror cannot be reached, so no root can be made (nothing was tested then, and the line says so).
set -euo pipefail
cd "$(dirname "$0")/.."
LIST=tests/runtime/arm64.txt

start=$(date +%s)
rc=0
.ci/arm64-root.sh || rc=$?
if [ "$rc" -eq 3 ]; then
  echo "test-arm64: SKIPPED: no arm64 root (Debian's mirror or the host's qemu/debootstrap packages unreachable); nothing ran on arm64"
  exit 0
fi
[ "$rc" -eq 0 ] || exit "$rc"
echo "test-arm64: root ready in $(( $(date +%s) - start )) s"

# A line `PATH` runs it; `-NODEID` deselects one test (a known failure, named in the list).
paths=()
while read -r line; do
  case $line in
    -*) paths+=(--deselect "${line#-}") ;;
    *) paths+=("$line") ;;
  esac
done < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$LIST" | grep -v '^$')
markers="not slow and not gpu and not server"
bundle=${RC_TEST_BUNDLE:-$PWD/builds/rc_pilot/v3}
env_extra=()
if [ -f "$bundle/manifest.json" ]; then
  case $bundle in
    "$PWD"/*) ;;
    *) echo "test-arm64: RC_TEST_BUNDLE must lie inside this checkout (the root sees only /src): $bundle" >&2; exit 2 ;;
  esac
  paths+=(tests/runtime/test_fp32_builds_oracle.py)
  env_extra=("RC_TEST_BUNDLE=/src/${bundle#"$PWD"/}")
  markers="not gpu and not server"  # the oracle is `slow` only for the demo model it then does not build
else
  echo "test-arm64: no demo bundle at $bundle: the FP32 build oracle does not run (make demo makes one)"
fi

start=$(date +%s)
rc=0
# No bytecode in the checkout: it is the host's tree, bound read-write at /src. ($0 and $@ are the
# inner shell's: the markers and the paths.)
# shellcheck disable=SC2016
ARM64_ENV="PYTHONPATH=/src PYTHONDONTWRITEBYTECODE=1 ${env_extra[*]}" \
  .ci/arm64-root.sh --run sh -c 'cd /src && exec python -m pytest -p no:cacheprovider -ra -m "$0" "$@"' \
  "$markers" "${paths[@]}" || rc=$?
echo "test-arm64: tests ran in $(( $(date +%s) - start )) s under qemu-aarch64 ($(cat "${ARM64_ROOT:-$PWD/.cache/arm64-root}/.rc-arm64-python" 2>/dev/null || echo '?'))"
exit "$rc"
