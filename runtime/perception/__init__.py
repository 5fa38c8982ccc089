"""Perception outputs: segmentation maps and detections, decoded by their kind (contract).

A driving pilot's outputs are decoded into steering/throttle values (:mod:`runtime.decode`); a
perception model's outputs are decoded into what they mean, and only a perception *policy*
(:mod:`runtime.pilots`) turns those into commands. One table, one module per kind:

- ``segmentation`` (:mod:`runtime.perception.segmentation`): class scores per pixel, (1, K, H, W)
  or (1, H, W, K), with class names and which classes are drivable -> a drivable mask;
- ``boxes`` (:mod:`runtime.perception.boxes`): detections as boxes + scores (+ class ids) tensors,
  NMS done inside the graph (torchvision detectors, exported NMS) or by the runtime;
- ``yolo`` (:mod:`runtime.perception.yolo`): a YOLO-style head, (1, 4 + K, N) or (1, N, 4 + K)
  (centre x, y, width, height in input pixels, then K class scores), NMS by the runtime.

An output's ``meaning`` says which family it is in (``segmentation`` or ``detection``); its
``decode`` dict names the kind and is checked against the output's shape when the manifest is
read, so a map is never read as a steering value and a steering decoder never reads a map.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtime.perception.base import (
    Detection,
    DetectionDecoder,
    PerceptionDecoder,
    PerceptionError,
    SegmentationResult,
)
from runtime.perception.boxes import BoxesDecoder
from runtime.perception.kinds import looks_like
from runtime.perception.segmentation import SegmentationDecoder
from runtime.perception.yolo import YoloDecoder

# decode kind -> (the output meaning it belongs to, its decoder class)
PERCEPTION_DECODERS: dict[str, type[PerceptionDecoder]] = {
    "segmentation": SegmentationDecoder,
    "boxes": BoxesDecoder,
    "yolo": YoloDecoder,
}
PERCEPTION_MEANINGS = ("segmentation", "detection")

__all__ = [
    "PERCEPTION_DECODERS",
    "PERCEPTION_MEANINGS",
    "BoxesDecoder",
    "Detection",
    "DetectionDecoder",
    "PerceptionDecoder",
    "PerceptionError",
    "SegmentationDecoder",
    "SegmentationResult",
    "YoloDecoder",
    "kinds_of",
    "looks_like",
    "perception_decode_from_flag",
    "perception_decoder_for",
]


def kinds_of(meaning: str) -> list[str]:
    """The decode kinds of ``meaning`` (``segmentation`` -> [segmentation]; ``detection`` -> [boxes, yolo])."""
    return [k for k, c in PERCEPTION_DECODERS.items() if c.meaning == meaning]


def perception_decode_from_flag(meaning: str, fields: list[str]) -> dict[str, Any] | None:
    """The flag's fields after a perception ``meaning`` -> a partial ``decode`` dict, read by the kind's
    decoder (:meth:`PerceptionDecoder.from_flag`): ``[KIND, key=value, ...]``, the kind left out
    where the meaning has only one (``segmentation``). None when a meaning of several kinds gives no
    fields (the converter tells the kind by the output's shape). PerceptionError naming the kinds
    otherwise.
    """
    kinds = kinds_of(meaning)
    if fields and fields[0] in PERCEPTION_DECODERS:
        kind, args = fields[0], fields[1:]
    elif len(kinds) == 1:
        kind, args = kinds[0], fields
    elif not fields:
        return None
    else:
        raise PerceptionError(f"cannot read {':'.join([meaning, *fields])!r}; say the kind: "
                              + " or ".join(f"{meaning}:{k}{PERCEPTION_DECODERS[k].flag_grammar()}" for k in kinds))
    cls = PERCEPTION_DECODERS[kind]
    if cls.meaning != meaning:
        raise PerceptionError(f"decoder {kind} decodes {cls.meaning} outputs, not {meaning}")
    return cls.from_flag(args)


def perception_decoder_for(meaning: str, decode: Mapping[str, Any], shape: tuple[int, ...],
                           output: str = "?") -> PerceptionDecoder:
    """The decoder ``decode`` describes for an output of ``meaning`` and ``shape`` (batch first).

    Raises :class:`PerceptionError` (a :class:`~runtime.manifest.BundleError`) naming the output,
    its shape and what to write instead: an unknown kind, a kind of the other family, or a decoder
    that does not fit the shape.
    """
    kind = str(decode.get("kind", ""))
    cls = PERCEPTION_DECODERS.get(kind)
    if cls is None:
        kinds = ", ".join(k for k, c in PERCEPTION_DECODERS.items() if c.meaning == meaning)
        raise PerceptionError(f"output {output!r} ({meaning}): unknown decoder {kind!r}; {meaning} decoders are {kinds}")
    if cls.meaning != meaning:
        raise PerceptionError(f"output {output!r}: decoder {kind} decodes {cls.meaning} outputs, not {meaning}")
    return cls.from_dict(dict(decode), tuple(shape), output)
