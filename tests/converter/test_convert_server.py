"""Against a real `mlflow server` on 127.0.0.1: register over HTTP, convert, log back over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from converter.cli import main
from converter.demo.registration import tracking
from runtime.manifest import load_manifest
from tests.conftest import MlflowServer
from tests.converter import custom_layers
from tests.converter.registry_helpers import PRE

pytestmark = [pytest.mark.server, pytest.mark.slow]


def test_convert_through_a_real_server(mlflow_server: MlflowServer, tmp_path: Path,
                                       capfd: pytest.CaptureFixture[str]) -> None:
    import mlflow
    from mlflow import MlflowClient

    uri = mlflow_server.url
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    model = custom_layers.pilot_with(custom_layers.Scale(1.0, name="s"))
    # tracking() restores both URIs and their MLFLOW_*_URI variables afterwards: set_*_uri(None)
    # would leave the variables pointing at this server for every later test in the session.
    with tracking(uri):
        exp = client.create_experiment("train-over-http")  # artifacts proxied by the server
        with mlflow.start_run(experiment_id=exp):
            mlflow.tensorflow.log_model(model, name="model", registered_model_name="http_pilot",
                                        custom_objects=custom_layers.CUSTOM)
    client.set_model_version_tag("http_pilot", "1", "edge.preprocess", json.dumps(PRE))
    capfd.readouterr()  # MLflow's "View run" banner from the registration above

    code = main(["--name", "http_pilot", "--version", "1", "--tracking-uri", uri, "--output", str(tmp_path),
                 "--formats", "onnx,tflite-fp32", "--json", "--custom-objects", "tests.converter.custom_layers:CUSTOM"])
    cap = capfd.readouterr()
    assert code == 0, cap.err[-2000:]
    summary = json.loads(cap.out)  # stdout holds the JSON alone
    m = load_manifest(tmp_path / "http_pilot" / "v1")
    assert all(b.parity["max_abs"] <= 1e-4 for b in m.builds)
    run_id = client.get_model_version("http_pilot", "1").tags["edge.conversion_run_id"]
    assert run_id == summary["mlflow_run_id"]
    names = {a.path for a in client.list_artifacts(run_id, "bundle")}
    assert "bundle/manifest.json" in names and "bundle/model.onnx" in names
