"""INT8 end to end on the demo model: a calibration set from synthetic-track drives -> convert-model
``tflite-int8`` and ``onnx-int8`` -> the cost on held-out frames in the manifest and the MLflow run
-> the runtime's backends run them, and the runtime's own recording makes a valid set again.

The conversion logs to a copy of the demo store: logging tags the model version (edge.formats),
and the shared store's tags belong to the converter's own tests.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from mlflow import MlflowClient

from calibration.cli import main as calibrate
from calibration.conversion import load_for_conversion
from calibration.set_format import MANIFEST_FILE, read_manifest
from converter.cli import main as convert
from converter.mlflow_log import build_runs
from runtime.backends import open_backend
from runtime.manifest import Manifest, load_manifest, sha256_file
from runtime.preprocess import preprocess_frame
from tests.calibration.conftest import TrackSources
from tests.conftest import DemoRegistry, checkout_env, python_module

pytestmark = pytest.mark.slow

INT8 = ("tflite-int8", "onnx-int8")
STEERING_MAE_BAR = 0.02  # the "done when"


@dataclass(frozen=True)
class Int8Run:
    bundle: Path
    tracking_uri: str
    calib_set: Path


def copy_store(demo: DemoRegistry, dest: Path) -> str:
    """A copy of the demo store's database (its artifacts stay where they are, read-only)."""
    dest.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(demo.root / "mlflow.db") as src, sqlite3.connect(dest / "mlflow.db") as dst:
        src.backup(dst)
    return f"sqlite:///{dest / 'mlflow.db'}"


def args(uri: str, out: Path, formats: str, calib: Path, *extra: str) -> list[str]:
    return ["--name", "rc_pilot", "--version", "3", "--tracking-uri", uri, "--output", str(out),
            "--formats", formats, "--calibration", str(calib), *extra]


@pytest.fixture(scope="module")
def store(demo_registry: DemoRegistry, tmp_path_factory: pytest.TempPathFactory) -> str:
    return copy_store(demo_registry, tmp_path_factory.mktemp("int8-store"))


