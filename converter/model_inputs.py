"""Each model input's role (image, image_sequence, memory, imu, behavior, wheel_speed) for the manifest.

Roles come from, in order: the ``--inputs`` flag, the version's ``edge.inputs`` tag (JSON), then
donkeycar's own input names (``img_in``, ``imu_in``, ``mem_in``, ``behavior_in``; see
donkeycar/parts/keras.py; each role's spec lists its own), then "a model with one rank-4 input takes the camera image". Anything
else is refused naming the input and the flag: the runtime must know what to feed every input.
The car has one camera: a model with two image inputs (a stereo pair) is refused, whatever the
flags say (:func:`check_one_camera`). A vector role's ``:key=value`` args are parsed by its spec
(:attr:`runtime.roles.RoleSpec.parse`); the camera roles' parse is here, as it resolves the
camera preprocessing (--input-size, --crop-top, --color).

Syntax, flag and tag alike: ``NAME=ROLE`` entries separated by commas, with optional
``:key=value`` parts (``labels=a|b``, ``order=ax|ay|...``, ``layout=NCHW``), or a JSON object
``{"NAME": "ROLE"}`` / ``{"NAME": {"role": ..., "labels": [...], ...}}``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from converter.errors import ConverterError
from runtime.manifest import (
    IMAGE,
    IMAGE_SEQUENCE,
    ROLE_NAMES,
    BundleError,
    InputSpec,
    PreprocessSpec,
)
from runtime.roles import DONKEYCAR_NAMES, ROLES, RoleError

log = logging.getLogger(__name__)

INPUTS_TAG = "edge.inputs"
# donkeycar's input layer names -> role (rank 5 img_in is a sequence: KerasLSTM, Keras3D_CNN).
DONKEYCAR_INPUTS = DONKEYCAR_NAMES
_FIX = "pass --inputs NAME=ROLE (roles: " + ", ".join(ROLE_NAMES) + f") or set tag {INPUTS_TAG}"


def parse_inputs(text: str | None, where: str = "--inputs") -> dict[str, dict[str, Any]]:
    """``--inputs`` / tag text -> {input name: {"role": ..., other keys}}; ConverterError if malformed."""
    if not text or not text.strip():
        return {}
    text = text.strip()
    if text.startswith("{"):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConverterError(f"{where} is not valid JSON ({e}); fix it") from None
        if not isinstance(raw, dict):
            raise ConverterError(f"{where}: expected a JSON object {{input name: role}}")
        return {str(k): ({"role": v} if isinstance(v, str) else dict(v)) for k, v in raw.items()}
    out: dict[str, dict[str, Any]] = {}
    for part in text.split(","):
        name, sep, rest = part.partition("=")
        fields = rest.split(":")
        if not sep or not name.strip() or not fields[0].strip():
            raise ConverterError(f"{where} {text!r}: expected NAME=ROLE[:key=value...], e.g. imu_in=imu")
        entry: dict[str, Any] = {"role": fields[0].strip()}
        for kv in fields[1:]:
            k, eq, v = kv.partition("=")
            if not eq:
                raise ConverterError(f"{where}: {kv!r} in {part!r} is not key=value (labels=a|b, order=..., layout=...)")
            entry[k.strip()] = v.split("|") if k.strip() in ("labels", "order") else v.strip()
        out[name.strip()] = entry
    return out


def check_one_camera(shapes: dict[str, tuple[int | None, ...]], tags: dict[str, str],
                     cli: dict[str, dict[str, Any]]) -> None:
    """ConverterError (one line) when more than one input takes camera frames: inputs given the role
    ``image``/``image_sequence`` by the flag or tag, and every input of rank 4 or 5 (no other role
    has that rank). The car has one camera, and feeding one frame to both eyes of a stereo model is
    a wrong car, not a fix."""
    given = parse_inputs(tags.get(INPUTS_TAG), f"tag {INPUTS_TAG}") if not cli else dict(cli)
    cams = [n for n, shape in shapes.items()
            if (given.get(n) or {}).get("role") in (IMAGE, IMAGE_SEQUENCE) or len(shape) in (4, 5)]
    if len(cams) > 1:
        have = ", ".join(f"{n} {_show(shapes[n])}" for n in cams)
        raise ConverterError(
            f"{len(cams)} inputs take a camera image ({have}), but this car has one camera and would feed the same "
            "frame to each; convert a model with one image input (a stereo or multi-camera model cannot drive it)"
        )


def resolve_inputs(
    shapes: dict[str, tuple[int | None, ...]],
    tags: dict[str, str],
    cli: dict[str, dict[str, Any]],
    preprocess: PreprocessSpec,
    default_layout: str = "NHWC",
) -> list[InputSpec]:
    """One :class:`InputSpec` per model input, shapes fixed (batch 1); ConverterError naming the fix.

    ``shapes`` are the model's own (batch first, ``None`` where open); ``preprocess`` is the
    camera's spec (size already resolved, see :func:`converter.model_spec.resolve_preprocess`).
    """
    given = parse_inputs(tags.get(INPUTS_TAG), f"tag {INPUTS_TAG}") if not cli else {}
    given.update(cli)
    check_one_camera(shapes, tags, cli)
    unknown = set(given) - set(shapes)
    if unknown:
        raise ConverterError(f"--inputs/{INPUTS_TAG} name {sorted(unknown)}, but the model's inputs are {list(shapes)}")
    specs = []
    for name, shape in shapes.items():
        entry = dict(given.get(name) or {})
        role = entry.pop("role", None) or _recognise(name, shape, len(shapes))
        if role is None:
            raise ConverterError(f"cannot tell what the car should feed input {name!r} (shape {_show(shape)}); {_FIX}")
        if role not in ROLE_NAMES:
            raise ConverterError(f"input {name!r}: unknown role {role!r}; roles are {', '.join(ROLE_NAMES)}")
        specs.append(_spec(name, role, shape, entry, preprocess, default_layout))
    return specs


def _recognise(name: str, shape: tuple[int | None, ...], n_inputs: int) -> str | None:
    role = DONKEYCAR_INPUTS.get(name)
    if role == IMAGE and len(shape) == 5:
        return IMAGE_SEQUENCE
    if role is not None:
        return role
    if n_inputs == 1 and len(shape) == 4:
        return IMAGE  # the classic pilot: one camera image, whatever it is called
    return None


def _spec(name: str, role: str, shape: tuple[int | None, ...], entry: dict[str, Any], pre: PreprocessSpec,
          default_layout: str) -> InputSpec:
    where = f"input {name!r} (shape {_show(shape)}, role {role})"
    try:
        if ROLES[role].is_image:
            return _image_spec(name, role, shape, entry, pre, default_layout, where)
        parse = ROLES[role].parse
        assert parse is not None  # every role but the camera ones parses its own args
        return InputSpec(name=name, dtype="float32", layout=ROLES[role].layouts[0], role=role,
                         **parse(name, shape, entry))
    except (BundleError, RoleError) as e:
        raise ConverterError(str(e)) from None


def _image_spec(name: str, role: str, shape: tuple[int | None, ...], entry: dict[str, Any], pre: PreprocessSpec,
                default_layout: str, where: str) -> InputSpec:
    extra = set(entry) - {"layout", "length"}
    if extra:
        raise ConverterError(f"{where}: unknown keys {sorted(extra)}")
    rank = 5 if role == IMAGE_SEQUENCE else 4
    if len(shape) != rank:
        raise ConverterError(f"{where}: a {role} input has rank {rank}, this one {len(shape)}; {_FIX}")
    length = None
    if role == IMAGE_SEQUENCE:
        length = shape[1]
        if length is None:
            raise ConverterError(f"{where}: the sequence length is dynamic; the car must know how many frames to "
                                 "feed: re-export the model with a fixed length (donkeycar SEQUENCE_LENGTH)")
    frame = shape[-3:]
    layout = str(entry.get("layout") or _guess_layout(frame, default_layout))
    if role == IMAGE_SEQUENCE and "T" not in layout:
        layout = layout[0] + "T" + layout[1:]
    hwc = layout.endswith("HWC")
    c = frame[2] if hwc else frame[0]
    hw = (frame[0], frame[1]) if hwc else (frame[1], frame[2])
    if c not in (1, 3):
        raise ConverterError(f"{where}: {c} channels; the camera gives 1 (GRAY) or 3 (RGB/BGR). Pass "
                             f"--inputs {name}={role}:layout=NCHW if the channels come first")
    if c != pre.channels:
        want = "--color GRAY" if c == 1 else "--color RGB (or BGR)"
        raise ConverterError(f"{where}: the model takes {c} channel(s) but the preprocessing makes {pre.color}; "
                             f"pass {want} or fix tag edge.preprocess")
    if None not in hw and tuple(hw) != pre.input_hw:
        raise ConverterError(
            f"{where}: preprocessing makes {pre.input_hw[0]}x{pre.input_hw[1]} (HxW) images but the model takes "
            f"{hw[0]}x{hw[1]}; fix --input-size/--crop-top or the edge.preprocess tag")
    h, w = pre.input_hw
    body = (h, w, c) if hwc else (c, h, w)
    full = (1, *body) if length is None else (1, int(length), *body)
    return InputSpec(name, full, "float32", layout, pre, role=role, length=int(length) if length else None)


def _guess_layout(frame: tuple[int | None, ...], default: str) -> str:
    """NHWC when the last axis is 1 or 3 channels, NCHW when only the first is, else the default."""
    last, first = frame[2] in (1, 3), frame[0] in (1, 3)
    if last and not first:
        return "NHWC"
    if first and not last:
        return "NCHW"
    return default


def image_hw(shapes: dict[str, tuple[int | None, ...]], tags: dict[str, str], cli: dict[str, dict[str, Any]],
             default_layout: str = "NHWC") -> tuple[tuple[int | None, int | None], int] | None:
    """(H, W) and channels of the model's camera input, as far as the model says; None if no image input.

    H and W are ``None`` for a model with a dynamic image size (fixed from --input-size / the tag).
    """
    given = parse_inputs(tags.get(INPUTS_TAG), f"tag {INPUTS_TAG}") if not cli else dict(cli)
    for name, shape in shapes.items():
        role = (given.get(name) or {}).get("role") or _recognise(name, shape, len(shapes))
        if role in (IMAGE, IMAGE_SEQUENCE) and len(shape) in (4, 5):
            frame = shape[-3:]
            layout = str((given.get(name) or {}).get("layout") or _guess_layout(frame, default_layout))
            if layout.endswith("HWC"):
                return (frame[0], frame[1]), int(frame[2] or 3)
            return (frame[1], frame[2]), int(frame[0] or 3)
    return None


def _show(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"
