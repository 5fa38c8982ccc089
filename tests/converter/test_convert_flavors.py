"""Single-output models, logged as a bare .h5 and through the tensorflow flavor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from converter.cli import main
from runtime.manifest import load_manifest
from tests.converter import custom_layers
from tests.converter.registry_helpers import register

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("how", ["h5-file", "tensorflow-flavor"])
def test_single_output_model(tmp_path: Path, how: str, capfd: pytest.CaptureFixture[str]) -> None:
    model = custom_layers.pilot_with(custom_layers.Scale(1.0, name="s"), steering_only=True)
    uri = register(tmp_path, model, how=how)
    code = main(["--name", "m", "--version", "1", "--tracking-uri", uri, "--output", str(tmp_path / "b"),
                 "--formats", "onnx,tflite-fp32,tflite-fp16", "--json",
                 "--custom-objects", "tests.converter.custom_layers:CUSTOM"])
    summary = json.loads(capfd.readouterr().out)
    assert code == 0, summary
    m = load_manifest(tmp_path / "b" / "m" / "v1")
    assert [(o.name, o.meaning) for o in m.outputs] == [("steering", "steering")]
    assert m.build("onnx").parity["max_abs"] <= 1e-4
    assert summary["mlflow_run_id"]
