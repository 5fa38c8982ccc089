"""``rc-demo-registry --family``: train each donkeycar kind and register it as ``dk_<kind>`` version 1.

Each kind is logged in its :data:`converter.demo.family.KINDS` logging style (the three the demo
pilot uses: a bare ``.h5`` artifact, ``mlflow.keras`` exported SavedModel, ``mlflow.tensorflow``
``.keras``) and tagged with :func:`converter.demo.family.edge_tags`, plus ``demo.kind`` (the
donkeycar class) and ``demo.logged_as``. A kind already registered with version 1 is kept (so a
second call only trains what is missing); any other version list is an error (use ``--force``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from converter.demo.registration import log_version, tracking
from converter.demo.seed_store import (
    MARKER,
    SeedError,
    client_for,
    existing_versions,
    experiment_id,
    reset_store,
    sqlite_path,
)

log = logging.getLogger(__name__)


def seed_family(
    tracking_uri: str,
    artifact_root: Path,
    kinds: Sequence[str] | None = None,
    quick: bool = False,
    force: bool = False,
    seed: int = 0,
    on_step: Callable[[str], None] | None = None,
    keep_models: bool = False,
) -> dict[str, Any]:
    """Train and register the family (or the ``kinds`` listed). Returns ``{"seeded": bool, "tracking_uri",
    "artifact_root", "kinds": [{"kind", "name", "donkeycar", "version", "logged_as", "run_id", "source",
    "inputs", "outputs", "metrics", ("model" with keep_models)}], "skipped": [names], "seconds"}``.

    Raises :class:`SeedError` for an unknown kind or a kind registered with other versions than [1].
    """
    from converter.demo import family

    t0 = time.perf_counter()
    step = on_step or (lambda msg: log.info("%s", msg))
    wanted = list(kinds or family.KINDS)
    unknown = [k for k in wanted if k not in family.KINDS]
    if unknown:
        raise SeedError(f"unknown kind(s) {', '.join(unknown)}; known: {', '.join(family.KINDS)}")
    artifact_root = Path(artifact_root).resolve()
    client = client_for(tracking_uri)
    if force:
        for i, k in enumerate(wanted):
            if i == 0 or sqlite_path(tracking_uri) is None:  # a sqlite store is reset once, whole
                reset_store(client, tracking_uri, artifact_root, family.KINDS[k].name)
        client = client_for(tracking_uri)
    todo, skipped = [], []
    for k in wanted:
        name = family.KINDS[k].name
        have = existing_versions(client, name)
        if have == [1]:
            skipped.append(name)
        elif have is None:
            todo.append(family.KINDS[k])
        else:
            raise SeedError(
                f"registry {tracking_uri} already has model {name!r} with versions {have}, not [1]; "
                "re-seed into a fresh store with --force"
            )
    result: dict[str, Any] = {
        "tracking_uri": tracking_uri,
        "artifact_root": str(artifact_root),
        "skipped": skipped,
        "kinds": [],
    }
    if skipped:
        log.info("already registered (kept): %s", ", ".join(skipped))
    if not todo:
        return result | {"seeded": False, "seconds": time.perf_counter() - t0}

    artifact_root.mkdir(parents=True, exist_ok=True)
    (artifact_root / MARKER).write_text("made by rc-demo-registry; --force may delete this folder\n")
    exp_id = experiment_id(client, artifact_root)
    from converter.tf_import import import_tensorflow

    import_tensorflow()
    import mlflow

    step("generating the drive clips")
    data = family.make_family_data(quick=quick, seed=seed)
    with tracking(tracking_uri):
        for kind in todo:
            step(f"{kind.name}: training a {kind.donkeycar} pilot")
            model, metrics = family.train_kind(kind, data, quick=quick, seed=seed)
            client.create_registered_model(
                kind.name,
                description=f"donkeycar {kind.donkeycar} on the synthetic road (rc-demo-registry --family).",
            )
            with mlflow.start_run(experiment_id=exp_id, run_name=f"{kind.name}-v1") as run:
                mlflow.log_params(
                    {
                        "kind": kind.key,
                        "donkeycar": kind.donkeycar,
                        "epochs": int(metrics["epochs"]),
                        "n_train": int(metrics["n_train"]),
                        "batch_size": family.BATCH_SIZE,
                        "seed": seed,
                        "logged_as": kind.logged_as,
                    }
                )
                mlflow.log_metrics(metrics)
                got, source = log_version(client, model, 1, kind.name, style=family.STYLE[kind.logged_as])
            if got != "1":
                raise SeedError(f"registry numbered the new version of {kind.name} {got}, expected 1")
            for key, value in (
                family.edge_tags(kind) | {"demo.kind": kind.donkeycar, "demo.logged_as": kind.logged_as}
            ).items():
                client.set_model_version_tag(kind.name, "1", key, value)
            entry = {
                "kind": kind.key,
                "name": kind.name,
                "donkeycar": kind.donkeycar,
                "version": got,
                "logged_as": kind.logged_as,
                "run_id": run.info.run_id,
                "source": source,
                "inputs": {t.name: tuple(t.shape) for t in model.inputs},
                "outputs": {
                    n: tuple(t.shape) for n, t in zip(model.output_names, model.outputs, strict=True)
                },
                "metrics": metrics,
            }
            if keep_models:
                entry["model"] = model
            result["kinds"].append(entry)
    return result | {"seeded": True, "experiment_id": exp_id, "seconds": time.perf_counter() - t0}


def report(result: dict[str, Any], console: Any) -> None:
    """Print the family table (rich)."""
    from rich.table import Table

    if result["skipped"]:
        console.print(f"already registered in {result['tracking_uri']}: {', '.join(result['skipped'])}")
    if not result["kinds"]:
        return
    table = Table(title=f"donkeycar family in {result['tracking_uri']}")
    for col in ("model", "inputs", "logged as", "train s", "MAE steer", "constant", "shuffled"):
        table.add_column(col)
    for k in result["kinds"]:
        m = k["metrics"]
        table.add_row(
            k["name"],
            "+".join(k["inputs"]),
            k["logged_as"],
            f"{m['train_seconds']:.0f}",
            f"{m['val_mae_steering']:.3f}",
            f"{m['baseline_mae_steering']:.3f}",
            f"{m['shuffled_mae_steering']:.3f}" if "shuffled_mae_steering" in m else "",
        )
    console.print(table)
    console.print(
        "MAE on held-out drive clips; constant = predicting the training mean; input shuffled = the "
        "second input taken from other frames (behaviour: the other lane)"
    )
    console.print(f"seeded in {result['seconds']:.1f} s; artifacts in {result['artifact_root']}")
