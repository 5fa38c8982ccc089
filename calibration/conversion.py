"""What ``convert-model`` calls for INT8 builds: load a set for a bundle's preprocessing, measure
the cost of a build on its held-out frames, and judge it against the ``[int8]`` limits.

A set made with another preprocessing is refused, never re-preprocessed: calibrating on frames
the car never sees is the classic silent INT8 accuracy loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calibration.cost import STEERING_DIFF, Int8Limits, LimitsError, int8_cost, over_limits
from calibration.set_format import (
    MANIFEST_FILE,
    SetFormatError,
    manifest_spec,
    read_frames,
    read_manifest,
    spec_line,
    specs_match,
)
from runtime.manifest import PreprocessSpec, sha256_file
from runtime.preprocess import preprocess_batch

__all__ = [
    "STEERING_DIFF", "CalibrationData", "CalibrationError", "Int8Limits", "LimitsError",
    "int8_cost", "load_for_conversion", "over_limits",
]


class CalibrationError(ValueError):
    """A calibration set that is missing, damaged or made for another preprocessing (one line)."""


@dataclass
class CalibrationData:
    path: Path
    sha256: str  # of calibration.json, which holds the frames' own sha256: identifies the whole set
    calib: np.ndarray  # (N, H, W, 3) float32, preprocessed by runtime.preprocess per the spec
    heldout: np.ndarray  # (M, H, W, 3) float32, frames never used for calibration


def load_for_conversion(path: Path, spec: PreprocessSpec) -> CalibrationData:
    """The set at ``path``, preprocessed per ``spec`` (the bundle's). Refuses a set recorded with
    another preprocessing, or with no calibration or no held-out frames."""
    path = Path(path)
    try:
        manifest = read_manifest(path)
        set_spec = manifest_spec(path, manifest)
        if not specs_match(set_spec, spec):
            raise CalibrationError(
                f"calibration set {path} was made for preprocessing [{spec_line(set_spec)}] but the model "
                f"takes [{spec_line(spec)}]; rebuild it with rc-calibrate --bundle <this bundle>"
            )
        frames = read_frames(path, manifest, set_spec)
    except SetFormatError as e:
        raise CalibrationError(str(e)) from None
    if len(frames["calibration"]) == 0 or len(frames["heldout"]) == 0:
        raise CalibrationError(
            f"calibration set {path} has {len(frames['calibration'])} calibration and {len(frames['heldout'])} "
            "held-out frames; both are needed (rebuild with more frames or --heldout > 0)"
        )
    return CalibrationData(
        path=path,
        sha256=sha256_file(path / MANIFEST_FILE),
        calib=preprocess_batch(frames["calibration"], spec),
        heldout=preprocess_batch(frames["heldout"], spec),
    )
