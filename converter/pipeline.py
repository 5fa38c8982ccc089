"""The conversion, step by step: registry -> source model -> builds (each verified) -> bundle -> MLflow."""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import converter
from converter.build_step import BuildInputs, build_format
from converter.builders.base import BuildOptions
from converter.builders.from_onnx import has_onnx_graph
from converter.bundle import Staging, bundle_dir_for, cached_manifest
from converter.cache import bundle_inputs, cache_key, format_key, plan_builds, reusable_manifest
from converter.class_names import perception_context
from converter.errors import ConverterError
from converter.model_inputs import check_one_camera, image_hw, parse_inputs, resolve_inputs
from converter.model_outputs import parse_outputs, resolve_outputs
from converter.model_spec import resolve_preprocess
from converter.reference import REFERENCE_FILE, Reference, frames_from_path, synthetic_drive, vector_inputs
from converter.registry import ModelVersionRef, Registry
from converter.report import ConsoleUI
from converter.summary import Outcome, Summary
from converter.task_parity import headline
from converter.tf_import import import_tensorflow, native_stderr_filtered
from runtime import formats
from runtime.manifest import (
    Manifest,
    ModelInfo,
    load_manifest,
    sha256_file,
    verified_path,
)
from runtime.manifest.signature import SIGNATURE_NAME

log = logging.getLogger(__name__)



@dataclass
class ConvertRequest:
    formats: list[str]
    explicit_formats: bool = False
    tracking_uri: str = ""
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    bundle: Path | None = None  # extend this bundle from its ONNX alone (no TensorFlow, no registry)
    output_root: Path = Path("builds")
    preprocess_overrides: dict[str, Any] = field(default_factory=dict)
    outputs: str = ""  # the --outputs flag's text (converter.model_outputs syntax)
    classes: str | None = None  # --classes a,b,c (perception outputs' class names; else tag edge.classes)
    drivable: str | None = None  # --drivable a[,b] (segmentation; else tag edge.drivable, else a road-like name)
    score_threshold: float | None = None  # --score-threshold (detections; default 0.5)
    max_detections: int | None = None  # --max-detections: K of a wrapped detector's fixed-size outputs (default 100)
    iou_threshold: float | None = None  # --iou-threshold (detections' NMS; default 0.45)
    inputs: str = ""  # the --inputs flag's text (converter.model_inputs syntax)
    input_shapes: str = ""  # --input-shape NAME=1x1[,NAME=...]: a PyTorch input's shape the model does not record
    custom_objects: list[str] = field(default_factory=list)
    model_file: str | None = None  # which model file in the version's artifacts, when they hold several
    model_class: str | None = None  # --model-class module:attr: the nn.Module a PyTorch state dict belongs to
    samples_path: Path | None = None
    n_samples: int = 64
    tolerance: dict[str, float] = field(default_factory=dict)
    calibration: Path | None = None
    int8_limits: Any = None  # calibration.conversion.Int8Limits; None: its defaults
    task_gates: Any = None  # converter.task_parity.TaskGates (config [parity]); None: its defaults
    options: BuildOptions = field(default_factory=BuildOptions)
    log_to_mlflow: bool = True
    allow_upgrade: bool = False  # --allow-upgrade: MLflow may migrate an older store this run logs to
    force: bool = False
    signer: Any = None  # converter.signing.Signer (--sign / $RC_SIGNING_KEY): the new bundle is signed


