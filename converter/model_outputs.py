"""What each model output means (steering, throttle, other) and how it is decoded into that value.

From, in order: the ``--outputs`` flag (it replaces the tag), the version's ``edge.outputs`` tag,
donkeycar's own output names (donkeycar/parts/keras.py), then names containing steer/angle or
throttle/speed for single-value outputs, then "a model's only single-value output is steering".
A steering or throttle output that is not one value needs a decoder; without one it is refused
naming the output, its shape and the flag. Nothing is ever guessed into a steering value.

Flag and tag syntax: comma-separated ``NAME=MEANING[:DECODER]`` with DECODER one of
``scalar[:GAIN[:BIAS]]``, ``bins:LO:HI[:argmax|expectation]``, ``component:INDEX[:GAIN[:BIAS]]``;
or JSON ``{"NAME": "MEANING"}``, ``{"NAME": {"meaning": ..., "decode": {...}}}`` or a list of such
objects for a tensor carrying two values.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from converter.errors import ConverterError
from runtime.manifest import MEANINGS, BundleError, OutputSpec

log = logging.getLogger(__name__)

OUTPUTS_TAG = "edge.outputs"
_ALIASES = {"steering": ("steer", "angle"), "throttle": ("throttle", "speed", "accel")}
# donkeycar's categorical throttle: bin i is i * R / N (linear_unbin with offset 0), R being
# cfg.MODEL_CATEGORICAL_MAX_THROTTLE_RANGE (0.8 in donkeycar's config template).
DONKEYCAR_THROTTLE_RANGE = 0.8


@dataclass(frozen=True)
class Want:
    """One requested (output, meaning[, decoder])."""

    name: str
    meaning: str
    decode: dict[str, Any] | None = None


def parse_outputs(text: str | None, where: str = "--outputs") -> list[Want]:
    """Flag or tag text -> the requested (name, meaning, decoder) list; ConverterError if malformed."""
    if not text or not text.strip():
        return []
    text = text.strip()
    if text.startswith("{"):
        return _from_json(text, where)
    wants = []
    for part in text.split(","):
        name, sep, rest = part.partition("=")
        fields = [f.strip() for f in rest.split(":")]
        if not sep or not name.strip() or not fields[0]:
            raise ConverterError(f"{where} {text!r}: expected NAME=MEANING[:DECODER], e.g. angle_out=steering:bins:-1:1")
        wants.append(Want(name.strip(), fields[0], _decoder_fields(fields[1:], part, where)))
    return wants


def _decoder_fields(fields: list[str], part: str, where: str) -> dict[str, Any] | None:
    if not fields:
        return None
    kind, args = fields[0], fields[1:]
    try:
        nums = [float(a) for a in args if a not in ("argmax", "expectation")]
        if kind == "scalar" and len(args) <= 2:
            return {"kind": "scalar", "gain": nums[0] if nums else 1.0, "bias": nums[1] if len(nums) > 1 else 0.0}
        if kind == "bins" and len(args) in (2, 3):
            method = args[2] if len(args) == 3 else "argmax"
            return {"kind": "bins", "range": [float(args[0]), float(args[1])], "method": method}
        if kind == "component" and 1 <= len(args) <= 3:
            return {"kind": "component", "index": int(args[0]), "gain": nums[1] if len(nums) > 1 else 1.0,
                    "bias": nums[2] if len(nums) > 2 else 0.0}
    except ValueError:
        pass
    raise ConverterError(
        f"{where}: cannot read decoder in {part!r}; use scalar[:GAIN[:BIAS]], bins:LO:HI[:argmax|expectation] "
        "or component:INDEX[:GAIN[:BIAS]]"
    )


def _from_json(text: str, where: str) -> list[Want]:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConverterError(f"{where} is not JSON ({e}); fix it") from None
    if not isinstance(raw, dict):
        raise ConverterError(f"{where}: expected a JSON object {{output name: meaning}}")
    wants = []
    for name, v in raw.items():
        for item in v if isinstance(v, list) else [v]:
            if isinstance(item, str):
                wants.append(Want(str(name), item))
            elif isinstance(item, dict) and "meaning" in item:
                wants.append(Want(str(name), str(item["meaning"]), item.get("decode")))
            else:
                raise ConverterError(f"{where}: output {name!r}: expected a meaning or {{'meaning': ..., 'decode': ...}}")
    return wants


def resolve_outputs(
    shapes: dict[str, tuple[int, ...]],
    tags: dict[str, str],
    cli: list[Want],
    activations: dict[str, str] | None = None,
) -> list[OutputSpec]:
    """One :class:`OutputSpec` per (output, meaning), decoders checked against ``shapes`` (batch 1).

    ``activations`` (output name -> the Keras activation of the layer making it) lets donkeycar's
    categorical heads be recognised only when they really are softmax. ConverterError names the fix.
    """
    names = list(shapes)
    wants = cli or parse_outputs(tags.get(OUTPUTS_TAG), f"tag {OUTPUTS_TAG}")
    unknown = sorted({w.name for w in wants} - set(names))
    if unknown:
        positional = all(n.startswith("output_") for n in names)
        why = " (a SavedModel export names its outputs by position)" if positional else ""
        raise ConverterError(
            f"output mapping names {unknown}, but the model's outputs are {names}{why}; pass "
            f"--outputs {','.join(f'{n}=MEANING' for n in names)} or fix tag {OUTPUTS_TAG}"
        )
    mentioned = {w.name for w in wants}
    for name in names:
        if name not in mentioned:
            wants.extend(_recognise(name, shapes[name], names, shapes, (activations or {}).get(name)))
    specs = [_spec(w, shapes[w.name]) for w in wants]
    meanings = [s.meaning for s in specs if s.meaning != "other"]
    if "steering" not in meanings:
        have = ", ".join(f"{n} {list(shapes[n])}" for n in names)
        raise ConverterError(f"no output means steering (outputs: {have}); pass --outputs NAME=steering[:DECODER]")
    dup = {m for m in meanings if meanings.count(m) > 1}
    if dup:
        raise ConverterError(f"more than one output means {sorted(dup)}; pass --outputs to say which (others =other)")
    return specs


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape[1:])) if len(shape) > 1 else 1


def _recognise(name: str, shape: tuple[int, ...], names: list[str], shapes: dict[str, tuple[int, ...]],
               activation: str | None) -> list[Want]:
    n = _size(shape)
    softmax = activation in (None, "softmax")
    # donkeycar: KerasLinear/KerasMemory n_outputsI, KerasIMU out_I, KerasCategorical/Behavioral
    # angle_out/throttle_out, KerasLSTM model_outputs, Keras3D_CNN outputs, KerasLocalizer zloc.
    if name in ("n_outputs0", "out_0") and n == 1:
        return [Want(name, "steering", {"kind": "scalar"})]
    if name in ("n_outputs1", "out_1") and n == 1:
        return [Want(name, "throttle", {"kind": "scalar"})]
    if name == "angle_out" and n > 1 and softmax:
        return [Want(name, "steering", {"kind": "bins", "range": [-1.0, 1.0], "method": "argmax"})]
    if name == "throttle_out" and n > 1 and softmax:
        hi = DONKEYCAR_THROTTLE_RANGE * (n - 1) / n
        log.warning("output %r: donkeycar categorical throttle, %d bins decoded as bin * %.2f / %d (donkeycar's "
                    "MODEL_CATEGORICAL_MAX_THROTTLE_RANGE %.2f); if you trained with another range R pass "
                    "--outputs %s=throttle:bins:0:R*%d/%d", name, n, DONKEYCAR_THROTTLE_RANGE, n,
                    DONKEYCAR_THROTTLE_RANGE, name, n - 1, n)
        return [Want(name, "throttle", {"kind": "bins", "range": [0.0, hi], "method": "argmax"})]
    if name in ("model_outputs", "outputs") and n == 2:
        return [Want(name, "steering", {"kind": "component", "index": 0}),
                Want(name, "throttle", {"kind": "component", "index": 1})]
    if name == "zloc":
        return [Want(name, "other")]
    low = name.lower()
    hits = [m for m, keys in _ALIASES.items() if any(k in low for k in keys)]
    if len(hits) == 1 and n == 1:
        return [Want(name, hits[0], {"kind": "scalar"})]
    if len(names) == 1 and n == 1:
        log.warning("single output %r taken as steering (set tag %s to say otherwise)", name, OUTPUTS_TAG)
        return [Want(name, "steering", {"kind": "scalar"})]
    if len(hits) == 1:
        raise ConverterError(_no_decoder(name, hits[0], shape))
    raise ConverterError(
        f"cannot tell what output {name!r} (shape {list(shape)}) means (outputs: {names}); pass "
        f"--outputs {','.join(f'{o}=MEANING' for o in names)} (MEANING: steering, throttle or other, with "
        f":DECODER for outputs of more than one value) or set tag {OUTPUTS_TAG}"
    )


def _no_decoder(name: str, meaning: str, shape: tuple[int, ...]) -> str:
    return (f"output {name!r} ({meaning}) has shape {list(shape)}, not a single value, and no decoder; pass "
            f"--outputs {name}={meaning}:bins:LO:HI for a categorical output or {name}={meaning}:component:INDEX "
            f"for one element (or set tag {OUTPUTS_TAG})")


def _spec(w: Want, shape: tuple[int, ...]) -> OutputSpec:
    if w.meaning not in MEANINGS:
        raise ConverterError(f"output {w.name!r}: meaning {w.meaning!r} is not one of {', '.join(MEANINGS)}")
    decode = dict(w.decode) if w.decode else None
    if decode is None:
        if w.meaning != "other" and _size(shape) != 1:
            raise ConverterError(_no_decoder(w.name, w.meaning, shape))
        decode = {"kind": "scalar"}
    if decode.get("kind") == "bins":
        decode.setdefault("bins", _size(shape))
    try:
        from runtime.decode import decoder_for

        spec = OutputSpec(w.name, tuple(shape), w.meaning, decode)
        if w.meaning != "other":  # canonical form (every default written out)
            spec = OutputSpec(w.name, tuple(shape), w.meaning, decoder_for(decode, shape, w.name).to_dict())
        return spec
    except BundleError as e:
        raise ConverterError(str(e)) from None
