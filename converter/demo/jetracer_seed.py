"""Register the JetRacer-style PyTorch pilot (:mod:`converter.demo.jetracer`) next to the Keras one.

    python -m converter.demo.jetracer_seed --tracking-uri sqlite:///.demo/mlflow.db --artifact-root .demo/artifacts

One training run, two versions of ``jetracer_pilot``, logged as the seeds' team and MLflow do:

- v1: ``mlflow.pytorch.log_model(model, input_example=...)``: MLflow 3's default, a
  ``torch.export`` program ``data/model.pt2``;
- v2: the same with ``serialization_format="pickle"``: ``data/model.pth``, as MLflow 2.x wrote it.

Both carry ``edge.preprocess`` (160x120 RGB, ImageNet mean/std) and ``edge.outputs``: tensor ``xy``
decoded twice, steering = x * gain + bias (the fitted STEERING_GAIN/BIAS) and throttle = 0.5 * y + 0.5.
Exit 0 when registered (or already there), 2 on registry errors.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from converter.demo.jetracer import (
    INPUT_NAME,
    JETRACER_PREPROCESS,
    OUTPUT_NAME,
    THROTTLE_BIAS,
    THROTTLE_GAIN,
    train_jetracer,
)

log = logging.getLogger(__name__)

NAME = "jetracer_pilot"
EXPERIMENT = "rc-training-jetracer"
LOGGED_AS = {1: "pytorch-pt2", 2: "pytorch-pickle"}


def edge_tags(gain: float, bias: float) -> dict[str, str]:
    """The version tags the converter reads: preprocessing, and the (x, y) point's two decoders."""
    outputs = {OUTPUT_NAME: [
        {"meaning": "steering", "decode": {"kind": "component", "index": 0, "gain": round(gain, 6), "bias": round(bias, 6)}},
        {"meaning": "throttle", "decode": {"kind": "component", "index": 1, "gain": THROTTLE_GAIN, "bias": THROTTLE_BIAS}},
    ]}
    return {"edge.preprocess": json.dumps(JETRACER_PREPROCESS.to_dict()), "edge.outputs": json.dumps(outputs)}


def _pip_requirements() -> list[str]:
    """Pinned from what is installed (MLflow's own inference runs a slow subprocess)."""
    return [f"torch=={importlib.metadata.version('torch').split('+')[0]}"]


def seed_jetracer(tracking_uri: str, artifact_root: Path, name: str = NAME, quick: bool = False,
                  seed: int = 0, trained: tuple[Any, dict[str, float]] | None = None,
                  n_samples: int | None = None, epochs: int | None = None) -> dict[str, Any]:
    """Train (or take ``trained`` = (model, metrics) from :func:`train_jetracer`) and register
    versions 1 (pt2) and 2 (pickle) of ``name``; nothing when they exist.
    Returns {"seeded", "name", "versions": [{"version", "logged_as"}], "metrics", "seconds"}."""
    import numpy as np

    from converter.demo.registration import tracking
    from converter.demo.seed_store import client_for, existing_versions

    t0 = time.perf_counter()
    client = client_for(tracking_uri)  # creates its own store; refuses to migrate an older one
    have = existing_versions(client, name)
    if have is not None and have[:2] == [1, 2]:
        log.info("%s already has versions 1-2 in %s; nothing to do", name, tracking_uri)
        return {"seeded": False, "name": name, "versions": [{"version": str(v)} for v in have], "seconds": 0.0}
    if have is not None:
        raise RuntimeError(f"registry {tracking_uri} has {name!r} with versions {have}, not 1-2; delete it first")
    import mlflow
    import mlflow.pytorch

    model, metrics = trained or train_jetracer(n_samples, epochs, seed=seed, quick=quick)
    gain, bias = metrics["steering_gain"], metrics["steering_bias"]
    artifact_root = Path(artifact_root).resolve()
    artifact_root.mkdir(parents=True, exist_ok=True)
    exp = client.get_experiment_by_name(EXPERIMENT)
    exp_id = exp.experiment_id if exp is not None else client.create_experiment(
        EXPERIMENT, artifact_location=(artifact_root / "jetracer").as_uri())
    example = np.zeros((1, 3, *JETRACER_PREPROCESS.input_hw), np.float32)
    versions = []
    with tracking(tracking_uri), mlflow.start_run(experiment_id=exp_id, run_name="jetracer-road-following") as run:
        mlflow.log_params({"architecture": "resnet18", "width": int(metrics["width"]), "input": INPUT_NAME,
                           "n_samples": int(metrics["n_samples"]), "epochs": int(metrics["epochs"]), "seed": seed})
        mlflow.log_metrics(metrics)
        for version, fmt in ((1, "pt2"), (2, "pickle")):
            with contextlib.redirect_stdout(io.StringIO()):
                info = mlflow.pytorch.log_model(
                    model, name=f"model_{fmt}", serialization_format=fmt, input_example=example,
                    registered_model_name=name, pip_requirements=_pip_requirements(),
                )
            got = str(info.registered_model_version)
            if got != str(version):
                raise RuntimeError(f"registry numbered the new version {got}, expected {version}")
            versions.append({"version": got, "logged_as": LOGGED_AS[version], "run_id": run.info.run_id})
    for v in versions:
        for key, value in (edge_tags(gain, bias) | {"demo.logged_as": v["logged_as"]}).items():
            client.set_model_version_tag(name, v["version"], key, value)
    return {"seeded": True, "name": name, "versions": versions, "metrics": metrics,
            "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    """``python -m converter.demo.jetracer_seed``: train the JetRacer-style PyTorch pilot and register it
    (v1 pt2, v2 pickle) in the demo registry. Returns 0 when seeded (or already seeded), 2 on an
    MLflow, file or training error (one line on stderr).
    """
    p = argparse.ArgumentParser(prog="python -m converter.demo.jetracer_seed", description=__doc__.splitlines()[0])
    p.add_argument("--tracking-uri", default="sqlite:///.demo/mlflow.db")
    p.add_argument("--artifact-root", type=Path, default=Path(".demo/artifacts"))
    p.add_argument("--name", default=NAME)
    p.add_argument("--quick", action="store_true", help="train briefly (tests)")
    p.add_argument("--samples", type=int, help="training frames (default 800; --quick 256)")
    p.add_argument("--epochs", type=int, help="training epochs (default 4; --quick 2)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from mlflow.exceptions import MlflowException

    try:
        result = seed_jetracer(args.tracking_uri, args.artifact_root, args.name, quick=args.quick, seed=args.seed,
                               n_samples=args.samples, epochs=args.epochs)
    except (MlflowException, OSError, RuntimeError) as e:
        log.error("error: %s", str(e).splitlines()[0] if str(e) else type(e).__name__)
        return 2
    if result["seeded"]:
        m = result["metrics"]
        log.info("%s v1 (pt2), v2 (pickle) registered in %.0f s: MAE x %.3f (baseline %.3f), steering = x * %.3f %+.3f",
                 result["name"], result["seconds"], m["val_mae_x"], m["baseline_mae_x"], m["steering_gain"],
                 m["steering_bias"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
