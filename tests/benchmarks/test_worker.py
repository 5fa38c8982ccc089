"""The per-build worker: light imports (no TensorFlow/MLflow in the measured process), and on a GPU
machine the TensorRT build with its GPU time split (skipped with the reason elsewhere)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import checkout_env, python_module
from tests.runtime.tensorrt.conftest import gpu_missing_reason


def test_worker_imports_neither_tensorflow_nor_mlflow() -> None:
    code = ("import sys, benchmarks.worker, benchmarks.reference_data, converter.reference; "
            "heavy = [m for m in ('tensorflow', 'keras', 'mlflow') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, env=checkout_env())


@pytest.mark.slow
def test_worker_reports_skip_with_the_reason(demo_bundle: Path, tmp_path: Path) -> None:
    """A format whose backend this machine lacks is a result (``skipped`` + why), not a crash."""
    if gpu_missing_reason() is None:
        pytest.skip("this machine can run TensorRT")
    out = tmp_path / "r.json"
    subprocess.run([*python_module("benchmarks.worker"), "--bundle", str(demo_bundle), "--format", "trt-fp16",
                    "--out", str(out)], check=True, timeout=120, env=checkout_env())
    r = json.loads(out.read_text())
    assert r["status"] == "skipped" and ("TensorRT" in r["reason"] or "GPU" in r["reason"] or "CUDA" in r["reason"])


@pytest.mark.gpu
@pytest.mark.slow
def test_tensorrt_build_has_gpu_split(demo_bundle: Path, tmp_path: Path) -> None:
    reason = gpu_missing_reason()
    if reason is not None:
        pytest.skip(f"GPU test: {reason}")
    out = tmp_path / "r.json"
    subprocess.run([*python_module("benchmarks.worker"), "--bundle", str(demo_bundle), "--format", "trt-fp16",
                    "--warmup", "5", "--min-count", "50", "--min-time", "0.1", "--accuracy", "--out", str(out),
                    "--cache-dir", str(tmp_path / "engines")], check=True, timeout=900, env=checkout_env())
    r = json.loads(out.read_text())
    assert r["status"] == "ok", r
    assert set(r["gpu_ms"]) == {"h2d", "compute", "d2h"}
    assert 0 < r["gpu_ms"]["compute"]["p50"] <= r["latency_ms"]["p99"] * 1.5
    assert r["accuracy"]["max_abs"] < 1e-2


def test_a_build_with_several_inputs_is_timed_and_checked_on_every_input(tmp_path: Path) -> None:
    """An IMU + memory pilot: every call gets sample i of every input (frames and reference
    ``in/<name>`` values), and the accuracy is reported raw and decoded."""
    from tests.runtime.multi_input import image_input, vector_input, write_bundle

    bundle = write_bundle(tmp_path, "imu_mem", [image_input(), vector_input("imu_in", "imu", 6),
                                                vector_input("mem_in", "memory", 4, length=2)], reference=True)
    out = tmp_path / "r.json"
    subprocess.run([sys.executable, "-m", "benchmarks.worker", "--bundle", str(bundle), "--format", "onnx",
                    "--warmup", "2", "--min-count", "20", "--min-time", "0.05", "--accuracy", "--out", str(out)],
                   check=True, timeout=300)
    r = json.loads(out.read_text())
    assert r["status"] == "ok", r
    acc = r["accuracy"]
    assert acc["samples"] == 12 and acc["max_abs"] < 1e-5  # the vectors reached the model: outputs match
    assert set(acc["decoded"]) == {"steering", "throttle"} and acc["decoded"]["steering"]["max_abs"] < 1e-5
