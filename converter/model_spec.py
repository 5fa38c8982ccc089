"""The camera preprocessing for the manifest: the version's ``edge.preprocess`` tag (JSON),
overridden by CLI flags, checked against the model's input size. Inputs' roles are in
:mod:`converter.model_inputs`, outputs' meanings and decoders in :mod:`converter.model_outputs`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from converter.errors import ConverterError
from runtime.manifest import BundleError, PreprocessSpec

log = logging.getLogger(__name__)

PREPROCESS_TAG = "edge.preprocess"


def resolve_preprocess(
    tags: dict[str, str],
    overrides: dict[str, Any],
    input_hw: tuple[int | None, int | None],
    model_rescales: bool,
    channels: int = 3,
    pixel_rescaler: str | None = None,
) -> tuple[PreprocessSpec, str]:
    """(spec, where it came from). Fails when the spec does not produce the model's input size.

    ``input_hw`` is the model's (H, W) after the crop; ``None`` entries (a dynamic image size) must
    be fixed by ``--input-size`` or the tag's width/height. ``channels`` 1 means a grayscale pilot
    (donkeycar ``IMAGE_DEPTH = 1``): the colour defaults to GRAY. ``pixel_rescaler`` names the
    model's leading ``Rescaling`` layer, if any: a scale other than 1 from a flag or the tag would
    then scale the pixels twice, and is refused (:class:`ConverterError`).
    """
    base: dict[str, Any] = {}
    origin = "defaults"
    if PREPROCESS_TAG in tags:
        try:
            base = json.loads(tags[PREPROCESS_TAG])
        except json.JSONDecodeError as e:
            raise ConverterError(f"model version tag {PREPROCESS_TAG} is not JSON ({e}); fix the tag") from None
        origin = f"tag {PREPROCESS_TAG}"
    h, w = input_hw
    dynamic = h is None or w is None
    if dynamic and not ({"width", "height"} <= (set(base) | set(overrides))):
        raise ConverterError(
            "the model takes images of any size; say which the car sends: --input-size WIDTHxHEIGHT "
            f"(e.g. 160x120) or width/height in tag {PREPROCESS_TAG}"
        )
    if w is not None:
        base.setdefault("width", w)
    if h is not None:
        base.setdefault("height", h + int(base.get("crop_top", overrides.get("crop_top", 0))))
    if channels == 1:
        base.setdefault("color", "GRAY")
    if model_rescales and "scale" not in base and "scale" not in overrides:
        base["scale"] = 1.0  # the model divides by 255 itself: feed it raw pixel values
    if overrides:
        base.update(overrides)
        origin += " + command line" if origin != "defaults" else ""
        origin = "command line" if origin == "defaults" else origin
    base["model_rescales"] = model_rescales
    scale = float(base.get("scale", 1.0))
    if pixel_rescaler and scale != 1.0:
        where = "--scale" if "scale" in overrides else f"tag {PREPROCESS_TAG}"
        raise ConverterError(
            f"the model rescales pixels itself (layer {pixel_rescaler!r}) but {where} scales them too "
            f"(scale {scale:.6g}): the car would scale them twice; drop that scale (the car then feeds raw 0..255 pixels)"
        )
    try:
        spec = PreprocessSpec.from_dict(base)
    except BundleError as e:
        raise ConverterError(f"preprocessing: {e}") from None
    if not dynamic and spec.input_hw != (h, w):
        raise ConverterError(
            f"preprocessing makes {spec.input_hw[0]}x{spec.input_hw[1]} (HxW) inputs but the model takes {h}x{w}; "
            "fix --input-size/--crop-top or the edge.preprocess tag"
        )
    if spec.channels != channels:
        raise ConverterError(f"preprocessing makes {spec.color} ({spec.channels} channel(s)) but the model takes "
                             f"{channels}; pass --color {'GRAY' if channels == 1 else 'RGB'} or fix tag {PREPROCESS_TAG}")
    if origin == "defaults":
        log.warning(
            "no %s tag on this version and no preprocessing flags: assuming %s, scale %.6g, no crop",
            PREPROCESS_TAG, spec.color, spec.scale,
        )
    return spec, origin
