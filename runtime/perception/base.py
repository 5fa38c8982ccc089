"""The perception decoder interface, its results and its error."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from runtime.manifest.errors import BundleError


class PerceptionError(BundleError):
    """A perception decoder that does not fit its output (wrong shape, bad classes or thresholds)."""


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected object: a box in the model input's normalised coordinates (``x1 < x2``, ``y1 < y2``,
    0..1 from the top-left corner of the image the model saw, after the crop), its ``score`` (0..1)
    and class (``class_id``, ``label``)."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    class_id: int
    label: str

    @classmethod
    def from_xyxy(cls, box: np.ndarray, score: float, class_id: int, label: str) -> Detection:
        """From a (4,) x1, y1, x2, y2 array (normalised)."""
        return cls(float(box[0]), float(box[1]), float(box[2]), float(box[3]), float(score), int(class_id), label)

    @property
    def area(self) -> float:
        """The box's area as a fraction of the image."""
        return max(0.0, self.x2 - self.x1) * max(0.0, self.y2 - self.y1)

    def iou(self, other: Detection) -> float:
        """Intersection over union with ``other`` (0 when they do not overlap)."""
        w = min(self.x2, other.x2) - max(self.x1, other.x1)
        h = min(self.y2, other.y2) - max(self.y1, other.y1)
        inter = max(0.0, w) * max(0.0, h)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """For recordings: the box rounded to 1e-4, score to 1e-4, class id and label."""
        return {"box": [round(v, 4) for v in (self.x1, self.y1, self.x2, self.y2)], "score": round(self.score, 4),
                "class_id": self.class_id, "label": self.label}


@dataclass(frozen=True)
class SegmentationResult:
    """A decoded segmentation map: ``labels`` (H, W) int class per pixel (argmax), ``drivable`` (H, W)
    bool, in the model input's pixels (rows top to bottom, after the crop)."""

    labels: np.ndarray
    drivable: np.ndarray

    @property
    def drivable_fraction(self) -> float:
        """Share of the pixels that are drivable."""
        return float(self.drivable.mean()) if self.drivable.size else 0.0


class PerceptionDecoder(ABC):
    """Raw outputs (batch 1, by logical name) -> a perception result. Subclasses set ``meaning``
    (``segmentation`` or ``detection``) and ``kind``, and list in :attr:`reads` every output they read.
    """

    meaning: ClassVar[str]
    kind: ClassVar[str]
    KEYS: ClassVar[frozenset[str]] = frozenset()
    # The ``:key=value`` fields this kind reads from ``--outputs NAME=MEANING[:KIND]:key=value...``,
    # each with how its value is read: ``str``, ``upper`` (a str, upper-cased), ``bool`` (a bare
    # ``key`` is true; ``key=false`` false), ``list`` (``a|b|c``) or ``float``.
    FLAG_KEYS: ClassVar[dict[str, str]] = {}

    def __init__(self, output: str, classes: Sequence[str]) -> None:
        self.output = output
        self.classes = tuple(str(c) for c in classes)

    @property
    def reads(self) -> tuple[str, ...]:
        """The logical output names this decoder reads (the first is the one carrying ``decode``)."""
        return (self.output,)

    @abstractmethod
    def __call__(self, raw: Mapping[str, np.ndarray]) -> Any:
        """Decode one frame's outputs; ``KeyError`` when an output in :attr:`reads` is missing."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``decode`` dict, every default written out (round-trips through ``from_dict``)."""

    @classmethod
    @abstractmethod
    def from_dict(cls, d: dict[str, Any], shape: tuple[int, ...], output: str) -> PerceptionDecoder:
        """Build from the manifest dict, checked against the output ``shape``; PerceptionError otherwise."""

    @classmethod
    def flag_grammar(cls) -> str:
        """This kind's ``--outputs`` fields, e.g. ``[:layout=NCHW|NHWC][:activation=...]``."""
        return "".join(f"[:{k}]" if t == "bool" else f"[:{k}=...]" for k, t in cls.FLAG_KEYS.items())

    @classmethod
    def from_flag(cls, args: list[str]) -> dict[str, Any]:
        """The ``key=value`` fields after the kind (see :attr:`FLAG_KEYS`) -> a partial ``decode`` dict
        (kind plus the keys given; the converter fills in classes, sizes and thresholds, and
        :meth:`from_dict` checks the whole against the shape). PerceptionError naming the keys otherwise.
        """
        out: dict[str, Any] = {"kind": cls.kind}
        for arg in args:
            key, eq, value = (p.strip() for p in arg.partition("="))
            how = cls.FLAG_KEYS.get(key)
            if how is None or (not eq and how != "bool") or (eq and not value):
                raise PerceptionError(f"cannot read {arg!r} in decoder {cls.kind}; it takes "
                                      f"{cls.kind}{cls.flag_grammar()}")
            try:
                out[key] = _flag_value(how, value if eq else "true")
            except ValueError:
                raise PerceptionError(f"decoder {cls.kind}: {key}={value!r} is not a {how}") from None
        return out

    @classmethod
    def _check_keys(cls, d: dict[str, Any], output: str) -> None:
        unknown = set(d) - cls.KEYS - {"kind"}
        if unknown:
            raise PerceptionError(f"output {output!r}: decoder {cls.kind} has no keys {sorted(unknown)}")

    def label(self, class_id: int) -> str:
        """The class name of ``class_id`` (``class_<id>`` when the model has no name for it)."""
        return self.classes[class_id] if 0 <= class_id < len(self.classes) else f"class_{class_id}"


