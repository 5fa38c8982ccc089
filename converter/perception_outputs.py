"""Perception outputs (segmentation maps, detections) as the converter finds and completes them.

:func:`recognise` finds them among the outputs no flag or tag mentions, from the run's ``task_type``
(what the seed team logs) and the output shapes:

- ``segmentation``: the one rank-4 output (torchvision's ``out``; an ``aux`` map beside it is
  carried as ``other``), layout from the axis that holds the classes;
- ``detection``: ``boxes`` (1, K, 4) + ``scores`` (1, K) [+ ``labels`` (1, K)] (torchvision's names,
  kept by the converter's fixed-size wrapper of list-of-dicts detectors: xyxy input pixels, NMS in
  the graph; Keras and TF exports name the class ids ``classes``, read the same) is a ``boxes`` detector; a single (1, 4 + K, N) or (1, N, 4 + K) output with N >= 64 is
  a ``yolo`` head (NMS by the runtime).

Without a task the same is recognised only where it cannot be anything else: outputs named exactly
``boxes``/``scores``; a model's only output shaped like a YOLO head; a model's one map whose class
axis matches the class names given. Otherwise the output is refused by the caller, naming the kind
it looks like and the flags to pass.

:func:`complete` fills a perception decode dict from the flags' context (classes, drivable classes,
thresholds, the image input's size), so that ``runtime.perception`` checks a whole one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from converter.class_names import CLASSES_TAG, PerceptionContext, drivable_classes
from converter.errors import ConverterError
from converter.output_wants import Want

SEGMENTATION, DETECTION = "segmentation", "detection"
TASKS = (SEGMENTATION, DETECTION)
MIN_CANDIDATES = 64  # a YOLO head scores many candidates (8400 at 640x640); fewer is some other tensor
_SMALL_AXIS = 32  # a segmentation map's class axis is small, its height and width are not

Shapes = Mapping[str, tuple[int, ...]]


def _show(shapes: Shapes, names: Sequence[str]) -> str:
    return ", ".join(f"{n} {list(shapes[n])}" for n in names)


def recognise(names: list[str], shapes: Shapes, ctx: PerceptionContext, given: Sequence[Want] = ()) -> list[Want]:
    """Wants for the perception outputs among ``names`` (and ``other`` for their companions: ``aux``
    maps, scores and labels), decode dicts partial (see :func:`complete`); [] when there are none.

    ``given`` are the wants the flag or tag already made: when one of them has the task's meaning the
    task is done. With ``ctx.task`` segmentation or detection, no flag or tag, and no output of that
    kind, ConverterError naming the shapes a model of that task gives and the flag to pass.
    """
    if any(w.meaning == SEGMENTATION for w in given):  # torchvision's aux map beside it is carried
        return [Want(n, "other") for n in names if len(shapes[n]) == 4 and n.lower().startswith("aux")]
    task = ctx.task if ctx.task in TASKS else None
    if task is not None and any(w.meaning == task for w in given):
        task = None
    strict = not given
    if task == DETECTION or strict:
        _refuse_tf_od_api(names, shapes)
    seg = _segmentation_candidate(names, shapes)
    boxes = _boxes_candidate(names, shapes)
    yolo = _yolo_candidate(names, shapes)
    if task == SEGMENTATION and (seg is not None or strict):
        if seg is None:
            raise ConverterError(
                f"the run says task_type=segmentation, but no output is one class-score map (1, K, H, W) or (1, H, W, K) "
                f"(outputs: {_show(shapes, names)}); pass --outputs NAME=segmentation[:layout=NCHW] --classes ... "
                "--drivable ... for the map"
            )
        return seg
    if task == DETECTION and (boxes is not None or yolo is not None or strict):
        if boxes is not None:
            return boxes
        if yolo is not None:
            return yolo
        raise ConverterError(
            f"the run says task_type=detection, but the outputs are neither boxes (1, K, 4) + scores (1, K) nor one "
            f"YOLO head (1, 4+K, N) (outputs: {_show(shapes, names)}); pass --outputs "
            "NAME=detection:boxes:scores=S[:labels=L] or NAME=detection:yolo, with --classes"
        )
    if boxes is not None:  # named exactly as torchvision names them: nothing else looks like that
        return boxes
    if yolo is not None and len(shapes) == 1:
        return yolo
    if seg is not None and ctx.classes is not None and len(seg) == len(shapes):
        shape = shapes[seg[0].name]
        if _segmentation_layout(shape, len(ctx.classes)) is not None:
            return seg
    return []


TF_OD_API = ("detection_boxes", "detection_scores")  # TF Object Detection API / Keras exports of it


def _refuse_tf_od_api(names: Sequence[str], shapes: Shapes) -> None:
    """ConverterError for the TF Object Detection API's outputs: their boxes are normalized
    (ymin, xmin, ymax, xmax), a format no runtime decoder reads, so taking them as boxes would put
    every box in the wrong place."""
    if all(n in names for n in TF_OD_API):
        raise ConverterError(
            f"outputs {_show(shapes, [n for n in names if n.startswith('detection_') or n == 'num_detections'])} "
            "look like the TF Object Detection API's (normalized ymin, xmin, ymax, xmax boxes), which the runtime "
            "cannot read; re-export the model with boxes as x1, y1, x2, y2 (outputs boxes, scores, classes) and "
            "pass --outputs boxes=detection:boxes:normalized=true if they stay in 0..1"
        )


def _segmentation_candidate(names: list[str], shapes: Shapes) -> list[Want] | None:
    maps = [n for n in names if len(shapes[n]) == 4]
    aux = [n for n in maps if n.lower().startswith("aux")]
    main = [n for n in maps if n not in aux]
    if len(main) > 1 and "out" in main:  # torchvision's name for the map it is trained on
        main = ["out"]
    if len(main) != 1 or len(maps) != len(main) + len(aux):
        return None
    return [Want(main[0], SEGMENTATION), *(Want(a, "other") for a in aux)]


def _boxes_candidate(names: list[str], shapes: Shapes) -> list[Want] | None:
    if "boxes" not in names or "scores" not in names:
        return None
    b, s = shapes["boxes"], shapes["scores"]
    k = b[-2] if len(b) >= 2 else -1
    if not (_is_boxes(b) and _count(s) == k):
        return None
    labels = _labels_output(names, shapes, k)
    return [Want("boxes", DETECTION, {"kind": "boxes", "scores": "scores", "labels": labels}),
            Want("scores", "other"), *([Want(labels, "other")] if labels else [])]


LABEL_NAMES = ("labels", "classes")  # torchvision's name for the class ids; Keras/TF detection exports'


def _labels_output(names: Sequence[str], shapes: Shapes, k: int) -> str | None:
    """The output holding the K boxes' class ids (named as :data:`LABEL_NAMES`), else None."""
    return next((n for n in LABEL_NAMES if n in names and _count(shapes[n]) == k), None)


