"""What a bundle and each of its builds were made from, as keys for the cache.

Two levels. The bundle key covers everything every build depends on (model version, tags,
toolchain, preprocessing, reference samples): when it changes, nothing is reused. A format key
covers what only that format depends on (its tolerance; for INT8 the calibration set and limits):
changing it rebuilds that format and keeps the others.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import converter
from converter.registry import ModelVersionRef, describe
from runtime import formats
from runtime.manifest import BuildEntry, BundleError, Manifest, load_manifest, sha256_file, verified_path
from runtime.tensorrt.engine_cache import DEFAULT_WORKSPACE_MB
from runtime.versions import distribution_versions

log = logging.getLogger(__name__)

TOOL_DISTS = ("tensorflow-cpu", "tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert", "tensorrt",
              "torch", "onnxscript", "onnx2tf")
CALIBRATION_MANIFEST = "calibration.json"


def cache_key(inputs: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of everything that determines the content."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def toolchain_versions() -> dict[str, str]:
    """Installed versions of the conversion tools (:data:`TOOL_DISTS`) that are present: {distribution:
    version}. Part of every bundle's cache key: keep its content.
    """
    return distribution_versions(TOOL_DISTS)


def fingerprint(path: Path | None) -> str | None:
    """Content identity of a samples file (sha256) or folder (names, sizes, mtimes)."""
    if path is None:
        return None
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def bundle_inputs(req: Any, ref: ModelVersionRef) -> dict[str, Any]:
    """``req`` is a :class:`converter.pipeline.ConvertRequest`."""
    return {
        "model": describe(ref),
        "tags": {k: v for k, v in ref.tags.items() if k.startswith("edge.") and not k.startswith("edge.conv")
                 and k != "edge.formats"},
        "converter": converter.__version__,
        "toolchain": toolchain_versions(),
        "preprocess": req.preprocess_overrides,
        "outputs": req.outputs,
        "inputs": req.inputs,
        "custom_objects": sorted(req.custom_objects),
        "model_class": req.model_class,
        "samples": {"path": str(req.samples_path) if req.samples_path else None,
                    "content": fingerprint(req.samples_path), "n": req.n_samples},
        "opset": req.options.opset,
        # Only when given, so keys of earlier bundles stay valid.
        **({"model_file": req.model_file} if req.model_file else {}),
        **({"input_shapes": req.input_shapes} if getattr(req, "input_shapes", "") else {}),
        **({"perception": perception} if (perception := _perception_flags(req)) else {}),
    }


def _perception_flags(req: Any) -> dict[str, Any]:
    """The perception flags given (--classes, --drivable, thresholds), for the key."""
    names = ("classes", "drivable", "score_threshold", "iou_threshold", "max_detections")
    return {n: getattr(req, n) for n in names if getattr(req, n, None) is not None}


def calibration_id(path: Path | None) -> str | None:
    """sha256 of the calibration set's ``calibration.json``, or None without a set (or without that file)."""
    mf = path / CALIBRATION_MANIFEST if path is not None else None
    return sha256_file(mf) if mf is not None and mf.is_file() else None


def format_key(fid: str, req: Any) -> str:
    """The format key of ``fid``: its tolerance (``req.tolerance`` or the table's) and, for INT8 formats,
    the calibration set identity and the INT8 limits; for TensorRT formats, the builder's workspace
    limit when it is not the default; the perception gates when a ``[parity]`` section sets them. ``ValueError`` for an unknown format id.
    """
    fmt = formats.get(fid)
    inputs: dict[str, Any] = {"format": fid, "tolerance": req.tolerance.get(fid, fmt.tolerance)}
    if fmt.needs_calibration:
        inputs |= {"calibration": calibration_id(req.calibration), "int8_limits": repr(req.int8_limits)}
    workspace = req.options.trt_workspace_mb
    if fmt.runner == "tensorrt" and workspace != DEFAULT_WORKSPACE_MB:
        # It bounds the tactics TensorRT may pick: another limit can give another (faster) engine.
        # Only when changed, so the keys of earlier bundles stay valid.
        inputs["trt_workspace_mb"] = int(workspace)
    gates = getattr(req, "task_gates", None)
    if gates is not None:  # a [parity] section judges perception builds: another gate, another verdict
        inputs["task_gates"] = repr(gates)
    return cache_key(inputs)


def reusable_manifest(target: Path, key: str) -> Manifest | None:
    """The existing bundle if it was made from the same bundle inputs, keeping only the builds whose
    files still match their sha256 (a damaged build is rebuilt, never carried over)."""
    try:
        m = load_manifest(target)
    except BundleError:
        return None
    if m.source.get("key") != key:
        return None
    intact = []
    for b in m.builds:
        try:
            verified_path(target, b)
            intact.append(b)
        except BundleError as e:
            log.warning("not reusing %s: %s", b.format, e)
    m.builds = intact
    return m


def derived_source(build: BuildEntry) -> tuple[str, str] | None:
    """(format, sha256) of the bundle build ``build`` was made from (``onnx-fp16``, ``onnx-int8`` and
    TensorRT engines are made from the bundle's ONNX), as its builder recorded it; None for a build
    made from the source model."""
    quantization = build.extra.get("quantization") or {}
    fmt = build.extra.get("source_build") or quantization.get("source")
    sha = build.extra.get("source_sha256") or quantization.get("source_sha256")
    return (str(fmt), str(sha)) if fmt and sha else None


def plan_builds(existing: Manifest | None, formats: list[str], format_keys: dict[str, str],
                force: bool = False) -> tuple[list[BuildEntry], list[str]]:
    """(builds of ``existing`` carried over, formats to build) for a conversion asking for
    ``formats``. A requested build whose format key is unchanged is carried over, never rebuilt
    (``existing`` holds only intact builds of the same bundle key, see :func:`reusable_manifest`):
    tf2onnx is not byte-reproducible, so rebuilding ``model.onnx`` for an INT8 run once left the
    kept ``onnx-fp16`` derived from an earlier file. A carried-over build whose source (see
    :func:`derived_source`) is rebuilt, or is not carried over with the very sha256 it was made
    from, is rebuilt too, after the requested ones: every build of a bundle derives from the files
    it ships. ``force`` rebuilds every requested format."""
    if existing is None:
        return [], list(formats)
    keep = [b for b in existing.builds
            if b.format not in formats or (not force and b.extra.get("key") == format_keys.get(b.format))]
    todo = [f for f in formats if f not in {b.format for b in keep}]
    while True:
        shas = {b.format: b.sha256 for b in keep}
        stale = [b for b in keep if (src := derived_source(b)) is not None
                 and (src[0] in todo or shas.get(src[0]) != src[1])]
        if not stale:
            return keep, todo
        for b in stale:
            log.info("rebuilding %s: the build it was made from is rebuilt or gone", b.format)
            keep.remove(b)
            todo.append(b.format)
