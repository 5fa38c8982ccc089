"""What ``convert-model`` calls for INT8 builds: load a set for a bundle's preprocessing, measure
the cost of a build on its held-out frames, and judge it against the ``[int8]`` limits.

A set made with another preprocessing is refused, never re-preprocessed: calibrating on frames
the car never sees is the classic silent INT8 accuracy loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
from runtime.manifest import Manifest, PreprocessSpec, sha256_file
from runtime.preprocess import image_layout, preprocess_batch

__all__ = [
    "STEERING_DIFF", "CalibrationData", "CalibrationError", "Int8Limits", "LimitsError",
    "int8_cost", "load_for_conversion", "over_limits",
]


class CalibrationError(ValueError):
    """A calibration set that is missing, damaged or made for another preprocessing (one line)."""


@dataclass
class CalibrationData:
    """A set loaded for a conversion. ``calib``/``heldout``: the camera frames as the NHWC image
    input (single-image callers). ``calib_feeds``/``heldout_feeds``: when loaded for a manifest,
    {input name: (N, ...) float32} for EVERY model input, sample i of each belonging together (see
    :func:`model_feeds`); ``feed_sources``: where each input's values came from."""

    path: Path
    sha256: str  # of calibration.json, which holds the frames' own sha256: identifies the whole set
    calib: np.ndarray  # (N, H, W, 3) float32, preprocessed by runtime.preprocess per the spec
    heldout: np.ndarray  # (M, H, W, 3) float32, frames never used for calibration
    calib_feeds: dict[str, np.ndarray] = field(default_factory=dict)
    heldout_feeds: dict[str, np.ndarray] = field(default_factory=dict)
    feed_sources: dict[str, str] = field(default_factory=dict)


def load_for_conversion(
    path: Path, spec: PreprocessSpec, manifest: Manifest | None = None,
    reference_vectors: Mapping[str, np.ndarray] | None = None,
) -> CalibrationData:
    """The set at ``path``, preprocessed per ``spec`` (the bundle's). Refuses a set recorded with
    another preprocessing, or with no calibration or no held-out frames. With ``manifest``, also
    every model input's values (``calib_feeds``/``heldout_feeds``, see :func:`model_feeds`);
    ``reference_vectors`` are the bundle's reference values ``in/<name>`` for non-image inputs the
    set did not record."""
    path = Path(path)
    try:
        set_manifest = read_manifest(path)
        set_spec = manifest_spec(path, set_manifest)
        if not specs_match(set_spec, spec):
            raise CalibrationError(
                f"calibration set {path} was made for preprocessing [{spec_line(set_spec)}] but the model "
                f"takes [{spec_line(spec)}]; rebuild it with rc-calibrate --bundle <this bundle>"
            )
        frames = read_frames(path, set_manifest, set_spec)
    except SetFormatError as e:
        raise CalibrationError(str(e)) from None
    if len(frames["calibration"]) == 0 or len(frames["heldout"]) == 0:
        raise CalibrationError(
            f"calibration set {path} has {len(frames['calibration'])} calibration and {len(frames['heldout'])} "
            "held-out frames; both are needed (rebuild with more frames or --heldout > 0)"
        )
    data = CalibrationData(
        path=path,
        sha256=sha256_file(path / MANIFEST_FILE),
        calib=preprocess_batch(frames["calibration"], spec),
        heldout=preprocess_batch(frames["heldout"], spec),
    )
    if manifest is not None:
        for split in ("calibration", "heldout"):
            feeds, where = model_feeds(frames, split, spec, manifest, reference_vectors or {}, path)
            if split == "calibration":
                data.calib_feeds, data.feed_sources = feeds, where
            else:
                data.heldout_feeds = feeds
    return data


def model_feeds(
    arrays: Mapping[str, np.ndarray], split: str, spec: PreprocessSpec, manifest: Manifest,
    reference_vectors: Mapping[str, np.ndarray], path: Path,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """{input name: (N, ...) float32} for one split of a set, and where each came from.

    - ``image``: the frames, preprocessed in the input's layout.
    - ``image_sequence``: each frame with its predecessors from the same source (``<split>_prev``,
      stored when the set was made for a sequence bundle), oldest first, preprocessed.
    - ``memory``/``imu``/``behavior``: the values the runtime recorded with each frame
      (``<split>_in/<name>``) when the set comes from recordings, else the bundle's reference
      values (``reference.npz`` ``in/<name>``, cycled over the frames).

    Raises :class:`CalibrationError` naming the input and the fix when neither is there, or a
    sequence set lacks the predecessors."""
    frames = arrays[split]
    n = len(frames)
    feeds: dict[str, np.ndarray] = {}
    where: dict[str, str] = {}
    for inp in manifest.inputs:
        if inp.role == "image":
            feeds[inp.name] = preprocess_batch(frames, spec, image_layout(inp.layout)) if n else frames.astype(np.float32)
            where[inp.name] = "frames"
        elif inp.role == "image_sequence":
            t = int(inp.length or 1)
            prev = arrays.get(f"{split}_prev")
            if t > 1 and (prev is None or prev.shape[1] < t - 1):
                raise CalibrationError(
                    f"calibration set {path} has no preceding frames for the {t}-frame sequence input {inp.name!r}; "
                    "rebuild it with rc-calibrate --bundle <this bundle>")
            stacks = np.concatenate([prev[:, prev.shape[1] - (t - 1):], frames[:, None]], 1) if t > 1 and prev is not None \
                else frames[:, None]
            flat = preprocess_batch(stacks.reshape(-1, *frames.shape[1:]), spec, image_layout(inp.layout)) if n \
                else np.zeros((0, *inp.shape[2:]), np.float32)
            feeds[inp.name] = flat.reshape(n, t, *flat.shape[1:])
            where[inp.name] = "frames with their predecessors"
        elif f"{split}_in/{inp.name}" in arrays:
            feeds[inp.name] = np.asarray(arrays[f"{split}_in/{inp.name}"], np.float32).reshape(n, *inp.shape[1:])
            where[inp.name] = "recorded by the runtime"
        elif inp.name in reference_vectors and len(reference_vectors[inp.name]):
            ref = np.asarray(reference_vectors[inp.name], np.float32)
            feeds[inp.name] = ref[np.arange(n) % len(ref)].reshape(n, *inp.shape[1:])
            where[inp.name] = "the bundle's reference values"
        else:
            raise CalibrationError(
                f"no values for input {inp.name!r} ({inp.role}): calibration set {path} was not recorded with it and "
                "the bundle has no reference values; calibrate on a drive recorded by rc-runtime --record")
    return feeds, where