def _yolo_candidate(names: list[str], shapes: Shapes) -> list[Want] | None:
    heads = [n for n in names if _yolo_layout(shapes[n]) is not None]
    return [Want(heads[0], DETECTION, {"kind": "yolo"})] if len(heads) == 1 else None


def _is_boxes(shape: tuple[int, ...]) -> bool:
    return len(shape) in (2, 3) and shape[-1] == 4 and (len(shape) == 2 or shape[0] == 1)


def _count(shape: tuple[int, ...]) -> int:
    """Values of a (1, K) or (K,) tensor; -1 for any other shape."""
    if len(shape) == 1:
        return shape[0]
    return shape[1] if len(shape) == 2 and shape[0] == 1 else -1


def _yolo_layout(shape: tuple[int, ...]) -> str | None:
    """CN for (1, 4+K, N), NC for (1, N, 4+K), with N >= MIN_CANDIDATES and N > 4+K > 4; else None."""
    if len(shape) != 3 or shape[0] != 1:
        return None
    a, b = shape[1], shape[2]
    if 4 < a < b and b >= MIN_CANDIDATES:
        return "CN"
    if 4 < b < a and a >= MIN_CANDIDATES:
        return "NC"
    return None


def _segmentation_layout(shape: tuple[int, ...], k: int | None) -> str | None:
    """The layout whose class axis fits ``k`` classes (one channel for two), or, for ``k`` None, the one
    whose class axis alone is small; None when neither or both fit."""
    if len(shape) != 4:
        return None
    a, c = shape[1], shape[3]
    if k is None:
        fits_a, fits_c = a <= _SMALL_AXIS < c, c <= _SMALL_AXIS < a
    else:
        fits_a, fits_c = a == k or (k == 2 and a == 1), c == k or (k == 2 and c == 1)
    if fits_a == fits_c:
        return None
    return "NCHW" if fits_a else "NHWC"


def complete(want: Want, shapes: Shapes, ctx: PerceptionContext) -> Want:
    """``want`` (meaning segmentation or detection) with every decode key the runtime needs: the kind
    (by shape when a detection flag leaves it out), classes, layout, drivable classes, activation,
    thresholds, input size. ConverterError naming the flag for what only the user can say."""
    d: dict[str, Any] = dict(want.decode or {})
    shape = tuple(shapes[want.name])
    kind = d.get("kind") or (SEGMENTATION if want.meaning == SEGMENTATION else _detection_kind(want.name, shape))
    d["kind"] = kind
    if kind == "segmentation":
        return Want(want.name, want.meaning, _segmentation(want.name, shape, d, ctx))
    if kind in ("boxes", "yolo"):
        d.setdefault("classes", list(ctx.classes) if ctx.classes else None)
        d.setdefault("score_threshold", ctx.score_threshold)
        d.setdefault("iou_threshold", ctx.iou_threshold)
        fill = _boxes if kind == "boxes" else _yolo
        return Want(want.name, want.meaning, fill(want.name, shape, d, shapes, ctx))
    return want  # an unknown kind: runtime.perception names the kinds


