"""The model's I/O contract for the manifest: preprocessing and what each output means.

Preprocessing comes from the version's ``edge.preprocess`` tag (JSON), overridden by CLI flags;
output meanings from ``edge.outputs`` (JSON {output: meaning}) or the output names themselves.
A guess that could swap steering and throttle is never made: it is an error naming the fix.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from converter.errors import ConverterError
from runtime.manifest import BundleError, PreprocessSpec

log = logging.getLogger(__name__)

PREPROCESS_TAG = "edge.preprocess"
OUTPUTS_TAG = "edge.outputs"
MEANINGS = ("steering", "throttle")
_ALIASES = {"steering": ("steer", "angle"), "throttle": ("throttle", "speed", "accel")}


def resolve_preprocess(
    tags: dict[str, str],
    overrides: dict[str, Any],
    input_hw: tuple[int, int],
    model_rescales: bool,
) -> tuple[PreprocessSpec, str]:
    """(spec, where it came from). Fails when the spec does not produce the model's input size."""
    base: dict[str, Any] = {}
    origin = "defaults"
    if PREPROCESS_TAG in tags:
        try:
            base = json.loads(tags[PREPROCESS_TAG])
        except json.JSONDecodeError as e:
            raise ConverterError(f"model version tag {PREPROCESS_TAG} is not JSON ({e}); fix the tag") from None
        origin = f"tag {PREPROCESS_TAG}"
    h, w = input_hw
    base.setdefault("width", w)
    base.setdefault("height", h + int(base.get("crop_top", overrides.get("crop_top", 0))))
    if model_rescales and "scale" not in base and "scale" not in overrides:
        base["scale"] = 1.0  # the model divides by 255 itself: feed it raw pixel values
    if overrides:
        base.update(overrides)
        origin += " + command line" if origin != "defaults" else ""
        origin = "command line" if origin == "defaults" else origin
    base["model_rescales"] = model_rescales
    try:
        spec = PreprocessSpec.from_dict(base)
    except BundleError as e:
        raise ConverterError(f"preprocessing: {e}") from None
    if spec.input_hw != (h, w):
        raise ConverterError(
            f"preprocessing makes {spec.input_hw[0]}x{spec.input_hw[1]} (HxW) inputs but the model takes {h}x{w}; "
            "fix --input-size/--crop-top or the edge.preprocess tag"
        )
    if origin == "defaults":
        log.warning(
            "no %s tag on this version and no preprocessing flags: assuming %s, scale %.6g, no crop",
            PREPROCESS_TAG, spec.color, spec.scale,
        )
    return spec, origin


def resolve_meanings(output_names: list[str], tags: dict[str, str], cli: dict[str, str]) -> dict[str, str]:
    """{output name: meaning} for every output; steering must be among them."""
    mapping: dict[str, str] = {}
    if OUTPUTS_TAG in tags and not cli:  # --outputs replaces the tag's mapping, it does not merge
        try:
            mapping.update(json.loads(tags[OUTPUTS_TAG]))
        except json.JSONDecodeError as e:
            raise ConverterError(f"model version tag {OUTPUTS_TAG} is not JSON ({e}); fix the tag") from None
    mapping.update(cli)
    unknown = set(mapping) - set(output_names)
    if unknown:
        positional = all(n.startswith("output_") for n in output_names)
        why = " (a SavedModel export names its outputs by position)" if positional else ""
        raise ConverterError(
            f"output mapping names {sorted(unknown)}, but the model's outputs are {output_names}{why}; pass "
            f"--outputs {','.join(f'{n}=MEANING' for n in output_names)} or fix tag {OUTPUTS_TAG}"
        )
    for name in output_names:
        if name in mapping:
            continue
        low = name.lower()
        hits = [m for m, keys in _ALIASES.items() if any(k in low for k in keys)]
        if len(hits) == 1:
            mapping[name] = hits[0]
        elif len(output_names) == 1:
            log.warning("single output %r taken as steering (set tag %s to say otherwise)", name, OUTPUTS_TAG)
            mapping[name] = "steering"
        else:
            raise ConverterError(
                f"cannot tell what output {name!r} means (outputs: {output_names}); pass "
                f"--outputs {','.join(f'{n}=MEANING' for n in output_names)} or set tag {OUTPUTS_TAG}"
            )
    if "steering" not in mapping.values():
        raise ConverterError(f"no output means steering ({mapping}); pass --outputs NAME=steering")
    return {n: mapping[n] for n in output_names}


def parse_outputs_flag(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    out = {}
    for part in text.split(","):
        name, sep, meaning = part.partition("=")
        if not sep or not name.strip() or not meaning.strip():
            raise ConverterError(f"--outputs {text!r}: expected NAME=MEANING[,NAME=MEANING]")
        out[name.strip()] = meaning.strip()
    return out
