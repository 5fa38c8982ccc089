"""Detectors as torchvision writes them, made fixed-size for every build.

torchvision's detectors (and most detection code written like them) return, in eval mode, a list
with one dict per image: ``{"boxes": (n, 4) xyxy input pixels, "scores": (n,), "labels": (n,) int64}``,
n depending on the image (score threshold, NMS and top-k inside ``forward``). A bundle needs fixed
shapes (TFLite, INT8 calibration, TensorRT engines and the reference samples all assume them), so
:class:`FixedDetections` wraps such a module: its ``forward(image (1, C, H, W))`` returns

- ``boxes`` (1, K, 4) float32, as the model wrote them (xyxy in input pixels for torchvision),
- ``scores`` (1, K) float32,
- ``labels`` (1, K) float32 (class ids, exact as float up to 2**24; every build keeps float32 I/O),

the model's first K detections in its own order (torchvision sorts by score), the rest padded with
score 0, box 0 and label 0. K is ``max_detections`` (:data:`DEFAULT_MAX_DETECTIONS`, torchvision's
own ``detections_per_img`` default). The converter runs the *wrapper* for the reference outputs
too, so every build is compared with exactly what it was exported from.

A detector that already returns tensors (a tuple or dict of boxes/scores/labels) needs no padding
when they are batched (1, K, ...); integer labels are still cast to float32, and unbatched ones
((n, 4), (n,), (n,)) are padded like a list of dicts.
"""

from __future__ import annotations

import logging
from typing import Any

import torch  # only imported by TorchSource, once torch is known to be installed
from torch.nn import functional as F

log = logging.getLogger(__name__)

DETECTION_KEYS = ("boxes", "scores", "labels")  # the wrapper's output names, in order


def _is_boxes(t: Any, batched: bool) -> bool:
    return isinstance(t, torch.Tensor) and t.ndim == 2 + batched and t.shape[-1] == 4 and (not batched or t.shape[0] == 1)


def _is_per_box(t: Any, n: int, batched: bool) -> bool:
    return (isinstance(t, torch.Tensor) and t.ndim == 1 + batched and t.shape[-1] == n
            and (not batched or t.shape[0] == 1))


def _dict_is_detections(d: Any) -> bool:
    if not isinstance(d, dict) or not {"boxes", "scores"} <= set(d) or not _is_boxes(d["boxes"], False):
        return False
    n = d["boxes"].shape[0]
    return all(_is_per_box(d[k], n, False) for k in ("scores", "labels") if k in d)


def tensor_detection_names(out: Any, batched: bool) -> tuple[str, ...] | None:
    """Names for a tuple of 2 or 3 tensors that can only be detections: one boxes tensor
    ((n, 4), or (1, K, 4) when ``batched``), then per-box tensors of which exactly one is integer
    (the labels; the floating one is the scores). ``("boxes", "scores", "labels")`` in the tuple's
    order, or None when the tensors do not say which is which (then ``--outputs`` must)."""
    if not isinstance(out, list | tuple) or len(out) not in (2, 3):
        return None
    boxes = [i for i, t in enumerate(out) if _is_boxes(t, batched)]
    if len(boxes) != 1:
        return None
    n = out[boxes[0]].shape[-2]
    rest = [i for i in range(len(out)) if i != boxes[0]]
    if not all(_is_per_box(out[i], n, batched) for i in rest):
        return None
    ints = [i for i in rest if not out[i].is_floating_point()]
    floats = [i for i in rest if out[i].is_floating_point()]
    if len(floats) != 1 or len(ints) != len(rest) - 1:
        return None
    names = {boxes[0]: "boxes", floats[0]: "scores", **{i: "labels" for i in ints}}
    return tuple(names[i] for i in range(len(out)))


def detection_layout(out: Any) -> str | tuple[str, ...] | None:
    """How a forward's output holds per-image detections of data-dependent length, for
    :class:`FixedDetections`: ``"list"`` (torchvision's list of dicts, one per image), ``"dict"`` (one
    dict of unbatched tensors), a tuple of names (unbatched tensors, see :func:`tensor_detection_names`),
    or None when it is not such a thing (tensors already batched and fixed need no padding)."""
    if isinstance(out, list | tuple) and out and all(isinstance(d, dict) for d in out):
        return "list" if all(_dict_is_detections(d) for d in out) else None
    if _dict_is_detections(out):
        return "dict"
    return tensor_detection_names(out, batched=False)


