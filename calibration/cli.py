"""``rc-calibrate``: a calibration set for INT8 builds from what the car's camera really saw.

    rc-calibrate --bundle builds/rc_pilot/v3 --out calib/track-a /data/drives/20261123T101500Z drive2.mp4
    rc-calibrate --input-size 160x120 --crop-top 40 --out calib/hall frames_folder/

Sources: runtime recordings (``rc-runtime --record DIR``; a folder of them counts as one source
each), video files and image folders. Frames are drawn with a seed, spread over each source's
timeline, and a share is held out (in time blocks) to measure what INT8 costs. Use the set with
``convert-model --formats tflite-int8,onnx-int8 --calibration DIR``.

Exit: 0 the set is written (warnings on stderr); 2 bad input (nothing written).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from calibration.make_set import DEFAULT_FRAMES, DEFAULT_HELDOUT, SetRequest, make_set
from calibration.preprocess_flags import add_preprocess_flags, given_flags, preprocess_overrides
from calibration.sampling import DEFAULT_BLOCK
from calibration.set_format import SetFormatError, spec_line
from calibration.sources import SourceError
from runtime.error_line import EXIT_INTERNAL, EXIT_USAGE, report_unexpected
from runtime.manifest import BundleError, PreprocessSpec, load_manifest

log = logging.getLogger("calibration")


def build_parser() -> argparse.ArgumentParser:
    """The ``rc-calibrate`` argument parser."""
    p = argparse.ArgumentParser(prog="rc-calibrate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="+", type=Path, help="recordings, video files, image folders")
    p.add_argument("--out", type=Path, required=True, help="the set's directory (written atomically)")
    p.add_argument("--bundle", type=Path, help="take the preprocessing from this bundle's manifest.json")
    pre = p.add_argument_group("preprocessing, without --bundle (as convert-model's flags)")
    add_preprocess_flags(pre)
    pre.add_argument("--model-rescales", action="store_true", help="the model normalises inside (scale 1)")
    p.add_argument("--frames", type=int, default=DEFAULT_FRAMES,
                   help=f"frames in the set, calibration + held-out (default {DEFAULT_FRAMES})")
    p.add_argument("--heldout", type=float, default=DEFAULT_HELDOUT,
                   help=f"share held out to measure INT8's cost (default {DEFAULT_HELDOUT})")
    p.add_argument("--block", type=int, default=DEFAULT_BLOCK,
                   help=f"consecutive picks per held-out block (default {DEFAULT_BLOCK})")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--force", action="store_true", help="replace an existing set at --out")
    p.add_argument("--json", action="store_true", help="print the set's manifest as JSON on stdout")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    p.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    return p


def resolve_spec(args: argparse.Namespace) -> tuple[PreprocessSpec, dict[str, Any] | None]:
    """The preprocessing (from --bundle, or the flags) and, from a bundle, what it was."""
    flags = given_flags(args)
    if args.model_rescales:
        flags.append("--model-rescales")
    if args.bundle is not None:
        if flags:
            raise SourceError(f"give --bundle or preprocessing flags, not both ({', '.join(flags)} with --bundle)")
        m = load_manifest(args.bundle)
        info = {"path": str(args.bundle.resolve()), "name": m.model.name, "version": m.model.version}
        return m.preprocess, info
    if args.input_size is None:
        raise SourceError("no preprocessing: pass --bundle DIR (recommended) or at least --input-size WxH")
    d = preprocess_overrides(args)
    if args.model_rescales:
        d.setdefault("scale", 1.0)
        d["model_rescales"] = True
    return PreprocessSpec.from_dict(d), None


def main(argv: list[str] | None = None) -> int:
    """``rc-calibrate`` (console script): write a calibration set (see the module). Returns the exit
    status: 0 the set is written (warnings on stderr), 2 bad input (nothing written), 130 interrupted;
    an unexpected error is one line on stderr (the traceback with ``--debug``).
    """
    args = build_parser().parse_args(argv)
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _main(args)
    except Exception as e:  # the last line of defence: one line, never a traceback
        code = EXIT_USAGE if isinstance(e, BundleError | OSError | ValueError) else EXIT_INTERNAL
        return report_unexpected("rc-calibrate", e, args.debug or args.verbose >= 1, code,
                                 "making the calibration set", str(args.bundle) if args.bundle else None)


def _main(args: argparse.Namespace) -> int:
    try:
        spec, bundle = resolve_spec(args)
        # a bundle's inputs: sequence inputs keep each frame's predecessors, recorded inputs their values
        inputs = list(load_manifest(args.bundle).inputs) if args.bundle is not None else []
        result = make_set(SetRequest(
            sources=args.sources, spec=spec, out=args.out, frames=args.frames, heldout=args.heldout,
            seed=args.seed, block=args.block, bundle=bundle, replace=args.force, inputs=inputs,
        ))
    except (SourceError, SetFormatError, BundleError, OSError) as e:
        sys.stderr.write(f"rc-calibrate: error: {e}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("rc-calibrate: interrupted; nothing was written\n")
        return 130
    for w in result.warnings:
        sys.stderr.write(f"rc-calibrate: warning: {w}\n")
    m = result.manifest
    if args.json:
        sys.stdout.write(json.dumps(m, indent=2) + "\n")
    else:
        c = m["counts"]
        sys.stdout.write(
            f"{result.path}: {c['calibration']} calibration + {c['heldout']} held-out frames from "
            f"{c['sources']} source(s), preprocessing [{spec_line(spec)}], frames sha256 {m['frames']['sha256'][:12]}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
