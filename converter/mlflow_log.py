"""Log a conversion back to MLflow: a run in ``edge-conversion`` and tags on the model version.

Also the shared helpers benchmarks use to log their own runs (experiment lookup, artifact root).
"""

from __future__ import annotations

import contextlib
import io
import logging
import platform
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from converter.registry import ModelVersionRef, Registry
from converter.summary import Summary
from converter.task_parity import task_metrics
from runtime import formats
from runtime.manifest import BuildEntry, Manifest, sha256_file
from runtime.manifest.signature import read_signature

log = logging.getLogger(__name__)

EXPERIMENT = "edge-conversion"
MANIFEST_SHA_TAG = "edge.manifest_sha256"  # which bundle a run logged: cache hits check it
SIGNED_BY_TAG = "edge.conversion_signed_by"  # signer key id (sha256:...); edge.conv*: not in the cache key


def local_artifact_root(tracking_uri: str) -> str | None:
    """For a local sqlite store keep artifacts beside the database, not in the current directory."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///") :])
        return (db.resolve().parent / "artifacts").as_uri()
    return None


def experiment_id(client: Any, name: str, tracking_uri: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    root = local_artifact_root(tracking_uri)
    location = f"{root}/{name}" if root else None
    return str(client.create_experiment(name, artifact_location=location))


def flat_params(prefix: str, d: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            out.update(flat_params(key, v))
        else:
            out[key] = str(v)[:500]
    return out


@contextlib.contextmanager
def _stdout_to_log() -> Iterator[None]:
    """MLflow prints "View run … at: URL" on stdout for every run it ends on a server; stdout is
    ours (``--json``), so those lines go to the log."""
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            yield
    finally:
        for line in buf.getvalue().splitlines():
            log.info("%s", line)


def log_conversion(registry: Registry, ref: ModelVersionRef, manifest: Manifest, summary: Summary, bundle: Path) -> str:
    """See :func:`_log_conversion`; MLflow's stdout banners go to the log."""
    with _stdout_to_log():
        return _log_conversion(registry, ref, manifest, summary, bundle)


