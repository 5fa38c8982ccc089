"""Register the seed team's perception models as that team does (seed 001): ``mlflow.pytorch``.

    python -m converter.demo.perception_seed --tracking-uri sqlite:///.demo/mlflow.db --artifact-root .demo/artifacts

Experiment ``autonomous_vehicle``, one run per ``task_type``, params ``task_type``, ``common_epochs``,
``common_batch_size``, ``common_lr``, ``common_weight_decay``, ``segmentation_model_name`` /
``detection_model_name``; per-epoch metrics (``step`` = epoch) ``train_loss_<task>``,
``val_loss_<task>``, ``miou_segmentation``, ``pixel_acc_segmentation``, ``precision_50_detection``,
``recall_50_detection``, ``f1_50_detection`` (and ``fp_rate_empty_detection``: the share of cone-free
frames with a detection). Registered:

- ``lane_segmenter`` v1: ``mlflow.pytorch.log_model(model, input_example=...)``, MLflow 3's default
  pt2 (a ``torch.export`` program); v2: the same model with ``serialization_format="pickle"``;
- ``cone_detector`` v1: ``serialization_format="pickle"`` (``data/model.pth``), as teams log detectors.

MLflow 3.17's pt2 needs a signature of ``TensorSpec`` s and cannot infer one from a dict or a list of
dicts ("Unsupported signature type for the selected serialization format"): with no signature it
refuses both models. The segmenter is therefore logged with an explicit one (input ``image``
(-1, 3, 72, 96), output ``out`` (-1, 2, 72, 96)). (With a hand-written signature MLflow's pt2 does take
the detector here: torch 2.13's export keeps its data-dependent box count.)

Tags on every version: ``edge.preprocess`` (the preprocessing JSON), ``edge.classes`` (JSON list),
``edge.drivable`` (segmenter: JSON list of drivable classes), ``demo.logged_as``, ``demo.task``.
Idempotent: a model registered with its versions is kept; exit 0 when registered (or already there),
2 on registry, file or training errors (one line on stderr).
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

EXPERIMENT = "autonomous_vehicle"  # the seed's experiment name
SEGMENTER = "lane_segmenter"
DETECTOR = "cone_detector"
VERSIONS = {SEGMENTER: [1, 2], DETECTOR: [1]}
LOGGED_AS = {(SEGMENTER, 1): "pytorch-pt2", (SEGMENTER, 2): "pytorch-pickle", (DETECTOR, 1): "pytorch-pickle"}
SEGMENTATION_METRICS = {"train_loss": "train_loss_segmentation", "val_loss": "val_loss_segmentation",
                        "miou": "miou_segmentation", "pixel_acc": "pixel_acc_segmentation"}
DETECTION_METRICS = {"train_loss": "train_loss_detection", "val_loss": "val_loss_detection",
                     "precision": "precision_50_detection", "recall": "recall_50_detection",
                     "f1": "f1_50_detection", "fp_rate_empty": "fp_rate_empty_detection"}


def segmenter_tags() -> dict[str, str]:
    """The version tags the converter reads for the segmenter: preprocessing, classes, drivable classes."""
    from converter.demo.perception_data import DRIVABLE, ROAD_CLASSES
    from converter.demo.segmenter import SEGMENTER_PREPROCESS

    return {"edge.preprocess": json.dumps(SEGMENTER_PREPROCESS.to_dict()), "edge.classes": json.dumps(list(ROAD_CLASSES)),
            "edge.drivable": json.dumps(list(DRIVABLE)), "demo.task": "segmentation"}


def detector_tags() -> dict[str, str]:
    """The version tags the converter reads for the detector: preprocessing and class names (label i = classes[i])."""
    from converter.demo.detector import DETECTOR_PREPROCESS
    from converter.demo.perception_data import CONE_CLASSES

    return {"edge.preprocess": json.dumps(DETECTOR_PREPROCESS.to_dict()), "edge.classes": json.dumps(list(CONE_CLASSES)),
            "demo.task": "detection"}


def _pip_requirements() -> list[str]:
    """Pinned from what is installed (MLflow's own inference runs a slow subprocess)."""
    return [f"torch=={importlib.metadata.version('torch').split('+')[0]}"]


def _log_history(history: list[dict[str, float]], names: dict[str, str]) -> None:
    import mlflow

    for epoch, row in enumerate(history):
        mlflow.log_metrics({names[k]: float(v) for k, v in row.items() if k in names}, step=epoch)


def _segmenter_signature() -> Any:
    """Input ``image`` (-1, 3, H, W) float32 -> ``out`` (-1, 2, H, W): pt2 cannot infer it from a dict output."""
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    from converter.demo.perception_data import ROAD_CLASSES
    from converter.demo.segmenter import OUTPUT_NAME, SEGMENTER_PREPROCESS

    hw = (SEGMENTER_PREPROCESS.height, SEGMENTER_PREPROCESS.width)
    f32 = np.dtype("float32")
    return ModelSignature(inputs=Schema([TensorSpec(f32, (-1, 3, *hw), "image")]),
                          outputs=Schema([TensorSpec(f32, (-1, len(ROAD_CLASSES), *hw), OUTPUT_NAME)]))


def _log_model(model: Any, artifact: str, fmt: str, name: str, example: np.ndarray | None,
               signature: Any = None) -> str:
    """``mlflow.pytorch.log_model`` inside the active run -> the registered version (as a string)."""
    import mlflow.pytorch

    with contextlib.redirect_stdout(io.StringIO()):
        info = mlflow.pytorch.log_model(model, name=artifact, serialization_format=fmt, input_example=example,
                                        signature=signature, registered_model_name=name,
                                        pip_requirements=_pip_requirements())
    return str(info.registered_model_version)


def _register_segmenter(client: Any, exp_id: str, run: Any, seed: int) -> list[dict[str, str]]:
    import mlflow

    from converter.demo.segmenter import MODEL_NAME, SEGMENTER_PREPROCESS

    cfg = run.config
    example = np.zeros((1, 3, SEGMENTER_PREPROCESS.height, SEGMENTER_PREPROCESS.width), np.float32)
    versions = []
    with mlflow.start_run(experiment_id=exp_id, run_name="segmentation-lane") as active:
        mlflow.log_params({"task_type": "segmentation", "common_epochs": cfg.epochs, "common_batch_size": cfg.batch_size,
                           "common_lr": cfg.lr, "common_weight_decay": cfg.weight_decay,
                           "segmentation_model_name": MODEL_NAME, "width": cfg.width, "samples": cfg.samples,
                           "seed": seed})
        _log_history(run.history, SEGMENTATION_METRICS)
        mlflow.log_metrics({"iou_road_segmentation": run.metrics["iou_road"],
                            "iou_background_segmentation": run.metrics["iou_background"],
                            "train_seconds_segmentation": run.metrics["train_seconds"]})
        for version, fmt in ((1, "pt2"), (2, "pickle")):
            got = _log_model(run.model, f"segmentation_model_{fmt}", fmt, SEGMENTER, example, _segmenter_signature())
            _expect(got, version, SEGMENTER)
            versions.append({"name": SEGMENTER, "version": got, "run_id": active.info.run_id})
    return versions


def _register_detector(client: Any, exp_id: str, run: Any, seed: int) -> list[dict[str, str]]:
    import mlflow

    from converter.demo.detector import MODEL_NAME

    cfg = run.config
    with mlflow.start_run(experiment_id=exp_id, run_name="detection-cone") as active:
        mlflow.log_params({"task_type": "detection", "common_epochs": cfg.epochs, "common_batch_size": cfg.batch_size,
                           "common_lr": cfg.lr, "common_weight_decay": cfg.weight_decay,
                           "detection_model_name": MODEL_NAME, "width": cfg.width, "samples": cfg.samples,
                           "score_threshold": cfg.score_threshold, "max_detections": cfg.max_detections, "seed": seed})
        _log_history(run.history, DETECTION_METRICS)
        mlflow.log_metrics({"mean_iou_50_detection": run.metrics["mean_iou"],
                            "train_seconds_detection": run.metrics["train_seconds"]})
        # pickle, and no input example: MLflow would run the model to infer a signature, and a list of
        # dicts has none it can write (the seed team logs it bare, too).
        got = _log_model(run.model, "detection_model", "pickle", DETECTOR, None)
        _expect(got, 1, DETECTOR)
    return [{"name": DETECTOR, "version": got, "run_id": active.info.run_id}]


def _expect(got: str, version: int, name: str) -> None:
    if got != str(version):
        raise RuntimeError(f"registry numbered the new version of {name} {got}, expected {version}")


def seed_perception(tracking_uri: str, artifact_root: Path, quick: bool = False, seed: int = 0,
                    models: Sequence[str] = (SEGMENTER, DETECTOR), trained: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train (or take ``trained[name]``: a :class:`~converter.demo.segmenter.SegmenterRun` /
    :class:`~converter.demo.detector.DetectorRun`) and register each of ``models`` not yet registered.

    Returns ``{"seeded": [names], "skipped": [names], "versions": [{"name", "version", "run_id",
    "logged_as"}], "metrics": {name: final metrics}, "seconds"}``. Raises RuntimeError when a model is
    registered with other versions than it should have (delete it, or use a fresh store).
    """
    from converter.demo.registration import tracking
    from converter.demo.seed_store import client_for, existing_versions

    t0 = time.perf_counter()
    client = client_for(tracking_uri)  # creates its own store; refuses to migrate an older one
    todo, skipped = [], []
    for name in models:
        have = existing_versions(client, name)
        if have == VERSIONS[name]:
            skipped.append(name)
        elif have is None:
            todo.append(name)
        else:
            raise RuntimeError(f"registry {tracking_uri} has {name!r} with versions {have}, not {VERSIONS[name]}; "
                               "delete it first or use a fresh store")
    result: dict[str, Any] = {"seeded": todo, "skipped": skipped, "versions": [], "metrics": {}}
    if skipped:
        log.info("%s already registered in %s; kept", ", ".join(skipped), tracking_uri)
    if not todo:
        return result | {"seconds": 0.0}
    artifact_root = Path(artifact_root).resolve()
    artifact_root.mkdir(parents=True, exist_ok=True)
    exp = client.get_experiment_by_name(EXPERIMENT)
    exp_id = exp.experiment_id if exp is not None else client.create_experiment(
        EXPERIMENT, artifact_location=(artifact_root / "perception").as_uri())
    trained = trained or {}
    for name in todo:
        if name == SEGMENTER:
            from converter.demo.segmenter import train_segmenter

            run = trained.get(name) or train_segmenter(seed=seed, quick=quick)
            with tracking(tracking_uri):
                versions = _register_segmenter(client, exp_id, run, seed)
            tags = segmenter_tags()
        else:
            from converter.demo.detector import train_detector

            run = trained.get(name) or train_detector(seed=seed, quick=quick)
            with tracking(tracking_uri):
                versions = _register_detector(client, exp_id, run, seed)
            tags = detector_tags()
        for v in versions:
            v["logged_as"] = LOGGED_AS[(name, int(v["version"]))]
            for key, value in (tags | {"demo.logged_as": v["logged_as"]}).items():
                client.set_model_version_tag(name, v["version"], key, value)
        result["versions"].extend(versions)
        result["metrics"][name] = dict(run.metrics)
    return result | {"seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    """``python -m converter.demo.perception_seed``: train the lane segmenter and the cone detector and
    register them (``lane_segmenter`` v1 pt2 + v2 pickle, ``cone_detector`` v1 pickle). Returns 0 when
    registered (or already there), 2 on an MLflow, file or training error (one line on stderr).
    """
    p = argparse.ArgumentParser(prog="python -m converter.demo.perception_seed", description=__doc__.splitlines()[0])
    p.add_argument("--tracking-uri", default="sqlite:///.demo/mlflow.db")
    p.add_argument("--artifact-root", type=Path, default=Path(".demo/artifacts"))
    p.add_argument("--quick", action="store_true", help="train briefly (tests): ~30 s per model")
    p.add_argument("--only", choices=(SEGMENTER, DETECTOR), help="register only this model")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from mlflow.exceptions import MlflowException

    try:
        result = seed_perception(args.tracking_uri, args.artifact_root, quick=args.quick, seed=args.seed,
                                 models=[args.only] if args.only else (SEGMENTER, DETECTOR))
    except (MlflowException, OSError, RuntimeError) as e:
        log.error("error: %s", str(e).splitlines()[0] if str(e) else type(e).__name__)
        return 2
    m = result["metrics"]
    if SEGMENTER in m:
        log.info("%s v1 (pt2), v2 (pickle) registered: held-out mIoU %.3f, pixel accuracy %.3f (trained in %.0f s)",
                 SEGMENTER, m[SEGMENTER]["miou"], m[SEGMENTER]["pixel_acc"], m[SEGMENTER]["train_seconds"])
    if DETECTOR in m:
        d = m[DETECTOR]
        log.info("%s v1 (pickle) registered: held-out P %.3f R %.3f F1 %.3f at IoU 0.5, fires on %.1f%% of empty "
                 "frames (trained in %.0f s)", DETECTOR, d["precision"], d["recall"], d["f1"],
                 100 * d["fp_rate_empty"], d["train_seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
