"""Register committed pilot files the ways teams do, and check builds against the old toolchain's outputs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).parent / "fixtures" / "legacy"


def register_file(tmp: Path, files: list[Path], name: str = "pilot", source: str = "folder",
                  preprocess: Mapping[str, object] | None = None, uri: str | None = None) -> str:
    """Log ``files`` as run artifacts under ``model/`` and register a version; returns the tracking URI.

    ``source``: ``folder`` (the version points at model/), ``file`` (at the first file itself),
    ``runs`` (``runs:/<run id>/model``) or ``nested`` (the files sit in model/export/keras/).
    """
    from mlflow import MlflowClient

    uri = uri or f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.create_experiment(f"train-{name}", artifact_location=(tmp / f"art-{name}").as_uri())
    run = client.create_run(exp)
    sub = "model/export/keras" if source == "nested" else "model"
    for f in files:
        client.log_artifact(run.info.run_id, str(f), artifact_path=sub)
    client.create_registered_model(name)
    src = {
        "folder": f"{run.info.artifact_uri}/model",
        "nested": f"{run.info.artifact_uri}/model",
        "file": f"{run.info.artifact_uri}/model/{files[0].name}",
        "runs": f"runs:/{run.info.run_id}/model",
    }[source]
    mv = client.create_model_version(name, src, run_id=run.info.run_id)
    if preprocess is not None:
        client.set_model_version_tag(name, mv.version, "edge.preprocess", json.dumps(preprocess))
    return uri


def fixture_inputs(npz: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(model inputs (N, H, W, 3) float32, {output name: what the old toolchain computed})."""
    d = np.load(npz)
    x = d["pixels"].astype(np.float32) * np.float32(d["scale"])
    return x, {k[len("out/"):]: d[k] for k in d.files if k.startswith("out/")}


def build_errors(bundle: Path, npz: Path) -> dict[str, float]:
    """{format: max abs difference from the old toolchain's outputs} for every CPU build in the bundle."""
    from runtime.backends import open_backend
    from runtime.manifest import load_manifest

    x, want = fixture_inputs(npz)
    manifest = load_manifest(bundle)
    errors = {}
    for b in manifest.builds:
        runner = {"onnx": "onnxruntime", "tflite-fp32": "litert", "tflite-fp16": "litert"}.get(b.format)
        if runner is None:
            continue
        be = open_backend(bundle, runner, b.format)
        worst = 0.0
        for i in range(x.shape[0]):
            got = be.infer(x[i:i + 1])
            worst = max(worst, *(float(np.abs(got[n] - want[n][i:i + 1]).max()) for n in want))
        errors[b.format] = worst
    return errors
