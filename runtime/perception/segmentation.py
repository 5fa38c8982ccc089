"""``segmentation``: per-pixel class scores -> class labels and a drivable mask.

The output is (1, K, H, W) (``layout`` NCHW, PyTorch/torchvision's ``out``) or (1, H, W, K) (NHWC,
Keras), K >= 2 classes scored by logits or probabilities (argmax either way), or K = 1 (a binary
map: ``activation`` ``logits`` thresholds at 0, ``sigmoid`` at 0.5; ``classes`` then names the
negative and the positive class). ``classes`` names every class, ``drivable`` the ones a car may
drive on (at least one). See torchvision's segmentation models (``{"out": (N, K, H, W)}``) and
jetson-inference's segNet class tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from runtime.perception.base import PerceptionDecoder, PerceptionError, SegmentationResult

LAYOUTS = ("NCHW", "NHWC")
ACTIVATIONS = ("logits", "softmax", "sigmoid")


class SegmentationDecoder(PerceptionDecoder):
    """A (1, K, H, W) or (1, H, W, K) class-score map -> :class:`SegmentationResult`."""

    meaning = "segmentation"
    kind = "segmentation"
    KEYS = frozenset({"layout", "classes", "drivable", "activation"})
    FLAG_KEYS: ClassVar[dict[str, str]] = {"layout": "upper", "activation": "str", "classes": "list", "drivable": "list"}

    def __init__(self, output: str, layout: str, classes: list[str], drivable: list[str],
                 activation: str = "logits", channels: int | None = None) -> None:
        super().__init__(output, classes)
        self.layout, self.activation = layout, activation
        self.channels = channels if channels is not None else len(self.classes)
        self.drivable = tuple(drivable)
        self.drivable_ids = np.array([self.classes.index(c) for c in self.drivable], np.int64)
        self._axis = 1 if layout == "NCHW" else -1

    @property
    def binary(self) -> bool:
        """True for a one-channel map (two classes, thresholded)."""
        return self.channels == 1

    def labels(self, y: np.ndarray) -> np.ndarray:
        """``y`` (1, K, H, W) or (1, H, W, K) float -> (H, W) int64 class per pixel."""
        if self.binary:
            threshold = 0.0 if self.activation == "logits" else 0.5
            plane = y[0, 0] if self.layout == "NCHW" else y[0, ..., 0]
            return (plane > threshold).astype(np.int64)
        return np.argmax(y[0], axis=0 if self.layout == "NCHW" else -1)

    def __call__(self, raw: Mapping[str, np.ndarray]) -> SegmentationResult:
        """The frame's labels and drivable mask; a NaN pixel is never drivable."""
        y = np.asarray(raw[self.output])
        labels = self.labels(y)
        drivable = np.isin(labels, self.drivable_ids)
        finite = np.isfinite(y[0]).all(axis=0 if self.layout == "NCHW" else -1)
        return SegmentationResult(labels, drivable & finite)

    def to_dict(self) -> dict[str, Any]:
        """kind, layout, classes, drivable, activation."""
        return {"kind": self.kind, "layout": self.layout, "classes": list(self.classes),
                "drivable": list(self.drivable), "activation": self.activation}

    @classmethod
    def from_dict(cls, d: dict[str, Any], shape: tuple[int, ...], output: str) -> SegmentationDecoder:
        """Needs a rank-4 ``shape``, ``classes`` matching its class axis (or two names for one channel)
        and ``drivable`` naming some of them; :class:`PerceptionError` naming the fix otherwise."""
        cls._check_keys(d, output)
        if len(shape) != 4:
            raise PerceptionError(f"output {output!r}: a segmentation map is (1, K, H, W) or (1, H, W, K), "
                                  f"not shape {list(shape)}")
        layout = str(d.get("layout", "NCHW")).upper()
        if layout not in LAYOUTS:
            raise PerceptionError(f"output {output!r}: segmentation layout {layout!r} is not one of {', '.join(LAYOUTS)}")
        k = int(shape[1] if layout == "NCHW" else shape[3])
        classes = [str(c) for c in d.get("classes") or []]
        want = 2 if k == 1 else k
        if len(classes) != want or len(set(classes)) != len(classes):
            raise PerceptionError(
                f"output {output!r}: the map has {k} class channel{'s' if k != 1 else ''} (shape {list(shape)}, "
                f"{layout}) but classes is {classes}; pass --classes with {want} distinct names"
                + (" (negative, positive)" if k == 1 else "")
            )
        drivable = [str(c) for c in d.get("drivable") or []]
        if not drivable or any(c not in classes for c in drivable):
            raise PerceptionError(f"output {output!r}: drivable {drivable} must name at least one of the classes "
                                  f"{classes}; pass --drivable NAME[,NAME]")
        activation = str(d.get("activation", "logits"))
        if activation not in ACTIVATIONS:
            raise PerceptionError(f"output {output!r}: activation {activation!r} is not one of {', '.join(ACTIVATIONS)}")
        return cls(output, layout, classes, drivable, activation, k)
