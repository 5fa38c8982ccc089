"""``open_backend`` with a build the bundle lacks: under ``backend="auto"`` (what ``rc-runtime
--format X`` uses) the error names the build and lists those the bundle has, as a named backend's
does, and ``rc-runtime`` exits 2 with that one line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runtime.backends import open_backend
from runtime.manifest import BundleError, load_manifest
from tests.conftest import checkout_env, python_module


def _absent_cpu_format(bundle: Path) -> str:
    have = {b.format for b in load_manifest(bundle).builds}
    absent = [f for f in ("tflite-int8", "onnx-int8", "tflite-fp16", "onnx-fp16") if f not in have]
    if not absent:
        pytest.skip(f"the bundle has every CPU format ({sorted(have)})")
    return absent[0]


def test_auto_names_the_missing_build_and_lists_the_present_ones(bundle: Path) -> None:
    fmt = _absent_cpu_format(bundle)
    have = [b.format for b in load_manifest(bundle).builds]
    with pytest.raises(BundleError) as auto:
        open_backend(bundle, "auto", fmt)
    assert f"no {fmt!r} build" in str(auto.value) and all(f in str(auto.value) for f in have)
    assert f"--formats {fmt}" in str(auto.value)


def test_rc_runtime_with_a_missing_format_exits_2_in_one_line(bundle: Path, tmp_path: Path) -> None:
    fmt = _absent_cpu_format(bundle)
    run = subprocess.run(
        python_module("runtime.cli", "--bundle", str(bundle), "--camera", str(tmp_path / "none.mp4"),
                      "--serial", "null://", "--format", fmt, "--max-frames", "1"),
        capture_output=True, text=True, timeout=120, env=checkout_env(),
    )
    assert run.returncode == 2, run.stderr[-1000:]
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("rc-runtime: ") and f"no {fmt!r} build" in last, last