def describe(out: Any) -> str:
    """A short account of a detection output, e.g. ``list of 1 dict(boxes [3, 4], scores [3], labels [3])``."""
    def one(d: dict[str, Any]) -> str:
        return "dict(" + ", ".join(f"{k} {list(v.shape)}" for k, v in d.items() if isinstance(v, torch.Tensor)) + ")"

    if isinstance(out, list | tuple) and out and isinstance(out[0], dict):
        return f"list of {len(out)} {one(out[0])}"
    if isinstance(out, dict):
        return one(out)
    return "tuple(" + ", ".join(str(list(t.shape)) for t in out) + ")"


def needs_float_cast(out: Any) -> bool:
    """True when a tensor output (alone, in a tuple/list or a dict) is not floating point."""
    values = out.values() if isinstance(out, dict) else out if isinstance(out, list | tuple) else [out]
    return any(isinstance(v, torch.Tensor) and not v.is_floating_point() for v in values)


class FixedDetections(torch.nn.Module):
    """``inner`` (a torchvision-style detector) -> boxes (1, K, 4), scores (1, K), labels (1, K),
    float32, padded with zeros past the model's own detections (see the module)."""

    def __init__(self, inner: Any, max_detections: int, layout: str | tuple[str, ...] = "list") -> None:
        super().__init__()
        if max_detections < 1:
            raise ValueError(f"max_detections must be >= 1, got {max_detections}")
        self.inner = inner
        # Not .eval(): that recurses into inner, and a torch.export program's module refuses train();
        # inner is already in eval mode (TorchSource), the wrapper has no mode of its own.
        self.training = False
        self.max_detections = int(max_detections)
        self.layout = layout  # see detection_layout

    def forward(self, image: Any) -> tuple[Any, Any, Any]:
        """(1, C, H, W) float32 -> (boxes (1, K, 4), scores (1, K), labels (1, K)), float32."""
        out = self.inner(image)
        if self.layout == "list":
            d = out[0]  # batch 1: the first image's dict
        elif self.layout == "dict":
            d = out
        else:
            d = dict(zip(self.layout, out, strict=True))
        return pad_detections(d, self.max_detections)


def pad_detections(d: dict[str, Any], k: int) -> tuple[Any, Any, Any]:
    """{"boxes": (n, 4), "scores": (n,), "labels": (n,) optional} -> (1, K, 4), (1, K), (1, K) float32.

    The padding is written without Python arithmetic on n (``F.pad`` by ``k - n`` traces as a
    computed Pad in ONNX), so one export serves every n; more than K detections keep the first K."""
    boxes = d["boxes"][:k].to(torch.float32)
    scores = d["scores"][:k].to(torch.float32)
    labels = d.get("labels")
    labels = labels[:k].to(torch.float32) if labels is not None else torch.zeros_like(scores)
    n = boxes.shape[0]
    boxes = F.pad(boxes, (0, 0, 0, k - n))
    scores = F.pad(scores, (0, k - n))
    labels = F.pad(labels, (0, k - n))
    return boxes.reshape(1, k, 4), scores.reshape(1, k), labels.reshape(1, k)


class FloatOutputs(torch.nn.Module):
    """``inner`` with every integer output tensor cast to float32 (its structure kept): a detector
    returning int64 ``labels`` as a tensor, so every build keeps float32 I/O."""

    def __init__(self, inner: Any) -> None:
        super().__init__()
        self.inner = inner
        self.training = False  # as FixedDetections

    def forward(self, *xs: Any) -> Any:
        """Whatever ``inner`` returns, integer tensors as float32."""
        out = self.inner(*xs)

        def cast(v: Any) -> Any:
            return v.to(torch.float32) if isinstance(v, torch.Tensor) and not v.is_floating_point() else v

        if isinstance(out, dict):
            return {k: cast(v) for k, v in out.items()}
        if isinstance(out, list | tuple):
            return tuple(cast(v) for v in out)
        return cast(out)
