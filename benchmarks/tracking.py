"""MLflow side of the benchmarks: one run per benchmark in experiment ``edge-benchmarks``, the
baseline run of the version holding an alias, and the ``candidate`` alias on a passed gate.

Run tags: ``edge.model_name``, ``edge.model_version``, ``edge.machine_id``, ``edge.host``,
``edge.bundle_sha256`` and, when gated, ``edge.gate`` (passed/failed/undecided). Params: the machine, the
toolchain, the settings and ``bundle.sha256``. Metrics per build: ``<format>.p50_ms``, ``.p99_ms``,
``.fps``, ``.max_abs_error``, ``.<output>.max_abs`` ... and ``<format>.loop.c2c_p99_ms`` etc.
Artifacts: results.json, report.md, latency.png, latencies.npz.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmarks.machine import short
from benchmarks.results import RESULTS_FILE, ResultsError, load_results
from converter.errors import RegistryError
from converter.mlflow_log import experiment_id, flat_params
from converter.registry import AuthError, Registry, auth_error, with_retries

log = logging.getLogger(__name__)

EXPERIMENT = "edge-benchmarks"


class BaselineError(RuntimeError):
    """No usable baseline: the message says why and what to run."""


_GATE_TAG = {"pass": "passed", "fail": "failed", "undecided": "undecided"}


def build_metrics(results: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}

    def put(key: str, v: Any) -> None:
        if isinstance(v, int | float) and not isinstance(v, bool):
            out[key] = float(v)

    for b in results["builds"]:
        if b["status"] != "ok":
            continue
        f = b["format"]
        for k in ("min", "mean", "p50", "p90", "p99", "max"):
            put(f"{f}.{k}_ms", b["latency_ms"][k])
        for k in ("fps", "size_mb", "peak_rss_mb", "load_s"):
            put(f"{f}.{k}", b.get(k))
        for stage, s in (b.get("gpu_ms") or {}).items():
            put(f"{f}.gpu.{stage}_p50_ms", s.get("p50"))
            put(f"{f}.gpu.{stage}_p99_ms", s.get("p99"))
        acc = b.get("accuracy") or {}
        put(f"{f}.max_abs_error", acc.get("max_abs"))
        put(f"{f}.mean_abs_error", acc.get("mean_abs"))
        for name, e in (acc.get("per_output") or {}).items():
            put(f"{f}.{name}.max_abs", e["max_abs"])
            put(f"{f}.{name}.mean_abs", e["mean_abs"])
        loop = b.get("loop") or {}
        for k in ("fps", "bare_fps", "fps_ratio", "per_frame_overhead_us", "latency_margin_ms", "dropped"):
            put(f"{f}.loop.{k}", loop.get(k))
        for k, v in (loop.get("camera_to_command_ms") or {}).items():
            put(f"{f}.loop.c2c_{k}_ms", v)
    return out


def _raise_if_refused(registry: Registry, what: str, e: Exception) -> None:
    """A 401/403 from the tracking server becomes the AuthError naming the variables to set."""
    err = auth_error(e, registry.tracking_uri, what)
    if err is not None:
        raise err from None


def log_run(registry: Registry, results: dict[str, Any], files: Iterable[Path], run_id: str) -> None:
    """Fill the run ``start_run`` created: params, metrics, tags, artifacts; then finish it."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.utils.time import get_current_time_millis

    client = registry.client
    try:
        params = {
            "bundle.sha256": results["bundle"]["sha256"],
            "bundle.path": results["bundle"]["path"],
            **flat_params("machine", {k: v for k, v in results["machine"].items() if k != "loadavg_end"}),
            **flat_params("toolchain", results["toolchain"]),
            **flat_params("settings", results["settings"]),
        }
        now = get_current_time_millis()
        metrics = [Metric(k, v, now, 0) for k, v in build_metrics(results).items()]
        tags = [RunTag("edge.formats_measured", ",".join(b["format"] for b in results["builds"] if b["status"] == "ok"))]
        if results.get("gate"):
            tags.append(RunTag("edge.gate", _GATE_TAG[results["gate"]["verdict"]]))
        client.log_batch(run_id, metrics=metrics, params=[Param(k, v) for k, v in params.items()], tags=tags)
        for f in files:
            client.log_artifact(run_id, str(f))
        client.set_terminated(run_id, "FINISHED")
    except Exception as e:
        _raise_if_refused(registry, "logging the benchmark run", e)  # a refused run cannot be marked either
        client.set_terminated(run_id, "FAILED")
        raise


