"""Seed a local MLflow registry with the demo pilot: three versions, each logged a different way.

- v1: a bare ``.h5`` logged with ``mlflow.log_artifact(..., artifact_path="model")`` and registered
  with ``MlflowClient.create_model_version(source=<run artifact URI of model/>)`` (how the training
  team in the seeds did it);
- v2: ``mlflow.keras.log_model(..., save_exported_model=True)``: an exported SavedModel, no Keras
  file (the ``production`` alias points here);
- v3: ``mlflow.tensorflow.log_model(...)``: ``data/model.keras``; the best-trained snapshot.

The three are snapshots of one training run (after more and more epochs), so each is a real,
learned model. Every version carries the ``edge.preprocess`` and ``edge.outputs`` tags the
converter reads. TensorFlow and MLflow are imported lazily: the "already seeded" path is quick.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from converter.demo import DEMO_PREPROCESS
from converter.demo.model import build_pilot
from converter.demo.registration import log_version, tracking
from converter.demo.seed_store import (
    MARKER,
    SeedError,
    client_for,
    existing_versions,
    experiment_id,
    reset_store,
)

log = logging.getLogger(__name__)

ALIAS = "production"
ALIAS_VERSION = 2
LOGGED_AS = {1: "artifact-h5", 2: "keras-savedmodel", 3: "tensorflow-keras"}
SCHEDULE = {False: (2, 5, 10), True: (1, 3, 6)}  # cumulative epochs at v1, v2, v3 (normal, quick)
DEFAULT_TRACKING_URI = "sqlite:///.demo/mlflow.db"
DEFAULT_ARTIFACT_ROOT = ".demo/artifacts"


def edge_tags(logged_as: str = "") -> dict[str, str]:
    """The model-version tags the converter reads: preprocessing and output meanings.

    The outputs tag names the outputs as the logged artifact names them: the keras flavor's
    exported SavedModel calls them output_0, output_1 (by position), the Keras files by name.
    """
    outputs = ["steering", "throttle"]
    names = [f"output_{i}" for i in range(len(outputs))] if logged_as == LOGGED_AS[2] else outputs
    return {
        "edge.preprocess": json.dumps(DEMO_PREPROCESS.to_dict()),
        "edge.outputs": json.dumps(dict(zip(names, outputs, strict=True))),
    }


def seed_registry(
    tracking_uri: str,
    artifact_root: Path,
    name: str = "rc_pilot",
    quick: bool = False,
    force: bool = False,
    seed: int = 0,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Register versions 1, 2 and 3 of ``name`` (see module doc); alias ``production`` -> 2.

    Returns ``{"seeded": bool, "name", "tracking_uri", "artifact_root", "experiment_id",
    "versions": [{"version", "logged_as", "run_id", "source", "epochs", "metrics"}], "aliases",
    "seconds"}``. ``seeded`` is False (and ``versions`` only lists numbers) when the model already
    had versions 1-3. Raises :class:`SeedError` when it exists in another shape (use ``force``).
    """
    t0 = time.perf_counter()
    step = on_step or (lambda msg: log.info("%s", msg))
    artifact_root = Path(artifact_root).resolve()
    client = client_for(tracking_uri)
    if force:
        reset_store(client, tracking_uri, artifact_root, name)
        client = client_for(tracking_uri)
    have = existing_versions(client, name)
    result: dict[str, Any] = {"name": name, "tracking_uri": tracking_uri, "artifact_root": str(artifact_root)}
    if have == [1, 2, 3]:
        log.info(
            "registry %s already has %s versions 1-3; nothing to do (--force re-seeds)", tracking_uri, name
        )
        return result | {
            "seeded": False,
            "versions": [{"version": str(v)} for v in have],
            "seconds": time.perf_counter() - t0,
        }
    if have is not None:
        raise SeedError(
            f"registry {tracking_uri} already has model {name!r} with versions {have}, not 1-3; "
            "re-seed into a fresh store with --force (or pick another --name)"
        )

    artifact_root.mkdir(parents=True, exist_ok=True)
    (artifact_root / MARKER).write_text("made by rc-demo-registry; --force may delete this folder\n")
    exp_id = experiment_id(client, artifact_root)

    from converter.tf_import import import_tensorflow

    import_tensorflow()  # without its native start-up chatter
    import keras
    import mlflow

    from converter.demo import train

    keras.utils.set_random_seed(seed)
    n_samples = train.QUICK_SAMPLES if quick else train.DEFAULT_SAMPLES
    step(f"generating {n_samples} training frames")
    data = train.make_data(n_samples, seed)
    model = build_pilot()
    train.compile_pilot(model)
    client.create_registered_model(name, description="Demo pilot on the synthetic track (rc-demo-registry).")
    versions, done_epochs = [], 0
    with tracking(tracking_uri):
        for version, epochs in zip((1, 2, 3), SCHEDULE[quick], strict=True):
            step(f"v{version}: training to epoch {epochs}, logging as {LOGGED_AS[version]}")
            seconds = train.fit(model, data, epochs - done_epochs, seed=seed + version)
            done_epochs = epochs
            metrics = train.evaluate(model, data)
            with mlflow.start_run(experiment_id=exp_id, run_name=f"demo-pilot-v{version}") as run:
                mlflow.log_params(
                    {
                        "variant": "pilot",
                        "n_samples": n_samples,
                        "epochs": epochs,
                        "batch_size": train.BATCH_SIZE,
                        "seed": seed,
                        "logged_as": LOGGED_AS[version],
                    }
                )
                mlflow.log_metrics(metrics | {"train_seconds": seconds})
                got, source = log_version(client, model, version, name)
            if got != str(version):
                raise SeedError(f"registry numbered the new version {got}, expected {version}")
            versions.append(
                {
                    "version": got,
                    "logged_as": LOGGED_AS[version],
                    "run_id": run.info.run_id,
                    "source": source,
                    "epochs": epochs,
                    "metrics": metrics,
                }
            )
    step("tagging versions and setting the production alias")
    for v in versions:
        for key, value in (edge_tags(v["logged_as"]) | {"demo.logged_as": v["logged_as"]}).items():
            client.set_model_version_tag(name, v["version"], key, value)
    client.set_registered_model_alias(name, ALIAS, str(ALIAS_VERSION))
    return result | {
        "seeded": True,
        "experiment_id": exp_id,
        "versions": versions,
        "aliases": {ALIAS: str(ALIAS_VERSION)},
        "seconds": time.perf_counter() - t0,
    }


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="rc-demo-registry",
        description="Seed a local MLflow registry with the demo pilot (versions 1-3, alias production -> 2).",
    )
    p.add_argument(
        "--tracking-uri", default=DEFAULT_TRACKING_URI, help="MLflow tracking URI (default: %(default)s)"
    )
    p.add_argument(
        "--artifact-root",
        type=Path,
        default=Path(DEFAULT_ARTIFACT_ROOT),
        help="where the rc-training experiment stores artifacts (default: %(default)s)",
    )
    p.add_argument("--name", default="rc_pilot", help="registered model name (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="train briefly (seconds; for tests)")
    p.add_argument("--force", action="store_true", help="re-seed into a fresh store even if already seeded")
    p.add_argument(
        "--media",
        type=Path,
        metavar="DIR",
        help="also write a demo drive: DIR/drive.mp4, DIR/drive_frames/, DIR/drive_labels.csv",
    )
    p.add_argument(
        "--family",
        action="store_true",
        help="instead: train one donkeycar pilot of each kind and register them as dk_<kind> (version 1)",
    )
    p.add_argument("--kinds", help="with --family: a comma-separated subset, e.g. linear,imu (default: all)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = p.parse_args(argv)
    if args.kinds and not args.family:
        p.error("--kinds goes with --family")
    return args


def main(argv: list[str] | None = None) -> int:
    """``rc-demo-registry``: exit 0 when seeded (or already seeded), 2 on bad input or registry errors."""
    args = _parse(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported: C++ info noise
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from rich.console import Console
    from rich.logging import RichHandler
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
    logging.getLogger("absl").setLevel(logging.WARNING)  # TensorFlow's "Assets written to" chatter
    from mlflow.exceptions import MlflowException

    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("opening the registry", total=None)
            if args.family:
                from converter.demo.family_seed import seed_family

                kinds = [k.strip() for k in args.kinds.split(",") if k.strip()] if args.kinds else None
                result = seed_family(
                    args.tracking_uri,
                    args.artifact_root,
                    kinds,
                    quick=args.quick,
                    force=args.force,
                    seed=args.seed,
                    on_step=lambda msg: progress.update(task, description=msg),
                )
            else:
                result = seed_registry(
                    args.tracking_uri,
                    args.artifact_root,
                    args.name,
                    quick=args.quick,
                    force=args.force,
                    seed=args.seed,
                    on_step=lambda msg: progress.update(task, description=msg),
                )
            if args.media is not None:
                from converter.demo.media import write_drive_media

                progress.update(task, description=f"writing the demo drive to {args.media}")
                write_drive_media(args.media)
    except (SeedError, MlflowException, OSError) as e:
        console.print(f"[red]error:[/] {str(e).splitlines()[0] if str(e) else type(e).__name__}")
        return 2
    if args.family:
        from converter.demo.family_seed import report

        report(result, console)
    else:
        _report(result, console)
    return 0


def _report(result: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    if not result["seeded"]:
        console.print(
            f"{result['name']} already has versions 1-3 in {result['tracking_uri']} (use --force to re-seed)"
        )
        return
    table = Table(title=f"{result['name']} in {result['tracking_uri']}")
    for col in ("version", "logged as", "epochs", "MAE steer", "MAE throttle", "baseline"):
        table.add_column(col)
    for v in result["versions"]:
        m = v["metrics"]
        alias = "*" if v["version"] == str(ALIAS_VERSION) else ""
        table.add_row(
            v["version"] + alias,
            v["logged_as"],
            str(v["epochs"]),
            f"{m['val_mae_steering']:.3f}",
            f"{m['val_mae_throttle']:.3f}",
            f"{m['baseline_mae_steering']:.2f}/{m['baseline_mae_throttle']:.2f}",
        )
    console.print(table)
    console.print(f"* alias {ALIAS}; baseline = MAE of predicting the mean (steering/throttle)")
    console.print(f"seeded in {result['seconds']:.1f} s; artifacts in {result['artifact_root']}")


if __name__ == "__main__":
    sys.exit(main())