@pytest.fixture(scope="module")
def calib_set(track_sources: TrackSources, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("int8-sets") / "track"
    assert calibrate([*map(str, track_sources.all), "--out", str(out), "--input-size", "160x120",
                      "--frames", "350", "--seed", "1"]) == 0
    return out


@pytest.fixture(scope="module")
def int8_run(store: str, calib_set: Path, tmp_path_factory: pytest.TempPathFactory) -> Int8Run:
    out = tmp_path_factory.mktemp("int8-builds")
    assert convert(args(store, out, "onnx,tflite-int8,onnx-int8", calib_set)) == 0
    return Int8Run(out / "rc_pilot" / "v3", store, calib_set)


def test_both_int8_builds_cost_less_than_the_bar(int8_run: Int8Run,
                                                 record_property: Callable[[str, object], None]) -> None:
    m = load_manifest(int8_run.bundle)
    counts = read_manifest(int8_run.calib_set)["counts"]
    assert [b.format for b in m.builds] == ["onnx", *INT8]
    assert m.source["calibration"]["sha256"] == sha256_file(int8_run.calib_set / MANIFEST_FILE)
    for fmt in INT8:
        b = m.build(fmt)
        cost = b.extra["int8_cost"]
        record_property(f"{fmt}.int8_cost", json.dumps(cost))
        assert cost["frames"] == counts["heldout"] >= 50
        assert b.extra["calibration_frames"] == counts["calibration"]
        steering, throttle = cost["per_output"]["steering"], cost["per_output"]["throttle"]
        assert steering["mean_abs"] <= STEERING_MAE_BAR, (fmt, cost)
        assert throttle["mean_abs"] <= 0.03 and steering["max_abs"] <= 0.25 and throttle["max_abs"] <= 0.25
        assert cost["steering_share_over"] <= 0.05
        assert steering["mean_abs"] > 0  # really quantized: INT8 is not bit-exact
    tfl = m.build("tflite-int8").io
    assert {k: (v.dtype, v.quantized) for k, v in tfl.items()} == {
        "image": ("int8", True), "steering": ("int8", True), "throttle": ("int8", True)}
    assert tfl["image"].zero_point == -128 and tfl["image"].scale == pytest.approx(1 / 255, rel=0.02)
    assert {v.dtype for v in m.build("onnx-int8").io.values()} == {"float32"}
    assert m.build("onnx-int8").extra["quantization"]["format"] == "QDQ"


def test_the_cost_is_in_the_mlflow_run(int8_run: Int8Run) -> None:
    client = MlflowClient(tracking_uri=int8_run.tracking_uri, registry_uri=int8_run.tracking_uri)
    children = build_runs(client, client.get_model_version("rc_pilot", "3").tags["edge.conversion_run_id"])
    m = load_manifest(int8_run.bundle)
    for fmt in INT8:
        cost = m.build(fmt).extra["int8_cost"]
        metrics = children[fmt].data.metrics  # the build's own run
        for out in ("steering", "throttle"):
            for k in ("mean_abs", "max_abs"):
                assert metrics[f"int8.per_output.{out}.{k}"] == pytest.approx(cost["per_output"][out][k])
        assert metrics["int8.steering_share_over"] == pytest.approx(cost["steering_share_over"])
        assert metrics["int8.frames"] == cost["frames"]


def test_int8_builds_run_in_the_runtime_backends(int8_run: Int8Run, track_sources: TrackSources) -> None:
    cap = cv2.VideoCapture(str(track_sources.video))
    for _ in range(40):  # a frame from inside a curve, not the first one
        ok, frame = cap.read()
    cap.release()
    assert ok
    m = load_manifest(int8_run.bundle)
    x = preprocess_frame(frame, m.preprocess)
    with open_backend(int8_run.bundle, "onnxruntime", "onnx") as b:
        fp32 = b.infer(x)
    for fmt, backend in (("tflite-int8", "litert"), ("onnx-int8", "onnxruntime")):
        with open_backend(int8_run.bundle, backend, fmt) as b:
            assert b.input_io[m.camera_input.name].dtype == ("int8" if fmt == "tflite-int8" else "float32")
            got = b.infer(x)
        for name in ("steering", "throttle"):
            assert got[name].dtype == np.float32
            assert abs(float(got[name].ravel()[0]) - float(fp32[name].ravel()[0])) <= 0.05, (fmt, name)
    assert abs(float(fp32["steering"].ravel()[0]) - float(fp32["throttle"].ravel()[0])) > 1e-3  # a swap shows


def test_a_drive_recorded_by_the_runtime_on_int8_calibrates_again(int8_run: Int8Run, track_sources: TrackSources,
                                                                   tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    proc = subprocess.run(
        [*python_module("runtime.cli"), "--bundle", str(int8_run.bundle), "--backend", "litert",
         "--format", "tflite-int8", "--camera", f"file://{track_sources.video}?realtime=0",
         "--serial", "null://", "--max-frames", "60", "--record", str(rec), "--log-level", "WARNING"],
        capture_output=True, text=True, timeout=120, check=False, env=checkout_env(),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / "from-recording"
    assert calibrate([str(rec), "--bundle", str(int8_run.bundle), "--out", str(out), "--frames", "60"]) == 0
    m = read_manifest(out)
    assert m["sources"][0]["kind"] == "recording" and m["sources"][0]["frames_available"] >= 55
    data = load_for_conversion(out, load_manifest(int8_run.bundle).preprocess)
    assert len(data.calib) + len(data.heldout) == m["counts"]["calibration"] + m["counts"]["heldout"]


def test_a_set_for_another_preprocessing_is_refused(store: str, track_sources: TrackSources, tmp_path: Path,
                                                    capfd: pytest.CaptureFixture[str]) -> None:
    bgr = tmp_path / "bgr-set"
    assert calibrate([str(track_sources.folder), "--out", str(bgr), "--input-size", "160x120", "--color", "BGR",
                      "--frames", "40"]) == 0
    capfd.readouterr()
    assert convert(args(store, tmp_path / "out", "onnx,onnx-int8", bgr, "--no-log")) == 2
    err = " ".join(capfd.readouterr().err.split())  # the console wraps long lines
    assert "160x120 crop_top=0 BGR" in err and "160x120 crop_top=0 RGB" in err
    assert not (tmp_path / "out" / "rc_pilot" / "v3").exists()


def test_over_the_limits_that_format_fails_with_the_figures(store: str, calib_set: Path, tmp_path: Path,
                                                            capfd: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "rc-edge.toml"
    config.write_text("[int8]\nmax_steering_mae = 0.000001\n")
    code = convert(args(store, tmp_path / "out", "onnx,tflite-int8,onnx-int8", calib_set,
                        "--config", str(config), "--no-log", "--json"))
    summary = json.loads(capfd.readouterr().out)
    assert code == 1
    status = {f["format"]: f for f in summary["formats"]}
    assert status["onnx"]["status"] == "built"
    for fmt in INT8:
        assert status[fmt]["status"] == "failed"
        assert "steering mean abs error" in status[fmt]["reason"] and "> 1e-06" in status[fmt]["reason"]
    m: Manifest = load_manifest(tmp_path / "out" / "rc_pilot" / "v3")
    assert [b.format for b in m.builds] == ["onnx"] and {n["format"] for n in m.not_built} == set(INT8)
    assert not list((tmp_path / "out" / "rc_pilot" / "v3").glob("model_int8*"))


@pytest.mark.parametrize("section, message", [
    ("[int8]\nmax_steer = 0.1\n", "max_steer"),
    ("[int8]\nmax_abs = -1\n", "max_abs must be a finite number >= 0"),
])
def test_bad_int8_config_is_exit_2(store: str, calib_set: Path, tmp_path: Path, section: str, message: str,
                                   capfd: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "rc-edge.toml"
    config.write_text(section)
    assert convert(args(store, tmp_path / "out", "onnx-int8", calib_set, "--config", str(config), "--no-log")) == 2
    err = " ".join(capfd.readouterr().err.split())
    assert "config [int8]" in err and message in err
