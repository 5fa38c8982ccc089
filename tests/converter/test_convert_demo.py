"""`convert-model --version 3` on the demo registry: the bundle, its parity, MLflow, the cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from converter.cli import main
from converter.mlflow_log import build_runs
from runtime.backends import open_backend
from runtime.manifest import load_manifest, verified_path
from runtime.preprocess import preprocess_frame
from tests.conftest import DemoRegistry

pytestmark = pytest.mark.slow


def test_bundle_matches_contract(demo_bundle: Path) -> None:
    m = load_manifest(demo_bundle)
    assert (m.model.name, m.model.version) == ("rc_pilot", "3")
    assert m.camera_input.shape == (1, 120, 160, 3) and m.camera_input.layout == "NHWC"
    assert {o.name: o.meaning for o in m.outputs} == {"steering": "steering", "throttle": "throttle"}
    assert m.preprocess.color == "RGB" and m.preprocess.scale == pytest.approx(1 / 255)
    assert [b.format for b in m.builds] == ["onnx", "onnx-fp16", "tflite-fp32", "tflite-fp16"]
    for b in m.builds:
        verified_path(demo_bundle, b)  # sha256 of every file
        assert b.parity["samples"] == 64
        assert set(b.parity["per_output"]) == {"steering", "throttle"}
        assert b.toolchain
    assert m.build("onnx").toolchain["opset"] == "17"
    assert not list(demo_bundle.parent.glob(".*staging*")), "staging directory left behind"


def test_parity_limits_of_the_done_criteria(demo_bundle: Path) -> None:
    m = load_manifest(demo_bundle)
    limits = {"onnx": 1e-4, "tflite-fp32": 1e-4, "onnx-fp16": 1e-2, "tflite-fp16": 1e-2}
    for fmt, limit in limits.items():
        assert m.build(fmt).parity["max_abs"] <= limit, (fmt, m.build(fmt).parity)


def test_every_build_runs_by_name_and_agrees(demo_bundle: Path, drive_video: Path) -> None:
    """The runtime's backends give the same steering/throttle for a real video frame on every build."""
    import cv2

    cap = cv2.VideoCapture(str(drive_video))
    ok, frame = cap.read()
    assert ok
    m = load_manifest(demo_bundle)
    x = preprocess_frame(frame, m.preprocess)
    results = {}
    for fmt, backend in (("onnx", "onnxruntime"), ("onnx-fp16", "onnxruntime"),
                         ("tflite-fp32", "litert"), ("tflite-fp16", "litert")):
        with open_backend(demo_bundle, backend, fmt) as b:
            results[fmt] = b.infer(x)
    ref = results["onnx"]
    for fmt, out in results.items():
        for name in ("steering", "throttle"):
            assert np.allclose(out[name], ref[name], atol=1e-2), (fmt, name)
    # steering and throttle differ: a swap would be visible
    assert abs(float(ref["steering"].ravel()[0]) - float(ref["throttle"].ravel()[0])) > 1e-3


def test_mlflow_run_and_version_tags(demo_bundle: Path, demo_registry: DemoRegistry) -> None:
    client = MlflowClient(tracking_uri=demo_registry.tracking_uri, registry_uri=demo_registry.tracking_uri)
    mv = client.get_model_version("rc_pilot", "3")
    run_id = mv.tags["edge.conversion_run_id"]
    assert mv.tags["edge.formats"] == "onnx,onnx-fp16,tflite-fp32,tflite-fp16"
    run = client.get_run(run_id)
    assert run.data.tags["edge.model_name"] == "rc_pilot" and run.data.tags["edge.model_version"] == "3"
    assert run.info.status == "FINISHED"
    assert run.data.params["source.version"] == "3"
    assert run.data.metrics["onnx.max_abs"] <= 1e-4  # the parent: one figure per build, to sort by
    # timed from the conversion's start (it used to be created at the end: "Duration 315 ms")
    assert run.info.end_time - run.info.start_time >= 2000
    assert run.data.tags["edge.model_version_uri"] == "models:/rc_pilot/3" and "edge.machine" in run.data.tags
    note = run.data.tags["mlflow.note.content"]
    assert "(#/models/rc_pilot/versions/3)" in note and "| tflite-fp16 | fp16 | litert |" in note
    # one child run per build, for MLflow's compare view
    children = build_runs(client, run_id)
    assert set(children) == {"onnx", "onnx-fp16", "tflite-fp32", "tflite-fp16"}
    fp16 = children["tflite-fp16"]
    assert fp16.data.params["precision"] == "fp16" and fp16.data.params["runner"] == "litert"
    assert "steering.max_abs" in fp16.data.metrics and fp16.data.metrics["bytes"] > 0
    assert "toolchain.tf2onnx" in children["onnx"].data.params
    assert "builds.json" in {a.path for a in client.list_artifacts(run_id)}
    names = {a.path for a in client.list_artifacts(run_id, "bundle")}
    assert {"bundle/manifest.json", "bundle/model.onnx", "bundle/model_fp16.tflite"} <= names
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.name == "edge-conversion"


