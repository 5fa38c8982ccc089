"""``convert-model``: a registered MLflow model version -> a verified edge bundle.

    convert-model --version 3                     # models:/$RC_MODEL_NAME/3 from $MLFLOW_TRACKING_URI
    convert-model --name rc_pilot --alias production --formats onnx,tflite-fp16
    convert-model --bundle builds/rc_pilot/v3 --formats trt-fp16   # on the car: engine from the ONNX

Exit: 0 every requested format built and verified; 1 some failed (the rest are built and
listed); 2 bad usage or input (nothing written).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from calibration.preprocess_flags import add_preprocess_flags, preprocess_overrides
from converter.errors import EXIT_USAGE, ConverterError

log = logging.getLogger("converter")


def build_parser() -> argparse.ArgumentParser:
    """The ``convert-model`` argument parser (the README's examples are parsed with it in
    tests/test_readme.py).
    """
    p = argparse.ArgumentParser(
        prog="convert-model", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", help="registered model version, e.g. 3")
    which.add_argument("--alias", help="registered model alias, e.g. production")
    which.add_argument("--bundle", type=Path, help="extend an existing bundle from its ONNX (no TensorFlow/MLflow)")
    p.add_argument("--name", help="registered model name (else $RC_MODEL_NAME, else the config's [model] name)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (else $MLFLOW_TRACKING_URI, else the config's "
                   "[model] tracking_uri, else the local demo store)")
    p.add_argument("--config", type=Path, help="TOML config (default: ./rc-edge.toml when present)")
    p.add_argument("--formats", help="comma-separated format ids, or 'all' (default: every default format)")
    p.add_argument("--output", type=Path, help="bundle root (default: builds/); bundles go to <root>/<name>/v<version>")
    add_preprocess_flags(p.add_argument_group("preprocessing (override the version's edge.preprocess tag)"))
    p.add_argument("--outputs", help="output meanings and decoders, e.g. out0=steering,out1=throttle or "
                   "angle_out=steering:bins:-1:1 or xy=steering:component:0:1.0:0.0; perception: "
                   "out=segmentation[:layout=NCHW], boxes=detection:boxes[:scores=S][:labels=L], "
                   "output0=detection:yolo (else edge.outputs tag)")
    p.add_argument("--classes", metavar="A,B,...",
                   help="class names of a segmentation or detection model, in class-id order, e.g. "
                        "background,road (else tag edge.classes, else the model's own)")
    p.add_argument("--drivable", metavar="A[,B]",
                   help="the segmentation classes the car may drive on (else tag edge.drivable, else the one class "
                        "named like road/drivable/lane/floor)")
    p.add_argument("--score-threshold", type=float, help="detections: the score a detection needs (default 0.5)")
    p.add_argument("--max-detections", type=int, metavar="K",
                   help="torchvision-style detectors: detections per frame the fixed-size export keeps (default 100)")
    p.add_argument("--iou-threshold", type=float, help="detections: the overlap above which NMS drops a box "
                   "(default 0.45)")
    p.add_argument("--inputs", help="input roles, e.g. imu_in=imu,seq=image_sequence,b=behavior:labels=left|right "
                   "(roles: image, image_sequence, memory, imu, behavior, wheel_speed; else edge.inputs tag)")
    p.add_argument("--input-shape", metavar="NAME=1x1[,NAME=...]",
                   help="PyTorch state dicts/TorchScript: the shape of an input the model does not record and its role "
                        "does not fix (batch first), e.g. speed=1x1; image inputs take --input-size")
    p.add_argument("--custom-objects", action="append", default=[], metavar="MODULE:ATTR",
                   help="custom Keras layer/function (or dict of them) needed to load the model; repeatable")
    p.add_argument("--model-file", metavar="PATH",
                   help="the model file (or SavedModel folder) to convert when the version's artifacts hold several, "
                        "relative to them, e.g. data/model.keras")
    p.add_argument("--model-class", metavar="MODULE:ATTR",
                   help="PyTorch: the nn.Module class (or factory) a state-dict checkpoint belongs to")
    p.add_argument("--samples", type=Path, help="video or image folder for the parity check (default: synthetic track)")
    p.add_argument("--n-samples", type=int, help="reference samples for the parity check (default 64)")
    p.add_argument("--tolerance", action="append", default=[], metavar="FORMAT=MAXABS",
                   help="override a format's max abs error, e.g. tflite-fp16=0.02; repeatable")
    p.add_argument("--calibration", type=Path, help="calibration set (rc-calibrate) for INT8 formats")
    p.add_argument("--opset", type=int, help="ONNX opset (default 17; tf2onnx supports up to 18)")
    p.add_argument("--sign", metavar="KEY.pem",
                   help="sign the new bundle's manifest with this ed25519 private key (openssl genpkey -algorithm "
                        "ed25519; else $RC_SIGNING_KEY; an encrypted key's passphrase in $RC_SIGNING_KEY_PASSPHRASE)")
    p.add_argument("--no-log", action="store_true", help="do not log the conversion to MLflow")
    p.add_argument("--allow-upgrade", action="store_true",
                   help="let MLflow migrate a store an older MLflow wrote when logging to it (its older clients then "
                        "fail); without it such a store is only read, from a copy")
    p.add_argument("--force", action="store_true", help="rebuild even when the bundle is up to date")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    p.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    return p


def _setup_logging(verbosity: int) -> None:
    from converter.report import setup_logging

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if verbosity < 2 else "0")
    setup_logging(verbosity, quiet=("tensorflow", "absl", "tf2onnx", "mlflow", "alembic", "h5py"))


def _request(args: argparse.Namespace) -> Any:
    from converter.builders.base import BuildOptions
    from converter.class_names import parse_names, thresholds
    from converter.config import load_config
    from converter.model_inputs import parse_inputs
    from converter.model_outputs import parse_outputs
    from converter.pipeline import ConvertRequest
    from converter.registry import resolve_tracking_uri
    from runtime import formats

    cfg = load_config(args.config)
    try:
        if args.formats:
            fmts, explicit = formats.parse_list(args.formats), True
        else:
            fmts, explicit = list(cfg.convert.formats or formats.DEFAULT_IDS), False
    except ValueError as e:
        raise ConverterError(f"--formats: {e}") from None
    pre = preprocess_overrides(args)
    parse_outputs(args.outputs)  # refuse a malformed flag before touching the registry
    parse_inputs(args.inputs)
    parse_names(args.classes, "--classes")
    parse_names(args.drivable, "--drivable")
    score = args.score_threshold if args.score_threshold is not None else cfg.convert.score_threshold
    iou = args.iou_threshold if args.iou_threshold is not None else cfg.convert.iou_threshold
    thresholds(score, iou)
    tol = dict(cfg.tolerance)
    for item in args.tolerance:
        fmt, sep, val = item.partition("=")
        try:
            formats.get(fmt)
            tol[fmt] = float(val)
        except ValueError as e:
            raise ConverterError(f"--tolerance {item!r}: expected FORMAT=NUMBER ({e})") from None
        if not sep:
            raise ConverterError(f"--tolerance {item!r}: expected FORMAT=NUMBER")
    if args.calibration is not None and not args.calibration.is_dir():
        raise ConverterError(f"--calibration {args.calibration}: not a directory (make one with rc-calibrate)")
    if args.samples is not None and not args.samples.exists():
        raise ConverterError(f"--samples {args.samples}: no such file or folder")
    named_int8 = [f for f in fmts if formats.get(f).needs_calibration] if explicit and args.formats != "all" else []
    if named_int8 and args.calibration is None:  # asked for by name: bad usage, refused before any work
        raise ConverterError(f"--formats {','.join(named_int8)} calibrate on real frames: pass --calibration DIR "
                             "(make one with rc-calibrate)")
    return ConvertRequest(
        signer=_signer(args),
        formats=fmts,
        explicit_formats=explicit,
        tracking_uri=resolve_tracking_uri(args.tracking_uri, cfg.model.tracking_uri),
        name=args.name or os.environ.get("RC_MODEL_NAME") or cfg.model.name,
        version=args.version,
        alias=args.alias,
        bundle=args.bundle,
        output_root=args.output or Path(cfg.convert.output),
        preprocess_overrides=pre,
        outputs=args.outputs or "",
        classes=args.classes,
        drivable=args.drivable,
        score_threshold=score,
        max_detections=_positive(args.max_detections, "--max-detections"),
        iou_threshold=iou,
        inputs=args.inputs or "",
        input_shapes=args.input_shape or "",
        custom_objects=args.custom_objects,
        model_file=args.model_file,
        model_class=args.model_class,
        samples_path=args.samples,
        n_samples=args.n_samples or cfg.convert.samples,
        tolerance=tol,
        calibration=args.calibration,
        int8_limits=_int8_limits(cfg.int8) if args.calibration is not None else None,
        task_gates=_task_gates(cfg.parity),
        options=BuildOptions(opset=args.opset or cfg.convert.opset, trt_workspace_mb=cfg.convert.trt_workspace_mb),
        log_to_mlflow=not args.no_log and args.bundle is None,
        allow_upgrade=args.allow_upgrade,
        force=args.force,
    )


def _model_label(args: argparse.Namespace, req: Any) -> str | None:
    if args.bundle is not None:
        return str(args.bundle)
    name = getattr(req, "name", None) or args.name
    which = f" v{args.version}" if args.version else f" @{args.alias}" if args.alias else ""
    return f"{name}{which}" if name else None


def _int8_limits(values: dict[str, float]) -> Any:
    from calibration.conversion import Int8Limits

    try:
        return Int8Limits(**values)
    except (TypeError, ValueError) as e:
        raise ConverterError(f"config [int8]: {e}") from None


def _signer(args: argparse.Namespace) -> Any:
    """The loaded signing key (checked before any work), or None. ``--bundle`` never signs: it rewrites
    a bundle that is the user's own, and its signer's key is not on the car."""
    from converter.signing import load_signer, signing_key_path

    if args.bundle is not None:
        if args.sign:
            raise ConverterError("--sign signs a new bundle converted from the registry (--version/--alias); "
                                 "--bundle extends an existing bundle, which is never re-signed in place")
        return None
    path = signing_key_path(args.sign)
    return load_signer(path) if path else None


def _positive(v: int | None, flag: str) -> int | None:
    if v is not None and v < 1:
        raise ConverterError(f"{flag} {v} must be >= 1")
    return v


def _task_gates(section: dict[str, Any]) -> Any:
    from converter.task_parity import TaskGates

    return TaskGates.from_config(section) if section else None


def main(argv: list[str] | None = None) -> int:
    """``convert-model`` (console script): convert a registered model version, or extend a bundle with
    ``--bundle``, then print the summary table (or ``--json``). Returns the exit status: 0 every
    requested format built and verified, 1 some failed (the rest are built), 2 bad usage or input
    (nothing written; also an MLflow 401/403), 130 interrupted. Unexpected errors print one line
    (the traceback with ``--debug``), never a bare traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        _setup_logging(args.verbose)
        from rich.markup import escape

        from converter.report import ConsoleUI, print_json, render_table
    except ModuleNotFoundError as e:  # e.g. on the car, whose venv has only the jetson extra
        sys.stderr.write(f"convert-model: {e}: it needs the converter extra (pip install '.[converter]'); on the car, "
                         "rc-runtime builds and caches TensorRT engines from the bundle's ONNX itself "
                         "(rc-runtime --config /etc/rc-car/runtime.toml --check does it without driving)\n")
        return EXIT_USAGE
    from runtime.manifest import BundleError

    ui = ConsoleUI(quiet=args.json)
    req = None
    try:
        req = _request(args)
        if req.n_samples < 1:
            raise ConverterError("--n-samples must be at least 1")
        if req.bundle is not None:
            from converter.pipeline import extend_bundle

            summary = extend_bundle(req, ui)
        else:
            from converter.pipeline import convert_from_registry

            summary = convert_from_registry(req, ui)
    except (ConverterError, BundleError, OSError) as e:
        # Errors are shown even with --json (whose console is otherwise quiet), on stderr.
        errors = ConsoleUI().console
        errors.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        ui.console.print("[bold red]interrupted[/]: nothing was written")
        return 130
    except Exception as e:  # the last line of defence: one line, never a traceback
        from converter.cli_guard import report_unexpected

        return report_unexpected("convert-model", e, args.debug or args.verbose >= 1, ui.current,
                                 _model_label(args, req), getattr(req, "tracking_uri", None))
    if args.json:
        print_json(summary)
    else:
        render_table(summary)
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
