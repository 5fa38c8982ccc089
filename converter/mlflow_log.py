"""Log a conversion back to MLflow: a run in ``edge-conversion`` and tags on the model version.

Also the shared helpers benchmarks use to log their own runs (experiment lookup, artifact root).
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import Any

from converter.registry import ModelVersionRef, Registry
from converter.summary import Summary
from converter.task_parity import task_metrics
from runtime.manifest import Manifest, sha256_file
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


def log_conversion(registry: Registry, ref: ModelVersionRef, manifest: Manifest, summary: Summary, bundle: Path) -> str:
    """Returns the run id. Raises on MLflow errors (the caller reports them; the bundle stays)."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.utils.time import get_current_time_millis

    client = registry.client
    exp = experiment_id(client, EXPERIMENT, registry.tracking_uri)
    # A signed bundle's manifest.json.sig (signature and public key) goes up with bundle/ below.
    signature = read_signature(bundle)
    signed = {SIGNED_BY_TAG: signature["key_id"]} if signature else {}
    run = client.create_run(
        exp,
        run_name=f"{ref.name}-v{ref.version}",
        tags={"edge.model_name": ref.name, "edge.model_version": ref.version,
              MANIFEST_SHA_TAG: sha256_file(bundle / "manifest.json"), **signed},
    )
    run_id = run.info.run_id
    try:
        built = [b.format for b in manifest.builds]
        params = {
            "source.model": ref.name,
            "source.version": ref.version,
            "source.uri": ref.uri,
            "source.run_id": ref.run_id or "",
            "formats": ",".join(o.format for o in summary.outcomes),
            "converter_version": manifest.converter_version,
            **flat_params("preprocess", manifest.preprocess.to_dict()),
        }
        for b in manifest.builds:
            params.update(flat_params(f"toolchain.{b.format}", b.toolchain))
        now = get_current_time_millis()
        metrics: list[Metric] = []
        # Figures come from the manifest, i.e. the bundle being logged (also on a cache hit);
        # build time only from what this run built.
        built_s = {o.format: o.seconds for o in summary.outcomes if o.status == "built"}
        for b in manifest.builds:
            vals = {"max_abs": b.parity.get("max_abs"), "mean_abs": b.parity.get("mean_abs"), "bytes": b.bytes,
                    "build_s": built_s.get(b.format)}
            metrics += [Metric(f"{b.format}.{k}", float(v), now, 0) for k, v in vals.items() if v is not None]
            for out, errs in b.parity.get("per_output", {}).items():
                metrics += [Metric(f"{b.format}.{out}.{k}", float(v), now, 0) for k, v in errs.items()]
            # perception builds: the task figures they were judged by (miou_segmentation, f1_50_detection...)
            metrics += [Metric(k, v, now, 0) for k, v in task_metrics(b.format, b.parity.get("task") or {}).items()]
            for k, v in flat_params(f"{b.format}.int8", b.extra.get("int8_cost", {})).items():
                try:
                    metrics.append(Metric(k, float(v), now, 0))
                except ValueError:
                    continue  # a non-numeric note in the cost record
        client.log_batch(
            run_id,
            metrics=metrics,
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag("edge.formats", ",".join(built))],
        )
        client.log_artifacts(run_id, str(bundle), artifact_path="bundle")
        # MLflow prints "View run … at: URL" on stdout for server URIs; stdout is ours (--json).
        with contextlib.redirect_stdout(io.StringIO()) as links:
            client.set_terminated(run_id, "FINISHED")
        for line in links.getvalue().splitlines():
            log.info("%s", line)
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    registry.set_version_tags(ref, {"edge.conversion_run_id": run_id, "edge.formats": ",".join(built),
                                    SIGNED_BY_TAG: signed.get(SIGNED_BY_TAG, "unsigned")})
    return run_id


def logged_manifest_sha(registry: Registry, run_id: str) -> str | None:
    """The manifest sha256 a conversion run logged, or None (no such run, or registry trouble)."""
    try:
        return registry.client.get_run(run_id).data.tags.get(MANIFEST_SHA_TAG)
    except Exception as e:  # the answer is only "unknown": the caller logs the bundle again
        log.debug("could not read run %s: %s", run_id, e)
        return None
