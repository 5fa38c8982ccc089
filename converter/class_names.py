"""Class names of a perception model, which of them are drivable, and its task, as the converter reads
them: flags first, then the version's tags, then the model itself, then the run's params.

- classes: ``--classes a,b,c``, else tag ``edge.classes`` (a comma list or a JSON list), else the
  source model's own names (an optional ``class_names()`` method on the source: e.g. a PyTorch
  module's ``classes``/``CLASSES`` attribute, Keras model metadata), else unknown;
- drivable: ``--drivable a[,b]``, else tag ``edge.drivable``, else the one class named like a
  drivable surface (road, drivable, lane, floor, ...) when exactly one is; otherwise refused naming
  ``--drivable``;
- task: the run param ``task_type`` (what the seed team logs: ``segmentation`` or ``detection``),
  else a version tag ``task_type``, else unknown.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from converter.errors import ConverterError

log = logging.getLogger(__name__)

CLASSES_TAG = "edge.classes"
DRIVABLE_TAG = "edge.drivable"
TASK_PARAM = "task_type"
# Words that name a surface a car may drive on; a class is drivable by default only when exactly one
# class has one of them as a word of its name ("road", "drivable_area", "Lane") and none of the
# words of a line or a border ("lane_line", "road_edge" are where the car must not drive).
DRIVABLE_WORDS = frozenset({"road", "drivable", "lane", "floor", "track", "ground", "street", "asphalt", "freespace"})
NOT_DRIVABLE_WORDS = frozenset({"line", "lines", "marking", "markings", "mark", "boundary", "edge", "curb", "kerb"})
DEFAULT_SCORE_THRESHOLD = 0.5
DEFAULT_IOU_THRESHOLD = 0.45


@dataclass(frozen=True)
class PerceptionContext:
    """What the converter knows about a perception model beyond its output shapes.

    ``classes`` (None: unknown) with ``classes_from`` saying where they came from; ``drivable`` as
    given (None: default rule, applied by :func:`drivable_classes`); thresholds in [0, 1];
    ``input_size`` the image input's (width, height) in pixels (None without one); ``task`` the run's
    ``task_type`` (None: unknown); ``activations`` output name -> the activation of the layer making
    it, where the source knows it (Keras).
    """

    classes: tuple[str, ...] | None = None
    classes_from: str = ""
    drivable: tuple[str, ...] | None = None
    score_threshold: float = DEFAULT_SCORE_THRESHOLD
    iou_threshold: float = DEFAULT_IOU_THRESHOLD
    input_size: tuple[int, int] | None = None
    task: str | None = None
    activations: Mapping[str, str] | None = None


def parse_names(text: str | None, where: str) -> list[str]:
    """``a,b,c`` or a JSON list ``["a", "b"]`` -> the names (stripped, none empty, no duplicates);
    ConverterError naming ``where`` otherwise. Empty or None text -> []."""
    if text is None or not text.strip():
        return []
    text = text.strip()
    if text.startswith("["):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConverterError(f"{where} is not a JSON list ({e}); write it as a,b,c or [\"a\", \"b\"]") from None
        if not isinstance(raw, list):
            raise ConverterError(f"{where}: expected a list of class names")
        names = [str(v).strip() for v in raw]
    else:
        names = [v.strip() for v in text.split(",")]
    if any(not n for n in names):
        raise ConverterError(f"{where} {text!r}: an empty class name; write the names as a,b,c")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConverterError(f"{where}: class names {dup} appear twice; each class has one name")
    return names


def resolve_classes(flag: str | None, tags: Mapping[str, str],
                    model_classes: Sequence[str] | None) -> tuple[tuple[str, ...] | None, str]:
    """The class names and where they came from: ``--classes``, tag ``edge.classes``, the model, else
    (None, "")."""
    names = parse_names(flag, "--classes")
    if names:
        return tuple(names), "--classes"
    names = parse_names(tags.get(CLASSES_TAG), f"tag {CLASSES_TAG}")
    if names:
        return tuple(names), f"tag {CLASSES_TAG}"
    if model_classes:
        return tuple(str(c) for c in model_classes), "the model"
    return None, ""


def model_class_names(source: Any) -> list[str] | None:
    """The source model's own class names, when its loader offers them (an optional ``class_names()``
    method returning a list of names or None)."""
    fn = getattr(source, "class_names", None)
    if not callable(fn):
        return None
    names = fn()
    return [str(n) for n in names] if names else None


def resolve_drivable(flag: str | None, tags: Mapping[str, str]) -> tuple[str, ...] | None:
    """``--drivable``, else tag ``edge.drivable``, else None (the default rule applies)."""
    names = parse_names(flag, "--drivable") or parse_names(tags.get(DRIVABLE_TAG), f"tag {DRIVABLE_TAG}")
    return tuple(names) if names else None


def drivable_classes(classes: Sequence[str], given: Sequence[str] | None, output: str) -> list[str]:
    """The drivable classes of a segmentation output: ``given`` (each must be one of ``classes``), else
    the one class named like a drivable surface; ConverterError naming ``--drivable`` otherwise."""
    if given:
        unknown = [c for c in given if c not in classes]
        if unknown:
            raise ConverterError(f"--drivable names {unknown}, which are not classes of output {output!r} "
                                 f"({', '.join(classes)}); pass --drivable with some of those names")
        return list(given)
    words = {c: set(re.split(r"[^a-z0-9]+", c.lower())) for c in classes}
    hits = [c for c in classes if DRIVABLE_WORDS & words[c] and not NOT_DRIVABLE_WORDS & words[c]]
    if len(hits) == 1:
        log.info("output %r: class %r taken as the drivable one (pass --drivable to say otherwise)", output, hits[0])
        return hits
    why = f"{len(hits)} classes are named like a road ({', '.join(hits)})" if hits else "no class is named like a road"
    raise ConverterError(f"output {output!r}: which classes may the car drive on? {why} among {', '.join(classes)}; "
                         f"pass --drivable NAME[,NAME] (or tag the version {DRIVABLE_TAG})")


def task_of(params: Mapping[str, str], tags: Mapping[str, str]) -> str | None:
    """The model's task, lower-cased: the run param ``task_type``, else a version tag of that name."""
    task = params.get(TASK_PARAM) or tags.get(TASK_PARAM)
    return task.strip().lower() if task and task.strip() else None


