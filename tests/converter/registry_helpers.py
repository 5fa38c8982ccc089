"""Register a given Keras model in a fresh sqlite MLflow store, the way a training team would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runtime.manifest import PreprocessSpec

PRE = PreprocessSpec(width=160, height=120).to_dict()


def register(tmp: Path, model: Any, name: str = "m", how: str = "keras-file", tags: dict[str, str] | None = None,
             file_bytes: bytes | None = None) -> str:
    """Returns the tracking URI. ``how``: keras-file | h5-file | tensorflow-flavor | raw (file_bytes as model.keras)."""
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.create_experiment("train", artifact_location=(tmp / "art").as_uri())
    run = client.create_run(exp)
    if how == "tensorflow-flavor":
        from converter.demo.registration import tracking

        # Both URIs, restored after: MLflow's setters also export MLFLOW_*_URI, and a registry URI
        # left from an earlier test would send this registration to another store.
        with tracking(uri), mlflow.start_run(run_id=run.info.run_id):
            mlflow.tensorflow.log_model(model, name="model", registered_model_name=name)
    else:
        suffix = {"keras-file": "model.keras", "h5-file": "model.h5", "raw": "model.keras"}[how]
        local = tmp / "upload" / suffix
        local.parent.mkdir(parents=True)
        if how == "raw":
            local.write_bytes(file_bytes or b"")
        else:
            model.save(local)
        client.log_artifact(run.info.run_id, str(local), artifact_path="model")
        client.create_registered_model(name)
        client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    for k, v in {"edge.preprocess": json.dumps(PRE), **(tags or {})}.items():
        client.set_model_version_tag(name, "1", k, v)
    return uri
