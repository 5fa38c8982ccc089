#!/usr/bin/env bash
# Fetch TensorRT's Python binding wheels (no libraries, ~1-1.5 MB each) into .cache/trt-bindings so
# that tests/runtime/tensorrt/test_trt_real_api.py can import the real extension module of each
# version we claim (over a stub libnvinfer it compiles) and check our code against its classes and
# signatures. `make test` runs this; it is idempotent: a version already extracted is skipped.
#
#   .ci/fetch-trt-bindings.sh          # the default set (boundaries of each API path + JetPack's)
#   .ci/fetch-trt-bindings.sh --all    # every 10.x / 11.x binding on the package index as well
#   .ci/fetch-trt-bindings.sh 10.7.0   # just these versions
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${TRT_BINDINGS_DIR:-$ROOT/.cache/trt-bindings}"
# Any Python with pip will do: the wheel tags are pinned below.
if [[ -n "${PYTHON:-}" ]]; then PY="$PYTHON"; elif [[ -x "$ROOT/.venv/bin/python" ]]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi

# 8.6.1: the only 8.x binding on the package index (tensorrt-bindings; 8.5 has none there).
# 10.0.1 = first 10.x, 10.3.0 = JetPack 6, 10.16.1.11 = last 10.x, 11.0.0.114 = first 11.x, 11.4 = newest.
DEFAULT_VERSIONS=(8.6.1 10.0.1 10.3.0 10.16.1.11 11.0.0.114 11.4.0.106)
ALL_VERSIONS=(8.6.1
  10.0.1 10.1.0 10.2.0.post1 10.3.0 10.4.0 10.5.0 10.6.0.post2 10.7.0.post1 10.8.0.43 10.9.0.34
  10.10.0.31 10.11.0.33 10.12.0.36 10.13.0.35 10.13.2.6 10.13.3.9.post1 10.14.1.48.post1 10.15.1.29
  10.16.0.72 10.16.1.11 11.0.0.114 11.1.0.106 11.2.1.2 11.3.0.99 11.4.0.106)

if [[ $# -eq 0 ]]; then
  versions=("${DEFAULT_VERSIONS[@]}")
elif [[ "$1" == "--all" ]]; then
  versions=("${ALL_VERSIONS[@]}")
else
  versions=("$@")
fi

mkdir -p "$DEST" "$ROOT/.cache"
# .cache/ is not in the repository's .gitignore: keep these files out of git from here.
[[ -f "$ROOT/.cache/.gitignore" ]] || printf '*\n' > "$ROOT/.cache/.gitignore"

for v in "${versions[@]}"; do
  out="$DEST/$v"
  if [[ -f "$out/.complete" ]]; then
    continue
  fi
  case "$v" in
    8.*) pkg="tensorrt-bindings" ;;
    *) pkg="tensorrt-cu12-bindings" ;;
  esac
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  # Pin interpreter and platform so the same wheel is fetched whatever Python runs this script.
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.11 --implementation cp \
    --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    -d "$tmp" "$pkg==$v"
  whl="$(ls "$tmp"/*.whl)"
  rm -rf "$out"
  mkdir -p "$out"
  "$PY" - "$whl" "$out" <<'PYEOF'
import hashlib, sys, zipfile
from pathlib import Path

whl, out = Path(sys.argv[1]), Path(sys.argv[2])
with zipfile.ZipFile(whl) as z:
    for member in ("tensorrt_bindings/tensorrt.so", "tensorrt_bindings/__init__.py"):
        (out / Path(member).name).write_bytes(z.read(member))
digest = hashlib.sha256(whl.read_bytes()).hexdigest()
(out / ".complete").write_text(f"{whl.name} sha256={digest}\n")
PYEOF
  rm -rf "$tmp"
  trap - EXIT
  echo "fetched TensorRT $v bindings into $out"
done