def thresholds(score: float | None, iou: float | None) -> tuple[float, float]:
    """``--score-threshold`` / ``--iou-threshold`` (defaults 0.5 / 0.45), each checked to lie in (0, 1]
    (a score threshold of 0 would keep the padding rows of fixed-size detector outputs)."""
    s = DEFAULT_SCORE_THRESHOLD if score is None else float(score)
    i = DEFAULT_IOU_THRESHOLD if iou is None else float(iou)
    for flag, v in (("--score-threshold", s), ("--iou-threshold", i)):
        if not 0.0 < v <= 1.0:
            raise ConverterError(f"{flag} {v}: must be in (0, 1]")
    return s, i


def image_size(shape: Sequence[int], layout: str) -> tuple[int, int]:
    """(width, height) in pixels of an image input of ``shape`` (batch first; NHWC, NCHW, NTHWC...)."""
    if layout.endswith("HWC"):
        return int(shape[-2]), int(shape[-3])
    return int(shape[-1]), int(shape[-2])


def perception_context(req: Any, tags: Mapping[str, str], params: Mapping[str, str], source: Any,
                       image: Any) -> PerceptionContext:
    """The :class:`PerceptionContext` of a conversion: ``req`` a ``converter.pipeline.ConvertRequest``
    (its ``classes``/``drivable`` flag text and thresholds), the version's tags, its run's params, the
    loaded source (its optional ``class_names()`` and ``output_activations``) and the image
    ``InputSpec`` (its size is the pixel boxes' frame). ConverterError for a malformed flag or tag."""
    classes, where = resolve_classes(req.classes, tags, model_class_names(source))
    score, iou = thresholds(req.score_threshold, req.iou_threshold)
    return PerceptionContext(
        classes=classes, classes_from=where, drivable=resolve_drivable(req.drivable, tags),
        score_threshold=score, iou_threshold=iou, input_size=image_size(image.shape, image.layout),
        task=task_of(params, tags), activations=getattr(source, "output_activations", None),
    )
