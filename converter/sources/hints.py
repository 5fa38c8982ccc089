"""What the flags and the version's tags say about a model whose file does not say it all (PyTorch
modules and ONNX graphs): names for its inputs and outputs, its image size, the class of a state dict."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# torchvision's own detectors keep 100 per image (detections_per_img); the wrapper pads to K
DEFAULT_MAX_DETECTIONS = 100


@dataclass
class SourceHints:
    """What the user or the version's tags say about a model whose file does not say it all."""

    model_class: str | None = None  # --model-class module:attr (state dicts)
    input_names: list[str] = field(default_factory=list)  # --inputs
    input_roles: dict[str, dict[str, Any]] = field(default_factory=dict)  # --inputs: name -> {"role": ..., args}
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # --input-shape NAME=1x1
    output_names: list[str] = field(default_factory=list)  # --outputs / edge.outputs keys, in order
    input_hw: tuple[int, int] | None = None  # from the preprocessing (after crop)
    channels: int = 3
    workdir: Path | None = None  # where exports go (the conversion's temporary folder)
    # K, the fixed number of detections a torchvision-style detector is padded to (--max-detections)
    max_detections: int = DEFAULT_MAX_DETECTIONS


def source_hints(req: Any, tags: dict[str, str], workdir: Path | None) -> SourceHints:
    """``req`` is a :class:`converter.pipeline.ConvertRequest`. Names come from ``--inputs`` /
    ``--outputs`` (else the ``edge.inputs`` / ``edge.outputs`` tags), in the order given; the image
    size from ``--input-size``/``--crop-top`` (else the ``edge.preprocess`` tag); K for a wrapped
    detector from ``req.max_detections`` when the request has one (``--max-detections``), else
    :data:`DEFAULT_MAX_DETECTIONS`."""
    from converter.model_inputs import INPUTS_TAG, parse_inputs
    from converter.model_outputs import OUTPUTS_TAG, parse_outputs

    inputs = parse_inputs(req.inputs) or parse_inputs(tags.get(INPUTS_TAG), f"tag {INPUTS_TAG}")
    outputs = parse_outputs(req.outputs) or parse_outputs(tags.get(OUTPUTS_TAG), f"tag {OUTPUTS_TAG}")
    pre: dict[str, Any] = {}
    if "edge.preprocess" in tags:
        try:
            pre = dict(json.loads(tags["edge.preprocess"]))
        except (json.JSONDecodeError, TypeError, ValueError):
            pre = {}  # resolve_preprocess reports a bad tag with its fix
    pre.update(req.preprocess_overrides)
    hw = None
    if "width" in pre and "height" in pre:
        hw = (int(pre["height"]) - int(pre.get("crop_top", 0)), int(pre["width"]))
    return SourceHints(
        model_class=req.model_class,
        input_names=list(inputs),
        input_roles=inputs,
        input_shapes=parse_input_shapes(getattr(req, "input_shapes", "") or ""),
        output_names=list(dict.fromkeys(w.name for w in outputs)),
        input_hw=hw,
        channels=1 if str(pre.get("color", "RGB")).upper() == "GRAY" else 3,
        workdir=workdir,
        max_detections=int(getattr(req, "max_detections", None) or DEFAULT_MAX_DETECTIONS),
    )


def parse_input_shapes(text: str) -> dict[str, tuple[int, ...]]:
    """``--input-shape NAME=1x1[,NAME=1x8...]`` -> {name: shape}; ConverterError naming the bad part."""
    from converter.errors import ConverterError

    out: dict[str, tuple[int, ...]] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, eq, dims = part.partition("=")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError:
            shape = ()
        if not eq or not name.strip() or not shape or any(d <= 0 for d in shape):
            raise ConverterError(f"--input-shape {part!r}: expected NAME=DIMS with positive dims, batch first, "
                                 "e.g. speed=1x1")
        out[name.strip()] = shape
    return out