class DetectionDecoder(PerceptionDecoder):
    """A detection head -> the detections above ``score_threshold`` after NMS (highest score first).

    ``input_size`` (width, height) is the model input's size in pixels, for heads whose boxes are in
    pixels; ``iou_threshold`` is the runtime NMS's overlap limit (``nms`` ``runtime``).
    """

    meaning = "detection"

    def __init__(self, output: str, classes: Sequence[str], score_threshold: float, iou_threshold: float,
                 input_size: tuple[int, int] | None) -> None:
        super().__init__(output, classes)
        if not 0.0 <= score_threshold <= 1.0 or not 0.0 < iou_threshold <= 1.0:
            raise PerceptionError(f"output {output!r}: score_threshold {score_threshold} must be in [0, 1] and "
                                  f"iou_threshold {iou_threshold} in (0, 1]")
        if input_size is not None and (len(input_size) != 2 or min(input_size) <= 0):
            raise PerceptionError(f"output {output!r}: input_size {list(input_size)} must be [width, height] > 0")
        self.score_threshold, self.iou_threshold = float(score_threshold), float(iou_threshold)
        self.input_size = (int(input_size[0]), int(input_size[1])) if input_size is not None else None

    @abstractmethod
    def __call__(self, raw: Mapping[str, np.ndarray]) -> list[Detection]:
        """Detections of one frame, highest score first."""

    def _common(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "score_threshold": self.score_threshold,
                "iou_threshold": self.iou_threshold,
                "input_size": list(self.input_size) if self.input_size is not None else None}


def _flag_value(how: str, value: str) -> Any:
    """One flag value read as ``how`` (see :attr:`PerceptionDecoder.FLAG_KEYS`); ValueError if it is not."""
    if how == "bool":
        low = value.lower()
        if low not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(value)
        return low in ("true", "1", "yes")
    if how == "float":
        return float(value)
    if how == "list":
        return [v.strip() for v in value.split("|") if v.strip()]
    return value.upper() if how == "upper" else value


def thresholds(d: dict[str, Any]) -> tuple[float, float]:
    """``score_threshold`` (default 0.5) and ``iou_threshold`` (default 0.45) of a decode dict."""
    return float(d.get("score_threshold", 0.5)), float(d.get("iou_threshold", 0.45))


def input_size_of(d: dict[str, Any]) -> tuple[int, int] | None:
    """A decode dict's ``input_size`` [width, height], or None."""
    v = d.get("input_size")
    if v is None:
        return None
    if not isinstance(v, list | tuple) or len(v) != 2:
        raise PerceptionError(f"input_size must be [width, height], got {v!r}")
    return (int(v[0]), int(v[1]))


def to_xyxy(b: np.ndarray, box_format: str) -> np.ndarray:
    """(N, 4) boxes in ``xyxy``, ``xywh`` (top-left + size) or ``cxcywh`` (centre + size) -> (N, 4) xyxy."""
    b = b.astype(np.float64, copy=False)
    if box_format == "xyxy":
        return b
    if box_format == "xywh":
        return np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], axis=1)
    if box_format == "cxcywh":
        hw, hh = b[:, 2] / 2, b[:, 3] / 2
        return np.stack([b[:, 0] - hw, b[:, 1] - hh, b[:, 0] + hw, b[:, 1] + hh], axis=1)
    raise PerceptionError(f"box_format {box_format!r} is not one of xyxy, xywh, cxcywh")


BOX_FORMATS = ("xyxy", "xywh", "cxcywh")
