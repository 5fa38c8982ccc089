"""What the cache keeps, rebuilds and reports: per-format settings, damaged builds, MLflow runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from converter.cli import main
from runtime.manifest import load_manifest, verified_path
from tests.conftest import DemoRegistry

pytestmark = pytest.mark.slow


def convert(reg: DemoRegistry, out: Path, capfd: pytest.CaptureFixture[str], *extra: str) -> dict:
    code = main(["--name", "rc_pilot", "--version", "3", "--tracking-uri", reg.tracking_uri, "--output", str(out),
                 "--json", *extra])
    cap = capfd.readouterr()
    summary = json.loads(cap.out)  # stdout is the JSON alone, whatever was logged
    assert code == summary["exit_code"], cap.err
    return summary


def test_one_formats_settings_do_not_throw_away_the_others(demo_registry: DemoRegistry, tmp_path: Path,
                                                          capfd: pytest.CaptureFixture[str]) -> None:
    convert(demo_registry, tmp_path, capfd, "--formats", "onnx,tflite-fp32", "--no-log")
    s = convert(demo_registry, tmp_path, capfd, "--formats", "tflite-fp32", "--tolerance", "tflite-fp32=1e-3",
                "--no-log")
    assert s["cache_hit"] is False and s["formats"][0]["status"] == "built"
    m = load_manifest(tmp_path / "rc_pilot" / "v3")
    assert [b.format for b in m.builds] == ["onnx", "tflite-fp32"]  # onnx kept, verified
    for b in m.builds:
        verified_path(tmp_path / "rc_pilot" / "v3", b)
    s = convert(demo_registry, tmp_path, capfd, "--formats", "onnx", "--no-log")
    assert s["cache_hit"] is True


def test_a_damaged_build_is_not_carried_into_the_next_bundle(demo_registry: DemoRegistry, tmp_path: Path,
                                                             capfd: pytest.CaptureFixture[str]) -> None:
    convert(demo_registry, tmp_path, capfd, "--formats", "onnx,tflite-fp32", "--no-log")
    bundle = tmp_path / "rc_pilot" / "v3"
    (bundle / "model_fp32.tflite").write_bytes(b"damaged")
    convert(demo_registry, tmp_path, capfd, "--formats", "onnx", "--no-log")
    m = load_manifest(bundle)
    assert [b.format for b in m.builds] == ["onnx"]
    assert not (bundle / "model_fp32.tflite").exists()


def test_a_cache_hit_logs_a_bundle_that_was_never_logged(demo_registry: DemoRegistry, tmp_path: Path,
                                                         capfd: pytest.CaptureFixture[str]) -> None:
    registry = tmp_path / "registry"  # a copy: this test rewrites v3's edge.* tags
    shutil.copytree(demo_registry.root, registry)
    reg = DemoRegistry(f"sqlite:///{registry / 'mlflow.db'}", registry)
    first = convert(reg, tmp_path / "b", capfd, "--formats", "tflite-fp32", "--no-log")
    assert first["mlflow_run_id"] is None
    hit = convert(reg, tmp_path / "b", capfd, "--formats", "tflite-fp32")
    assert hit["cache_hit"] is True and hit["mlflow_run_id"]
    from mlflow import MlflowClient

    from converter.mlflow_log import build_runs

    client = MlflowClient(tracking_uri=reg.tracking_uri)
    assert client.get_run(hit["mlflow_run_id"]).data.metrics["tflite-fp32.max_abs"] <= 1e-4  # the bundle's figures
    metrics = build_runs(client, hit["mlflow_run_id"])["tflite-fp32"].data.metrics
    assert metrics["max_abs"] <= 1e-4 and metrics["bytes"] > 0
    assert "build_s" not in metrics  # nothing was built by that run
    again = convert(reg, tmp_path / "b", capfd, "--formats", "tflite-fp32")
    assert again["cache_hit"] is True and again["mlflow_run_id"] == hit["mlflow_run_id"]  # no second run


def test_extending_a_bundle_refuses_formats_that_need_the_source_model(
    demo_bundle: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "v3"
    shutil.copytree(demo_bundle, copy)
    code = main(["--bundle", str(copy), "--formats", "tflite-fp32"])
    err = capfd.readouterr().err
    assert code == 2 and "need the source model" in err
    assert load_manifest(copy).has("tflite-fp32") and (copy / "model_fp32.tflite").exists()


def test_json_mode_still_prints_errors(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["--name", "nope", "--version", "1", "--tracking-uri", f"sqlite:///{tmp_path / 'x.db'}", "--json"])
    cap = capfd.readouterr()
    assert code == 2 and cap.out == "" and "no sqlite file at" in cap.err  # never created silently