def convert_from_registry(req: ConvertRequest, ui: ConsoleUI) -> Summary:
    t0 = time.perf_counter()
    started_ms = int(time.time() * 1000)  # a timestamp for the MLflow run's start, never an interval
    if not req.name:
        raise ConverterError("no model name: pass --name, set RC_MODEL_NAME, or [model] name in the config")
    with ui.step(f"Resolving {req.name} {'v' + req.version if req.version else '@' + str(req.alias)}"):
        registry = Registry(req.tracking_uri, write=req.log_to_mlflow, allow_upgrade=req.allow_upgrade)
        ref = registry.resolve(req.name, req.version, req.alias)
    target = bundle_dir_for(req.output_root, ref.name, ref.version)
    key_inputs = bundle_inputs(req, ref)
    key = cache_key(key_inputs)
    fkeys = {f: format_key(f, req) for f in req.formats}
    summary = Summary(ref.name, ref.version, target, started_ms=started_ms)
    if not req.force:
        cached = cached_manifest(target, key, req.formats, fkeys, skipped_ok=not req.explicit_formats)
        if cached is not None and req.signer is not None and not req.signer.has_signed(target):
            # Never signed in place: the bundle is written anew, signed in staging.
            log.info("existing bundle %s is not signed by %s; rebuilding it signed", target, req.signer.key_id[:19])
            cached = None
        if cached is not None:
            summary.cache_hit = True
            summary.outcomes = [_cached_outcome(cached, f) for f in req.formats]
            if req.log_to_mlflow:
                _log_cached(registry, ref, cached, summary, ui)
            summary.seconds = time.perf_counter() - t0
            return summary
    existing = reusable_manifest(target, key)
    keep, todo = plan_builds(existing, req.formats, fkeys, req.force)
    fkeys |= {f: format_key(f, req) for f in todo if f not in fkeys}
    with tempfile.TemporaryDirectory(prefix="convert-model-") as work_str, \
            Staging(target, seed_from=[b.file for b in keep]) as st:
        work = Path(work_str)
        with ui.step(f"Downloading {ref.uri}"):
            art = registry.download(ref, work / "artifacts")
        with ui.step("Loading the model"):
            import_tensorflow()
            source, found = _load(art, req, ref.tags, work / "graph")
        manifest = _new_manifest(req, ref, source, found, key, key_inputs)
        manifest.builds = keep
        saved = None  # PyTorch/ONNX sources: their builders export the ONNX (and onnx2tf's SavedModel) on demand
        if not has_onnx_graph(source):
            with ui.step("Exporting a SavedModel"):
                saved = source.export_saved_model(work / "saved_model", {i.name: i.shape for i in manifest.inputs})
        with ui.step(f"Running the source model on {req.n_samples} reference samples"):
            ref_samples = _reference(req, manifest, source)
            ref_samples.save(st.path / REFERENCE_FILE)
            manifest.source["reference"] = {
                "file": REFERENCE_FILE, "sha256": sha256_file(st.path / REFERENCE_FILE),
                "count": int(ref_samples.frames_bgr.shape[0]), "frames": ref_samples.source,
            }
        inputs = BuildInputs(st.path, manifest, source, saved, ref_samples, req, _calibration(req, manifest, ref_samples, ui),
                             fkeys)
        built = {o.format: o for o in _build_all(inputs, todo, ui)}
        # Requested builds carried over are reported as cached; builds redone because they derive
        # from a rebuilt one follow the requested ones.
        summary.outcomes = [built.pop(f) if f in built else _cached_outcome(manifest, f) for f in req.formats]
        summary.outcomes += list(built.values())
        _finish(summary, manifest, st, ui, req.signer)
    if summary.bundle is not None and req.log_to_mlflow:
        _log(registry, ref, manifest, summary, ui)
    summary.seconds = time.perf_counter() - t0
    return summary


