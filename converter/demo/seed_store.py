"""The demo seeders' store: the MLflow client, what a registered model already has, the --force reset.

Shared by every seeder (``seed``: the Keras pilot; ``family_seed``, ``jetracer_seed``,
``perception_seed``), which import it; it imports none of them.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

EXPERIMENT = "rc-training"
MARKER = ".rc-demo-registry"  # written into the artifact root; --force deletes only a root carrying it


class SeedError(RuntimeError):
    """The registry cannot be seeded as asked (the message says why and what to do)."""


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative to the CWD when relative), else None."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    rest = tracking_uri[len(prefix) :].split("?", 1)[0]
    return None if rest in ("", ":memory:") else Path(rest)


def client_for(tracking_uri: str) -> Any:
    """An MlflowClient on ``tracking_uri`` (tracking and registry), the sqlite file's folder made first.
    A seeder creates its own store, but never migrates one an older MLflow wrote (``SeedError``)."""
    from mlflow import MlflowClient

    from converter.tracking_store import StoreError, open_store

    try:
        open_store(tracking_uri, write=True, create=True)
    except StoreError as e:
        raise SeedError(str(e)) from None
    db = sqlite_path(tracking_uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)  # sqlite creates the file, not its folder
    return MlflowClient(tracking_uri, registry_uri=tracking_uri)


def existing_versions(client: Any, name: str) -> list[int] | None:
    """Version numbers of registered model ``name``, or None when it is not registered."""
    logging.getLogger("absl").setLevel(logging.WARNING)  # TensorFlow's "Assets written to" chatter
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as e:
        if e.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    return sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))


def reset_store(client: Any, tracking_uri: str, artifact_root: Path, name: str) -> None:
    """--force: a fresh sqlite store and artifact root, or (server) the registered model deleted."""
    db = sqlite_path(tracking_uri)
    if db is None:
        if existing_versions(client, name) is not None:
            log.info("deleting registered model %s from %s", name, tracking_uri)
            client.delete_registered_model(name)
        return
    if artifact_root.exists() and any(artifact_root.iterdir()) and not (artifact_root / MARKER).exists():
        raise SeedError(
            f"--force: {artifact_root} was not made by rc-demo-registry (no {MARKER} in it); "
            "remove it yourself or pick another --artifact-root"
        )
    shutil.rmtree(artifact_root, ignore_errors=True)
    db.unlink(missing_ok=True)
    log.info("removed %s and %s for a fresh store", db, artifact_root)


def experiment_id(client: Any, artifact_root: Path) -> str:
    """The demo experiment's id (created, or restored when deleted), its artifacts under ``artifact_root``."""
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        return str(client.create_experiment(EXPERIMENT, artifact_location=artifact_root.as_uri()))
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    if exp.artifact_location.rstrip("/") != artifact_root.as_uri().rstrip("/"):
        log.warning(
            "experiment %s keeps its artifacts in %s, not %s",
            EXPERIMENT,
            exp.artifact_location,
            artifact_root,
        )
    return str(exp.experiment_id)