def _detection_kind(name: str, shape: tuple[int, ...]) -> str:
    if _is_boxes(shape):
        return "boxes"
    if _yolo_layout(shape) is not None:
        return "yolo"
    raise ConverterError(f"output {name!r} {list(shape)} is neither boxes (1, K, 4) nor a YOLO head (1, 4+K, N); "
                         f"pass --outputs {name}=detection:boxes:scores=S or {name}=detection:yolo:layout=CN|NC")


def _need_classes(name: str, what: str, count: int | None) -> ConverterError:
    n = f"{count} " if count else ""
    return ConverterError(f"output {name!r} is {what}: pass --classes with its {n}class names in order "
                          f"(or tag the version {CLASSES_TAG})")


def _segmentation(name: str, shape: tuple[int, ...], d: dict[str, Any], ctx: PerceptionContext) -> dict[str, Any]:
    classes = d.get("classes") or (list(ctx.classes) if ctx.classes else None)
    if "layout" not in d and len(shape) == 4:
        layout = _segmentation_layout(shape, len(classes) if classes else None)
        if layout is None:
            raise ConverterError(
                f"output {name!r} {list(shape)}: which axis holds the classes? pass --outputs "
                f"{name}=segmentation:layout=NCHW (classes first, PyTorch) or :layout=NHWC (classes last, Keras)"
                + (f"; with --classes, as many names as that axis ({len(classes)} given)" if classes else "")
            )
        d["layout"] = layout
    if not classes:
        k = shape[1] if d.get("layout", "NCHW") == "NCHW" else shape[-1]
        raise _need_classes(name, f"a segmentation map of {max(k, 2)} classes ({d.get('layout')}, shape {list(shape)})",
                            max(k, 2))
    d["classes"] = list(classes)
    d.setdefault("drivable", drivable_classes(classes, ctx.drivable, name))
    if "activation" not in d:
        act = (ctx.activations or {}).get(name)
        d["activation"] = act if act in ("softmax", "sigmoid") else "logits"
    return d


def _boxes(name: str, shape: tuple[int, ...], d: dict[str, Any], shapes: Shapes,
           ctx: PerceptionContext) -> dict[str, Any]:
    if not d.get("scores"):
        if "scores" not in shapes:
            raise ConverterError(f"output {name!r} holds boxes; which output holds their scores (outputs: "
                                 f"{', '.join(shapes)})? pass --outputs {name}=detection:boxes:scores=NAME[:labels=NAME]")
        d["scores"] = "scores"
    if "labels" not in d:
        d["labels"] = next((n for n in LABEL_NAMES if n in shapes), None)
    for key in ("scores", "labels"):
        if d.get(key) and d[key] not in shapes:
            raise ConverterError(f"output {name!r}: {key}={d[key]!r} is not an output of the model (outputs: "
                                 f"{', '.join(shapes)})")
    if not d.get("classes"):
        raise _need_classes(name, "a detector's boxes (class id i is the i-th name; torchvision's ids start at 1, "
                            "0 the background: list it)", None)
    d.setdefault("box_format", "xyxy")
    d.setdefault("normalized", False)
    d.setdefault("nms", "graph")
    d.setdefault("input_size", None if d["normalized"] else _input_size(name, ctx))
    return d


def _yolo(name: str, shape: tuple[int, ...], d: dict[str, Any], shapes: Shapes, ctx: PerceptionContext) -> dict[str, Any]:
    layout = d.get("layout") or _yolo_layout(shape) or "CN"
    d["layout"] = layout
    values = shape[1] if layout == "CN" else shape[-1]
    classes = d.get("classes")
    if not classes:
        raise ConverterError(f"output {name!r} is a YOLO head of {values} values per candidate (4 box coordinates, then "
                             f"{values - 4} class scores, or objectness and {values - 5}): pass --classes with its "
                             f"{values - 4} class names in order ({values - 5} with objectness; or tag the version "
                             f"{CLASSES_TAG})")
    if "objectness" not in d:
        d["objectness"] = values - 5 == len(classes)  # YOLOv5's fifth value; YOLOv8/11 have none
    d.setdefault("input_size", _input_size(name, ctx))
    return d


def _input_size(name: str, ctx: PerceptionContext) -> list[int]:
    if ctx.input_size is None:
        raise ConverterError(f"output {name!r}: its boxes are in input pixels, but the model's image size is unknown; "
                             "pass --input-size WxH")
    return [int(ctx.input_size[0]), int(ctx.input_size[1])]


def companions(wants: Sequence[Want]) -> list[str]:
    """The outputs a perception decoder reads besides its own (a boxes decoder's scores and labels)."""
    out = []
    for w in wants:
        if w.decode and w.decode.get("kind") == "boxes":
            out += [str(w.decode[k]) for k in ("scores", "labels") if w.decode.get(k)]
    return out