def extend_bundle(req: ConvertRequest, ui: ConsoleUI) -> Summary:
    """Add builds (TensorRT engines, on the car) to an existing bundle from its ONNX alone."""
    t0 = time.perf_counter()
    assert req.bundle is not None
    need_source = [f for f in req.formats if formats.get(f).needs_source]
    if need_source:
        raise ConverterError(
            f"{', '.join(need_source)} need the source model, which a bundle does not hold; convert them from "
            "the registry (--version/--alias); --bundle adds builds made from the bundle's ONNX (trt-*, onnx-fp16, onnx-int8)"
        )
    manifest = load_manifest(req.bundle)
    ref_info = manifest.source.get("reference")
    if not ref_info:
        raise ConverterError(f"{req.bundle} has no reference samples; re-convert it with this convert-model")
    ref_path = req.bundle / ref_info["file"]
    if sha256_file(ref_path) != ref_info["sha256"]:
        raise ConverterError(f"{ref_path} does not match the manifest's sha256; re-copy the bundle")
    for b in manifest.builds:
        verified_path(req.bundle, b)
    ref_samples = Reference.load(ref_path, ref_info.get("frames", ""))
    if (req.bundle / SIGNATURE_NAME).exists():
        log.warning("%s is signed; extending it changes its manifest, so the new bundle is unsigned (a car with "
                    "--trust refuses it; sign by converting from the registry with --sign)", req.bundle)
    summary = Summary(manifest.model.name, manifest.model.version, req.bundle)
    manifest.builds = [b for b in manifest.builds if b.format not in req.formats]
    with Staging(req.bundle, seed_from=[ref_info["file"], *(b.file for b in manifest.builds)]) as st:
        inputs = BuildInputs(st.path, manifest, None, None, ref_samples, req, _calibration(req, manifest, ref_samples, ui),
                             {f: format_key(f, req) for f in req.formats})
        summary.outcomes = _build_all(inputs, req.formats, ui)
        _finish(summary, manifest, st, ui)
    summary.seconds = time.perf_counter() - t0
    return summary


def _build_all(inputs: BuildInputs, fids: list[str], ui: ConsoleUI) -> list[Outcome]:
    outcomes = []
    for fid in fids:
        with ui.step(f"Building and verifying {fid}"), native_stderr_filtered(to_debug_log=True):
            outcome = build_format(fid, inputs)
        ui.note(f"  {fid}: {outcome.status}" + (f" ({outcome.reason})" if outcome.reason else ""))
        outcomes.append(outcome)
    return outcomes


def _finish(summary: Summary, manifest: Manifest, st: Staging, ui: ConsoleUI, signer: Any = None) -> None:
    manifest.not_built = [
        {"format": o.format, "status": o.status, "reason": o.reason or ""}
        for o in summary.outcomes if o.status in ("failed", "skipped")
    ]
    if not manifest.builds:
        summary.bundle = None
        ui.note("nothing was built: no bundle written")
        return
    manifest.created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with ui.step("Writing the bundle"):
        summary.bundle = st.commit(manifest, signer)


def _log_cached(registry: Registry, ref: ModelVersionRef, manifest: Manifest, summary: Summary,
                ui: ConsoleUI) -> None:
    """A cache hit names the MLflow run only if that run logged this very bundle (a bundle made
    with --no-log, or rebuilt since, is logged now)."""
    from converter.mlflow_log import logged_manifest_sha

    assert summary.bundle is not None
    run_id = ref.tags.get("edge.conversion_run_id")
    local = sha256_file(summary.bundle / "manifest.json")
    if run_id and logged_manifest_sha(registry, run_id) == local:
        summary.run_id = run_id
        return
    _log(registry, ref, manifest, summary, ui)


def _log(registry: Registry, ref: ModelVersionRef, manifest: Manifest, summary: Summary, ui: ConsoleUI) -> None:
    from converter.mlflow_log import log_conversion
    from converter.registry import logging_failure

    assert summary.bundle is not None
    try:
        registry.check_writable()
        with ui.step("Logging to MLflow"):
            summary.run_id = log_conversion(registry, ref, manifest, summary, summary.bundle)
    except Exception as e:  # the bundle is written and valid; say so, and exit non-zero
        log.debug("MLflow logging failed", exc_info=True)
        summary.log_error = logging_failure(e, registry.tracking_uri)


