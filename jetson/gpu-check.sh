#!/usr/bin/env bash
# The first real TensorRT run in one command, on a machine with an NVIDIA GPU and TensorRT (a Jetson
# on JetPack 6, or a CUDA workstation): what the machine is, the GPU tests, the TensorRT benchmarks,
# and one Markdown report with every log beside it.
#
#   jetson/gpu-check.sh [--bundle DIR] [--out DIR] [--python PY]
#
#   --bundle  a bundle made by convert-model, for the benchmarks (default: builds/rc_pilot/v3 when it
#             exists; without one the benchmarks are skipped, the GPU tests make their own models)
#   --out     report directory (default: gpu-check-<host>-<UTC time>)
#   --python  interpreter with the runtime installed (default: .venv/bin/python, else python3); the
#             tests also need pytest and onnx (pip install pytest pytest-timeout hypothesis onnx)
#
# Exit status: 0 when every GPU test ran and passed, 1 when one failed or was skipped (a skip means
# TensorRT, pycuda or the GPU was not reachable: the check did not happen), 2 for bad usage.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUNDLE=""
OUT=""
PY=""
usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bundle) BUNDLE="${2:-}"; shift 2 ;;
    --out) OUT="${2:-}"; shift 2 ;;
    --python) PY="${2:-}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -z "$PY" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PY="$ROOT/.venv/bin/python"; else PY="python3"; fi
fi
if ! command -v "$PY" >/dev/null; then
  echo "gpu-check: no Python at $PY; pass --python PATH (the car's venv: /opt/rc-car/venv/bin/python)" >&2
  exit 2
fi
if [[ -z "$BUNDLE" && -f "$ROOT/builds/rc_pilot/v3/manifest.json" ]]; then BUNDLE="$ROOT/builds/rc_pilot/v3"; fi
if [[ -n "$BUNDLE" && ! -f "$BUNDLE/manifest.json" ]]; then
  echo "gpu-check: $BUNDLE has no manifest.json; pass a bundle made by convert-model" >&2
  exit 2
fi
OUT="${OUT:-gpu-check-$(hostname -s)-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
REPORT="$OUT/report.md"
cd "$ROOT" || exit 2
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

pyval() { "$PY" -c "$1" 2>&1 | tail -1; }

{
  echo "# GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| host | $(hostname) ($(uname -m), $(uname -r)) |"
  echo "| board | $({ tr -d '\0' </proc/device-tree/model; } 2>/dev/null || echo 'not a Jetson') |"
  echo "| JetPack / L4T | $(head -1 /etc/nv_tegra_release 2>/dev/null || echo n/a) |"
  echo "| nvidia-smi | $(nvidia-smi -L 2>/dev/null | head -2 | tr '\n' ' ' || true) |"
  echo "| Python | $("$PY" --version 2>&1) |"
  echo "| TensorRT | $(pyval 'import tensorrt; print(tensorrt.__version__)') |"
  echo "| pycuda | $(pyval 'import pycuda; print(pycuda.VERSION_TEXT)') |"
  echo "| GPU | $(pyval 'from runtime.tensorrt.gpu import detect_gpu; print(detect_gpu().to_dict())') |"
  echo "| commit | $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo n/a) |"
  echo
} >"$REPORT"

missing=$("$PY" - <<'EOF'
import importlib.util
print(" ".join(m for m in ("pytest", "onnx", "numpy", "tensorrt", "pycuda") if importlib.util.find_spec(m) is None))
EOF
)
if [[ -n "$missing" ]]; then
  echo "gpu-check: $PY lacks: $missing (tests: pip install pytest pytest-timeout hypothesis onnx; TensorRT and pycuda: jetson/install.sh)" | tee -a "$REPORT" >&2
fi

echo "## GPU tests (pytest -m gpu tests/runtime/tensorrt)" >>"$REPORT"
"$PY" -m pytest -m gpu -rA -p no:cacheprovider tests/runtime/tensorrt --junitxml "$OUT/gpu-tests.xml" \
  >"$OUT/gpu-tests.log" 2>&1
tests_rc=$?
summary=$(grep -E '^(=+ .*(passed|failed|skipped|error).* =+|FAILED|ERROR|SKIPPED)' "$OUT/gpu-tests.log" | tail -40)
status="passed"
if [[ $tests_rc -ne 0 ]]; then status="FAILED (pytest exit $tests_rc)"; fi
if grep -q "SKIPPED" <<<"$summary" || ! grep -q " passed" <<<"$summary"; then
  [[ "$status" == "passed" ]] && status="NOT RUN: tests were skipped (see the reasons)"
fi
{
  echo
  echo "**$status**"
  echo
  echo '```'
  echo "$summary"
  echo '```'
  echo "Full log: gpu-tests.log"
  echo
} >>"$REPORT"

echo "## TensorRT benchmarks" >>"$REPORT"
if [[ -z "$BUNDLE" ]]; then
  echo "Skipped: no bundle (pass --bundle DIR, or run \`make demo\` first)." >>"$REPORT"
else
  echo "Bundle: \`$BUNDLE\`. The runtime's loop on a synthetic drive, commands to null://, side by side in one run." >>"$REPORT"
  # ONNX Runtime on the CPU is the reference the TensorRT figures are read against.
  for run in "tensorrt trt-fp16" "tensorrt trt-int8" "onnxruntime onnx"; do
    read -r backend fmt <<<"$run"
    name="$backend-$fmt"
    "$PY" -m benchmarks.loop_benchmark --bundle "$BUNDLE" --backend "$backend" --format "$fmt" --link null:// \
      --frames 600 --rounds 2 --json "$OUT/bench-$name.json" >"$OUT/bench-$name.log" 2>&1
    rc=$?
    {
      echo
      echo "### $name (exit $rc)"
      echo
      if [[ -f "$OUT/bench-$name.json" ]]; then
        echo '```json'
        cat "$OUT/bench-$name.json"
        echo '```'
      else
        echo '```'
        tail -5 "$OUT/bench-$name.log"
        echo '```'
      fi
    } >>"$REPORT"
  done
  if "$PY" -c "import benchmarks.cli, rich, mlflow" 2>/dev/null; then
    "$PY" -m benchmarks.cli --bundle "$BUNDLE" --no-log --out "$OUT/rc-benchmark" >"$OUT/rc-benchmark.log" 2>&1
    echo -e "\nrc-benchmark (every build, exit $?): rc-benchmark/ and rc-benchmark.log" >>"$REPORT"
  else
    echo -e "\nrc-benchmark skipped: the benchmarks extra (rich, MLflow) is not installed." >>"$REPORT"
  fi
fi

echo "gpu-check: $status; report in $REPORT"
[[ "$status" == "passed" ]]