def _log_conversion(registry: Registry, ref: ModelVersionRef, manifest: Manifest, summary: Summary,
                    bundle: Path) -> str:
    """Log the conversion as a parent run (the bundle, the source, the comparison table, a
    description that says which builds passed) with one child run per build (format, precision,
    runner; its error, size and task figures), so MLflow's compare view and parallel-coordinates
    plot line the builds up. Returns the parent's run id. Raises on MLflow errors (the caller
    reports them; the bundle stays)."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.utils.time import get_current_time_millis

    client = registry.client
    exp = experiment_id(client, EXPERIMENT, registry.tracking_uri)
    # A signed bundle's manifest.json.sig (signature and public key) goes up with bundle/ below.
    signature = read_signature(bundle)
    signed = {SIGNED_BY_TAG: signature["key_id"]} if signature else {}
    built = [b.format for b in manifest.builds]
    # Figures come from the manifest, i.e. the bundle being logged (also on a cache hit); build
    # time only from what this run built.
    built_s = {o.format: o.seconds for o in summary.outcomes if o.status == "built"}
    rows = [_build_row(b, built_s.get(b.format)) for b in manifest.builds]
    run = client.create_run(
        exp,
        run_name=f"{ref.name}-v{ref.version}",
        start_time=summary.started_ms,  # the conversion's start, so the run's duration is the conversion's
        tags={"edge.model_name": ref.name, "edge.model_version": ref.version, "edge.model_version_uri": ref.uri,
              MANIFEST_SHA_TAG: sha256_file(bundle / "manifest.json"), **signed, **provenance(registry, ref),
              "mlflow.note.content": describe_conversion(ref, manifest, rows)},
    )
    run_id = run.info.run_id
    children: list[str] = []
    try:
        params = {
            "source.model": ref.name,
            "source.version": ref.version,
            "source.uri": ref.uri,
            "source.run_id": ref.run_id or "",
            "formats": ",".join(o.format for o in summary.outcomes),
            "converter_version": manifest.converter_version,
            **flat_params("preprocess", manifest.preprocess.to_dict()),
        }
        now = get_current_time_millis()
        # The parent keeps one figure per build (its largest error) to sort runs by; the rest is the children's.
        headline = [Metric(f"{b.format}.max_abs", float(b.parity["max_abs"]), now, 0)
                    for b in manifest.builds if b.parity.get("max_abs") is not None]
        client.log_batch(run_id, metrics=headline, params=[Param(k, v) for k, v in params.items()],
                         tags=[RunTag("edge.formats", ",".join(built))])
        for b, row in zip(manifest.builds, rows, strict=True):
            children.append(_log_build(client, exp, run_id, ref, b, row, now))
        if rows:
            client.log_table(run_id, data={k: [r.get(k) for r in rows] for k in _TABLE_COLUMNS},
                             artifact_file="builds.json")
        client.log_artifacts(run_id, str(bundle), artifact_path="bundle")
        client.set_terminated(run_id, "FINISHED")
    except Exception:
        for child in children:
            client.set_terminated(child, "FAILED")
        client.set_terminated(run_id, "FAILED")
        raise
    registry.set_version_tags(ref, {"edge.conversion_run_id": run_id, "edge.formats": ",".join(built),
                                    SIGNED_BY_TAG: signed.get(SIGNED_BY_TAG, "unsigned")})
    return run_id


_TABLE_COLUMNS = ("format", "precision", "runner", "bytes", "max_abs", "mean_abs", "tolerance", "task", "int8_cost",
                  "build_s")


def _build_row(b: BuildEntry, build_s: float | None) -> dict[str, Any]:
    """One build as a row of the comparison: what it is, its figures against the source."""
    fmt = formats.get(b.format)
    task = b.parity.get("task") or {}
    cost = b.extra.get("int8_cost", {})
    return {"format": b.format, "precision": fmt.precision, "runner": fmt.runner, "bytes": b.bytes,
            "max_abs": b.parity.get("max_abs"), "mean_abs": b.parity.get("mean_abs"), "tolerance": fmt.tolerance,
            "task": headline_of(task) or "", "int8_cost": headline_of(cost) if isinstance(cost, dict) else "",
            "build_s": None if build_s is None else round(build_s, 2)}


def _log_build(client: Any, exp: str, parent: str, ref: ModelVersionRef, b: BuildEntry, row: dict[str, Any],
               now: int) -> str:
    from mlflow.entities import Metric, Param

    # the child spans the build itself (a carried-over build: just its logging), not the conversion
    start = now - int(row["build_s"] * 1000) if row["build_s"] else now
    child = client.create_run(exp, run_name=b.format, start_time=start,
                              tags={"mlflow.parentRunId": parent, "edge.model_name": ref.name,
                                    "edge.model_version": ref.version, "edge.format": b.format})
    cid = child.info.run_id
    vals = {"max_abs": b.parity.get("max_abs"), "mean_abs": b.parity.get("mean_abs"), "bytes": b.bytes,
            "build_s": row["build_s"], "tolerance": row["tolerance"]}
    metrics = [Metric(k, float(v), now, 0) for k, v in vals.items() if v is not None]
    for out, errs in b.parity.get("per_output", {}).items():
        metrics += [Metric(f"{out}.{k}", float(v), now, 0) for k, v in errs.items()]
    # perception builds: the task figures they were judged by (miou_segmentation, f1_50_detection...)
    metrics += [Metric(k.split(".", 1)[-1] if k.startswith(b.format + ".") else k, v, now, 0)
                for k, v in task_metrics(b.format, b.parity.get("task") or {}).items()]
    for k, v in flat_params("int8", b.extra.get("int8_cost", {})).items():
        try:
            metrics.append(Metric(k, float(v), now, 0))
        except ValueError:
            continue  # a non-numeric note in the cost record
    params = {"format": b.format, "precision": row["precision"], "runner": row["runner"], "file": b.file,
              **flat_params("toolchain", b.toolchain)}
    client.log_batch(cid, metrics=metrics, params=[Param(k, v) for k, v in params.items()])
    client.set_terminated(cid, "FINISHED")
    return str(cid)


def headline_of(figures: dict[str, Any]) -> str:
    """A task or INT8-cost record as one short text (``miou=0.97 f1=1``): numbers only, 3 digits."""
    parts = []
    for k, v in figures.items():
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        parts.append(f"{k}={v:.3g}")
    return " ".join(parts[:6])


def describe_conversion(ref: ModelVersionRef, manifest: Manifest, rows: list[dict[str, Any]]) -> str:
    """The run's description (markdown, shown on the run's page): the model version, a table of
    the builds against their tolerances, and what was not built and why."""
    lines = [f"Edge bundle of **{ref.name} v{ref.version}** ([model version](#/models/{ref.name}/versions/"
             f"{ref.version}); `{ref.uri}`), {len(rows)} build(s), each checked against the source model.", "",
             "| build | precision | runner | size | max abs error | tolerance | task figures |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        err = "" if r["max_abs"] is None else f"{r['max_abs']:.3g}"
        lines.append(f"| {r['format']} | {r['precision']} | {r['runner']} | {r['bytes'] / 1e6:.2f} MB | {err} | "
                     f"{r['tolerance']:g} | {r['task'] or '-'} |")
    for note in manifest.not_built:
        lines.append(f"\nNot built: **{note.get('format')}**: {note.get('reason', '')}")
    return "\n".join(lines)


def provenance(registry: Registry, ref: ModelVersionRef) -> dict[str, str]:
    """Where the run came from: this machine, the converter's own git commit when it runs from a
    checkout, and the commit the model's training run recorded (``mlflow.source.git.commit``)."""
    tags = {"mlflow.source.name": "convert-model", "mlflow.source.type": "LOCAL", "edge.machine": f"{platform.node()} ({platform.machine()}, {platform.system()} {platform.release()}, "
                            f"Python {platform.python_version()})"}
    commit = converter_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    if ref.run_id:
        try:
            trained = registry.client.get_run(ref.run_id).data.tags.get("mlflow.source.git.commit")
        except Exception as e:  # provenance is best effort: the conversion is logged without it
            log.debug("could not read the source run %s: %s", ref.run_id, e)
            trained = None
        if trained:
            tags["edge.source_commit"] = str(trained)
    return tags


def converter_commit() -> str | None:
    """The git commit of the converter's own checkout (plus ``-dirty`` with local changes), or None
    when it is not run from a git checkout."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        log.debug("no converter commit: %s", e)
        return None
    return f"{head}-dirty" if dirty else head


def build_runs(client: Any, parent_run_id: str) -> dict[str, Any]:
    """The child runs of a conversion (or benchmark) run, by format (``edge.format`` tag)."""
    run = client.get_run(parent_run_id)
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'",
                                  max_results=200)
    return {c.data.tags.get("edge.format", c.info.run_name): c for c in children}


def logged_manifest_sha(registry: Registry, run_id: str) -> str | None:
    """The manifest sha256 a conversion run logged, or None (no such run, or registry trouble)."""
    try:
        return registry.client.get_run(run_id).data.tags.get(MANIFEST_SHA_TAG)
    except Exception as e:  # the answer is only "unknown": the caller logs the bundle again
        log.debug("could not read run %s: %s", run_id, e)
        return None