def test_second_run_is_a_cache_hit(demo_bundle: Path, demo_registry: DemoRegistry, capfd: pytest.CaptureFixture[str]) -> None:
    before = (demo_bundle / "manifest.json").read_text()
    code = main(["--name", "rc_pilot", "--version", "3", "--tracking-uri", demo_registry.tracking_uri,
                 "--output", str(demo_bundle.parent.parent), "--formats", "onnx,tflite-fp16", "--json"])
    summary = json.loads(capfd.readouterr().out)
    assert code == 0 and summary["cache_hit"] is True
    assert [f["status"] for f in summary["formats"]] == ["cached", "cached"]
    assert (demo_bundle / "manifest.json").read_text() == before


def test_tampered_bundle_is_rebuilt_not_reused(demo_registry: DemoRegistry, tmp_path: Path,
                                               capfd: pytest.CaptureFixture[str]) -> None:
    args = ["--name", "rc_pilot", "--version", "3", "--tracking-uri", demo_registry.tracking_uri,
            "--output", str(tmp_path), "--formats", "tflite-fp32", "--no-log", "--json"]
    assert main(args) == 0
    capfd.readouterr()
    model = tmp_path / "rc_pilot" / "v3" / "model_fp32.tflite"
    model.write_bytes(model.read_bytes()[:-10] + b"0123456789")
    assert main(args) == 0
    summary = json.loads(capfd.readouterr().out)
    assert summary["cache_hit"] is False and summary["formats"][0]["status"] == "built"
    verified_path(tmp_path / "rc_pilot" / "v3", load_manifest(tmp_path / "rc_pilot" / "v3").build("tflite-fp32"))


@pytest.mark.parametrize("version, flavor", [("1", "h5"), ("2", "saved_model")])
def test_every_registration_way_converts(demo_registry: DemoRegistry, tmp_path: Path, version: str, flavor: str,
                                         capfd: pytest.CaptureFixture[str]) -> None:
    code = main(["--name", "rc_pilot", "--version", version, "--tracking-uri", demo_registry.tracking_uri,
                 "--output", str(tmp_path), "--formats", "onnx,tflite-fp32", "--no-log", "--json"])
    summary = json.loads(capfd.readouterr().out)
    assert code == 0, summary
    m = load_manifest(tmp_path / "rc_pilot" / f"v{version}")
    assert m.model.flavor.startswith(flavor)
    assert {o.meaning for o in m.outputs} == {"steering", "throttle"}
    assert all(b.parity["max_abs"] <= 1e-4 for b in m.builds)


def test_alias_resolves_to_its_version(demo_registry: DemoRegistry, tmp_path: Path,
                                       capfd: pytest.CaptureFixture[str]) -> None:
    code = main(["--name", "rc_pilot", "--alias", "production", "--tracking-uri", demo_registry.tracking_uri,
                 "--output", str(tmp_path), "--formats", "onnx", "--no-log", "--json"])
    summary = json.loads(capfd.readouterr().out)
    assert code == 0 and summary["version"] == "2"


def test_default_formats_rerun_is_a_cache_hit_with_trt_skipped(demo_registry: DemoRegistry, tmp_path: Path,
                                                               capfd: pytest.CaptureFixture[str]) -> None:
    """Without a GPU, trt-fp16 is skipped; that must not turn every later run into a rebuild."""
    pytest.importorskip("converter.builders.tensorrt")
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here: trt-fp16 is built, not skipped")
    except ImportError:
        pass
    config = tmp_path / "rc-edge.toml"
    config.write_text('[convert]\nformats = ["tflite-fp32", "trt-fp16"]\n')
    args = ["--name", "rc_pilot", "--version", "3", "--tracking-uri", demo_registry.tracking_uri,
            "--output", str(tmp_path / "b"), "--config", str(config), "--no-log", "--json"]
    assert main(args) == 0
    first = json.loads(capfd.readouterr().out)
    assert [f["status"] for f in first["formats"]] == ["built", "skipped"]
    assert main(args) == 0
    second = json.loads(capfd.readouterr().out)
    assert second["cache_hit"] is True
    assert [f["status"] for f in second["formats"]] == ["cached", "skipped"]