def _cached_outcome(manifest: Manifest, fid: str) -> Outcome:
    if not manifest.has(fid):
        note = next(n for n in manifest.not_built if n["format"] == fid)
        return Outcome(fid, "skipped", reason=note.get("reason"))
    b = manifest.build(fid)
    return Outcome(fid, "cached", b.file, b.bytes, b.parity.get("max_abs"), b.parity.get("mean_abs"),
                   task=headline(b.parity.get("task") or {}) or None)


def _load(art: Path, req: ConvertRequest, tags: dict[str, str] | None = None,
          workdir: Path | None = None) -> tuple[Any, Any]:
    from converter.sources import find_model_file, import_custom_objects, load_source
    from converter.sources.hints import source_hints

    found = find_model_file(art, req.model_file)
    hints = source_hints(req, tags or {}, workdir)
    return load_source(found, import_custom_objects(req.custom_objects), hints), found


def _new_manifest(req: ConvertRequest, ref: ModelVersionRef, source: Any, found: Any, key: str,
                  key_inputs: dict[str, Any]) -> Manifest:
    """Inputs with their roles, outputs with their decoders; ConverterError naming the fix."""
    import numpy as np

    shapes = source.input_shapes
    cli_inputs = parse_inputs(req.inputs)
    layout = getattr(source, "default_layout", "NHWC")
    check_one_camera(shapes, ref.tags, cli_inputs)
    cam = image_hw(shapes, ref.tags, cli_inputs, layout)
    if cam is None:
        raise ConverterError(
            f"no model input takes the camera image (inputs: {', '.join(f'{n} {list(s)}' for n, s in shapes.items())}); "
            "pass --inputs NAME=image for the image input"
        )
    spec, origin = resolve_preprocess(ref.tags, req.preprocess_overrides, cam[0], source.rescales_inside(), cam[1],
                                      pixel_rescaler=source.input_rescaling_layer())
    inputs = resolve_inputs(shapes, ref.tags, cli_inputs, spec, layout)
    probe = source.predict({i.name: np.zeros(i.shape, np.float32) for i in inputs})
    out_shapes = {n: (1, *probe[n].shape[1:]) for n in source.output_names}
    context = perception_context(req, ref.tags, ref.params, source, next(i for i in inputs if i.is_image))
    outputs = resolve_outputs(out_shapes, ref.tags, parse_outputs(req.outputs), context.activations, context)
    return Manifest(
        model=ModelInfo(ref.name, ref.version, ref.run_id, ref.source, f"{found.kind}:{found.path.name}"),
        inputs=inputs,
        outputs=outputs,
        builds=[],
        created_at="",
        converter_version=converter.__version__,
        source={"key": key, "inputs": key_inputs, "preprocess_from": origin},
    )


def _reference(req: ConvertRequest, manifest: Manifest, source: Any) -> Reference:
    import numpy as np

    spec = manifest.preprocess
    if req.samples_path is not None:
        frames, where = frames_from_path(req.samples_path, req.n_samples), str(req.samples_path)
        steering = np.zeros(len(frames))
        throttle = np.full(len(frames), 0.3)
    else:
        frames, steering, throttle = synthetic_drive(spec, req.n_samples)
        where = "synthetic-track+noise"
    ref = Reference(frames, {}, where, vector_inputs(manifest, steering, throttle))
    ref.outputs = source.predict(ref.inputs(manifest))
    return ref


def _calibration(req: ConvertRequest, manifest: Manifest, reference: Reference, ui: ConsoleUI) -> Any:
    """The calibration set for INT8 builds, refused when made with another preprocessing."""
    if req.calibration is None:
        return None
    from calibration.conversion import CalibrationError, load_for_conversion

    with ui.step(f"Loading calibration set {req.calibration}"):
        try:
            data = load_for_conversion(req.calibration, manifest.preprocess, manifest, reference.vectors)
        except CalibrationError as e:
            raise ConverterError(str(e)) from None
    manifest.source["calibration"] = {"path": str(req.calibration), "sha256": data.sha256,
                                      "calibration_frames": len(data.calib), "heldout_frames": len(data.heldout)}
    return data