def start_run(registry: Registry, results: dict[str, Any]) -> str:
    try:
        return _start_run(registry, results)
    except Exception as e:
        _raise_if_refused(registry, "starting the benchmark run", e)
        raise


def _start_run(registry: Registry, results: dict[str, Any]) -> str:
    client = registry.client
    exp = experiment_id(client, EXPERIMENT, registry.tracking_uri)
    m, mach = results["model"], results["machine"]
    run = client.create_run(exp, run_name=f"{m['name']}-v{m['version']}-{mach['hostname']}", tags={
        "edge.model_name": m["name"], "edge.model_version": str(m["version"]),
        "edge.machine_id": mach["id"], "edge.host": mach["hostname"],
        "edge.bundle_sha256": results["bundle"]["sha256"],
    })
    return str(run.info.run_id)


def _runs_of(registry: Registry, name: str, version: str) -> list[Any]:
    try:
        return _search_runs(registry, name, version)
    except Exception as e:
        _raise_if_refused(registry, "reading benchmark runs", e)
        raise


def _search_runs(registry: Registry, name: str, version: str) -> list[Any]:
    client = registry.client
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        return []
    flt = (f"tags.`edge.model_name` = '{name}' and tags.`edge.model_version` = '{version}' "
           "and attributes.status = 'FINISHED'")
    return list(client.search_runs([exp.experiment_id], flt, max_results=200, order_by=["attributes.start_time DESC"]))


def _download_results(registry: Registry, run_id: str) -> dict[str, Any]:
    import mlflow.artifacts

    with tempfile.TemporaryDirectory(prefix="rc-bench-baseline-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=RESULTS_FILE, dst_path=tmp,
                                                        tracking_uri=registry.store_uri)
        except Exception as e:
            _raise_if_refused(registry, f"downloading {RESULTS_FILE} of baseline run {run_id}", e)
            raise BaselineError(f"could not download {RESULTS_FILE} of baseline run {run_id}: {e}") from None
        try:
            return load_results(Path(local))
        except ResultsError as e:
            raise BaselineError(f"baseline run {run_id}: {e}") from None


def find_baseline(
    registry: Registry, name: str, alias: str, machine: dict[str, Any], allow_cross_machine: bool
) -> tuple[dict[str, Any], str]:
    """(results, label) of the newest finished benchmark run of the version holding ``@alias``,
    made on this machine (any machine with ``allow_cross_machine``). :class:`BaselineError` says
    why there is none: the policy is to fail clearly, never to benchmark another version silently."""
    try:
        version = registry.resolve(name, alias=alias).version
    except AuthError:
        raise
    except RegistryError as e:
        raise BaselineError(f"no baseline: {e} (no version holds @{alias}? for a first release pass --no-baseline)") from None
    runs = _runs_of(registry, name, version)
    if not runs:
        raise BaselineError(
            f"baseline {name} v{version} (@{alias}) has no benchmark run in experiment {EXPERIMENT}; benchmark it "
            f"on this machine first: rc-benchmark --name {name} --version {version}"
        )
    here = [r for r in runs if r.data.tags.get("edge.machine_id") == machine["id"]]
    if here:
        run = here[0]
    elif allow_cross_machine:
        run = runs[0]
    else:
        other = runs[0].data.tags.get("edge.host", "?")
        raise BaselineError(
            f"refusing to compare results from different machines: {name} v{version} (@{alias}) was benchmarked "
            f"only on other machines (newest: host {other}, machine id {runs[0].data.tags.get('edge.machine_id')}), "
            f"this is {short(machine)}; benchmark v{version} here (rc-benchmark --name {name} --version {version}) "
            "or pass --allow-cross-machine"
        )
    results = _download_results(registry, run.info.run_id)
    return results, f"{name} v{version} @{alias}, run {run.info.run_id}"


def promote(registry: Registry, name: str, version: str, alias: str) -> None:
    try:
        with_retries(f"setting alias @{alias}",
                     lambda: registry.client.set_registered_model_alias(name, alias, str(version)))
    except Exception as e:
        _raise_if_refused(registry, f"setting alias @{alias}", e)
        raise
