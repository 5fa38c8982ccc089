"""What each model output means, and how it is decoded into that meaning.

Meanings: ``steering`` and ``throttle`` (commands, decoded into one value each), ``other`` (carried,
never driven), ``segmentation`` and ``detection`` (perception outputs, decoded by their kind and
only ever turned into commands by a perception pilot or the safety layer).

From, in order: the ``--outputs`` flag (it replaces the tag), the version's ``edge.outputs`` tag,
then perception outputs by the run's ``task_type`` and their shapes
(:mod:`converter.perception_outputs`), donkeycar's own output names (donkeycar/parts/keras.py),
names containing steer/angle or throttle/speed for single-value outputs, then "a model's only
single-value output is steering". Any other output of more than one value is refused naming the
kind it looks like (a segmentation map, a detection head, class scores) and what to pass; a
steering decoder is never suggested for a map, a head or class scores, and nothing is ever
guessed into a steering value.

Flag and tag syntax: comma-separated ``NAME=MEANING[:DECODER]``. For steering/throttle DECODER is
one of ``runtime.decode``'s table, each reading its own fields (``Decoder.from_flag``):
``scalar[:GAIN[:BIAS]]``, ``bins:LO:HI[:argmax|expectation]``, ``component:INDEX[:GAIN[:BIAS]]``,
``tanh[:GAIN[:BIAS]]``. Perception outputs take ``runtime.perception``'s kinds with ``:key=value``
fields (``PerceptionDecoder.from_flag``)::

    NAME=segmentation[:layout=NCHW|NHWC][:activation=logits|softmax|sigmoid]
    NAME=detection:boxes[:scores=S][:labels=L][:box_format=xyxy|xywh|cxcywh][:normalized][:nms=graph|runtime]
    NAME=detection:yolo[:layout=CN|NC][:objectness]
    NAME=detection                      (boxes or yolo, told by the output's shape)

each also taking ``classes=a|b``, and detections ``score_threshold=``/``iou_threshold=``, for one
output; otherwise class names come from ``--classes`` (else tag ``edge.classes``, else the model),
drivable classes from ``--drivable`` (else tag ``edge.drivable``, else the one class named like a
road), thresholds from ``--score-threshold``/``--iou-threshold`` (0.5/0.45), the input size of
pixel boxes from the image input (see :mod:`converter.class_names`). Or JSON ``{"NAME":
"MEANING"}``, ``{"NAME": {"meaning": ..., "decode": {...}}}`` or a list of such objects for a
tensor carrying two values.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from converter.class_names import PerceptionContext
from converter.errors import ConverterError
from converter.output_wants import Want
from converter.perception_outputs import companions, complete, recognise
from runtime.manifest import MEANINGS, BundleError, OutputSpec
from runtime.manifest.outputs import PERCEPTION_MEANINGS
from runtime.perception.kinds import MAX_VECTOR_VALUES, looks_like

log = logging.getLogger(__name__)

OUTPUTS_TAG = "edge.outputs"
_ALIASES = {"steering": ("steer", "angle"), "throttle": ("throttle", "speed", "accel")}
# donkeycar's categorical throttle: bin i is i * R / N (linear_unbin with offset 0), R being
# cfg.MODEL_CATEGORICAL_MAX_THROTTLE_RANGE (0.8 in donkeycar's config template).
DONKEYCAR_THROTTLE_RANGE = 0.8

__all__ = ["OUTPUTS_TAG", "Want", "parse_outputs", "resolve_outputs"]


def parse_outputs(text: str | None, where: str = "--outputs") -> list[Want]:
    """Flag or tag text -> the requested (name, meaning, decoder) list; ConverterError if malformed.

    Each decoder reads its own fields (``runtime.decode.DECODERS``, ``runtime.perception``'s table);
    a perception decode dict is partial here (classes and sizes are filled in by :func:`resolve_outputs`).
    """
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
        _check_meaning(name.strip(), fields[0], where)
        wants.append(Want(name.strip(), fields[0], _decoder_fields(fields[0], fields[1:], part, where)))
    return wants


def _check_meaning(name: str, meaning: str, where: str) -> None:
    if meaning not in MEANINGS:
        raise ConverterError(f"{where}: output {name!r}: meaning {meaning!r} is not one of {', '.join(MEANINGS)}")


def _decoder_fields(meaning: str, fields: list[str], part: str, where: str) -> dict[str, Any] | None:
    """The decode dict the fields after ``meaning`` describe, read by the decoder of their kind."""
    from runtime.decode import decode_from_flag
    from runtime.perception import perception_decode_from_flag

    try:
        if meaning in PERCEPTION_MEANINGS:
            return perception_decode_from_flag(meaning, fields)
        return decode_from_flag(fields) if fields else None
    except BundleError as e:
        raise ConverterError(f"{where}: in {part.strip()!r}: {e}") from None


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
            _check_meaning(str(name), wants[-1].meaning, where)
    return wants


def resolve_outputs(
    shapes: dict[str, tuple[int, ...]],
    tags: dict[str, str],
    cli: list[Want],
    activations: Mapping[str, str] | None = None,
    context: PerceptionContext | None = None,
) -> list[OutputSpec]:
    """One :class:`OutputSpec` per (output, meaning), decoders checked against ``shapes`` (batch 1).

    ``activations`` (output name -> the Keras activation of the layer making it) lets donkeycar's
    categorical heads be recognised only when they really are softmax, and a segmentation map's
    activation be known. ``context`` carries the run's task, class names, drivable classes,
    thresholds and the image size for perception outputs. A model needs a steering output or a
    perception output. ConverterError names the fix.
    """
    ctx = context or PerceptionContext()
    acts = activations or dict(ctx.activations or {})
    if acts and not ctx.activations:
        from dataclasses import replace

        ctx = replace(ctx, activations=acts)
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
    given = _with_companions([_completed(w, shapes, ctx) for w in wants], names)
    specs = [_spec(w, shapes[w.name]) for w in given]  # what the flag or tag says is checked first
    rest = [n for n in names if n not in {w.name for w in given}]
    found = _with_companions([_completed(w, shapes, ctx) for w in recognise(rest, shapes, ctx, given)], rest)
    mentioned = {w.name for w in given + found}
    for name in names:
        if name not in mentioned:
            found.extend(_recognise(name, shapes[name], names, acts.get(name)))
    specs += [_spec(w, shapes[w.name]) for w in found]
    meanings = [s.meaning for s in specs if s.meaning != "other"]
    if "steering" not in meanings and not set(meanings) & set(PERCEPTION_MEANINGS):
        have = ", ".join(f"{n} {list(shapes[n])}" for n in names)
        raise ConverterError(f"no output means steering, segmentation or detection (outputs: {have}); pass --outputs "
                             + "; or ".join(_suggest(n, shapes[n]) for n in names))
    dup = {m for m in meanings if meanings.count(m) > 1}
    if dup:
        raise ConverterError(f"more than one output means {sorted(dup)}; pass --outputs to say which (others =other)")
    return specs


def _completed(w: Want, shapes: dict[str, tuple[int, ...]], ctx: PerceptionContext) -> Want:
    return complete(w, shapes, ctx) if w.meaning in PERCEPTION_MEANINGS else w


def _with_companions(wants: list[Want], names: list[str]) -> list[Want]:
    """``wants`` plus ``other`` for each output a perception decoder reads that no want mentions yet."""
    mentioned = {w.name for w in wants}
    extra = [n for n in dict.fromkeys(companions(wants)) if n in names and n not in mentioned]
    return wants + [Want(n, "other") for n in extra]


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape[1:])) if len(shape) > 1 else 1


def _is_vector(shape: tuple[int, ...]) -> bool:
    """A (1, N) output a steering decoder may read (N <= MAX_VECTOR_VALUES)."""
    return len(shape) == 2 and _size(shape) <= MAX_VECTOR_VALUES


def _looks_like(name: str, shape: tuple[int, ...]) -> str:
    """What output ``name`` looks like and what to pass, by its shape (runtime.perception.looks_like,
    with the output's name)."""
    return looks_like(shape).replace("NAME=", f"{name}=")


def _suggest(name: str, shape: tuple[int, ...]) -> str:
    """What to pass for output ``name`` by its shape; never a steering decoder for a map, a head or
    class scores."""
    n = _size(shape)
    if n == 1:
        return f"{name}=steering (or throttle, other)"
    if _is_vector(shape):
        return f"{name}=steering:bins:LO:HI (categorical) or {name}=steering:component:INDEX (one element)"
    return f"{name} looks like " + _looks_like(name, shape)


def _recognise(name: str, shape: tuple[int, ...], names: list[str], activation: str | None) -> list[Want]:
    n = _size(shape)
    softmax = activation in (None, "softmax")
    # donkeycar: KerasLinear/KerasMemory n_outputsI, KerasIMU out_I, KerasCategorical/Behavioral
    # angle_out/throttle_out, KerasLSTM model_outputs, Keras3D_CNN outputs, KerasLocalizer zloc.
    if name in ("n_outputs0", "out_0") and n == 1:
        return [Want(name, "steering", {"kind": "scalar"})]
    if name in ("n_outputs1", "out_1") and n == 1:
        return [Want(name, "throttle", {"kind": "scalar"})]
    if name == "angle_out" and _is_vector(shape) and n > 1 and softmax:
        return [Want(name, "steering", {"kind": "bins", "range": [-1.0, 1.0], "method": "argmax"})]
    if name == "throttle_out" and _is_vector(shape) and n > 1 and softmax:
        hi = DONKEYCAR_THROTTLE_RANGE * (n - 1) / n
        log.warning("output %r: donkeycar categorical throttle, %d bins decoded as bin * %.2f / %d (donkeycar's "
                    "MODEL_CATEGORICAL_MAX_THROTTLE_RANGE %.2f); if you trained with another range R pass "
                    "--outputs %s=throttle:bins:0:R*%d/%d", name, n, DONKEYCAR_THROTTLE_RANGE, n,
                    DONKEYCAR_THROTTLE_RANGE, name, n - 1, n)
        return [Want(name, "throttle", {"kind": "bins", "range": [0.0, hi], "method": "argmax"})]
    if name in ("model_outputs", "outputs") and n == 2 and len(shape) == 2:
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
    if not _is_vector(shape):
        raise ConverterError(
            f"output {name!r} {list(shape)} is not a steering or throttle value: it looks like "
            + _looks_like(name, shape) + f" (or set the run param task_type, or tag {OUTPUTS_TAG})"
        )
    raise ConverterError(
        f"cannot tell what output {name!r} (shape {list(shape)}) means (outputs: {names}); pass "
        f"--outputs {','.join(f'{o}=MEANING' for o in names)} (MEANING: steering, throttle or other, with "
        f":DECODER for outputs of more than one value) or set tag {OUTPUTS_TAG}"
    )


def _no_decoder(name: str, meaning: str, shape: tuple[int, ...]) -> str:
    if not _is_vector(shape):
        return (f"output {name!r} ({meaning}) has shape {list(shape)}, not a {meaning} value: it looks like "
                + _looks_like(name, shape))
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
        spec = OutputSpec(w.name, tuple(shape), w.meaning, decode)
        if spec.is_command:  # canonical form (every default written out)
            from runtime.decode import decoder_for

            spec = OutputSpec(w.name, tuple(shape), w.meaning, decoder_for(decode, shape, w.name).to_dict())
        elif w.meaning in PERCEPTION_MEANINGS:
            from runtime.perception import perception_decoder_for

            canonical = perception_decoder_for(w.meaning, decode, shape, w.name).to_dict()
            spec = OutputSpec(w.name, tuple(shape), w.meaning, canonical)
        return spec
    except BundleError as e:
        raise ConverterError(str(e)) from None
