"""The benchmark result document (``results.json``) and the files written beside it.

Top-level keys (schema ``rc-edge-benchmark/1``): ``schema``, ``created_at``, ``model`` {name,
version, run_id, source_uri}, ``bundle`` {path, sha256 (of manifest.json, which pins every file),
converter_version, created_at}, ``machine`` (see :mod:`benchmarks.machine`), ``toolchain``,
``settings``, ``builds`` [one entry per format: format, backend, precision, file, status (ok |
skipped | failed | not_built), reason, size_bytes, size_mb, latency_ms {min, mean, p50, p90, p99,
max}, latency_ms_per_repeat, fps, fps_per_repeat, load_s, peak_rss_mb, gpu_ms (TensorRT: h2d,
compute, d2h), accuracy {samples, max_abs, mean_abs, per_output}, loop {fps, bare_fps, fps_ratio,
camera_to_command_ms, dropped, ...}], ``notes``; ``gate`` once the gate ran; ``mlflow_run_id``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from runtime.manifest import MANIFEST_NAME, Manifest, sha256_file

SCHEMA = "rc-edge-benchmark/1"
RESULTS_FILE, REPORT_FILE, PLOT_FILE, SAMPLES_FILE = "results.json", "report.md", "latency.png", "latencies.npz"
SHARED_MACHINE_NOTE = (
    "measured on a machine shared with other jobs: figures are medians over interleaved repeats, "
    "but load from other processes can still widen p99/max"
)


class ResultsError(ValueError):
    """A results file that cannot be read or is not a benchmark result."""


def now_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def bundle_info(bundle: Path, manifest: Manifest) -> dict[str, Any]:
    return {
        "path": str(bundle.resolve()),
        "sha256": sha256_file(bundle / MANIFEST_NAME),
        "converter_version": manifest.converter_version,
        "created_at": manifest.created_at,
    }


def new_results(
    manifest: Manifest, bundle: Path, machine: dict[str, Any], toolchain: dict[str, str],
    settings: dict[str, Any], builds: list[dict[str, Any]], notes: list[str],
) -> dict[str, Any]:
    m = manifest.model
    return {
        "schema": SCHEMA,
        "created_at": now_utc(),
        "model": {"name": m.name, "version": str(m.version), "run_id": m.run_id, "source_uri": m.source_uri},
        "bundle": bundle_info(bundle, manifest),
        "machine": machine,
        "toolchain": toolchain,
        "settings": settings,
        "builds": builds,
        "notes": notes,
    }


def build(results: dict[str, Any], fmt: str) -> dict[str, Any] | None:
    return next((b for b in results.get("builds", []) if b.get("format") == fmt), None)


def load_results(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file") from None
    except (OSError, json.JSONDecodeError) as e:
        raise ResultsError(f"{path}: not a readable JSON file ({e})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ResultsError(f"{path}: not an rc-benchmark result (schema {SCHEMA!r} expected)")
    return data


def write_outputs(
    out_dir: Path, results: dict[str, Any], report_md: str, samples: dict[str, list[np.ndarray]],
    plot: Callable[[Path], None] | None,
) -> dict[str, Path]:
    """Write results.json, report.md, latencies.npz and latency.png into ``out_dir`` atomically:
    everything goes to a staging directory first, so a crash leaves no half-written report."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    stage.chmod(0o777 & ~umask)  # mkdtemp makes it private; the results are meant to be shared
    try:
        (stage / RESULTS_FILE).write_text(json.dumps(results, indent=2) + "\n")
        (stage / REPORT_FILE).write_text(report_md)
        arrays = {f: np.concatenate(s) for f, s in samples.items() if s}
        with open(stage / SAMPLES_FILE, "wb") as f:
            np.savez_compressed(f, **arrays)  # type: ignore[arg-type]
        if plot is not None:
            plot(stage / PLOT_FILE)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(stage, out_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return {name: out_dir / name for name in (RESULTS_FILE, REPORT_FILE, SAMPLES_FILE, PLOT_FILE)
            if (out_dir / name).exists()}
