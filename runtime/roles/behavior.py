"""Role ``behavior``: a one-hot over ``labels`` (donkeycar's KerasBehavioral ``behavior_in``); shape
(1, len(labels)). The runtime feeds the configured behaviour's slot."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from runtime.roles.base import Drive, Fields, RoleError, RoleSpec, no_unknown, vector_width

log = logging.getLogger(__name__)


def _shape(f: Fields) -> tuple[int, ...]:
    if not f.labels:
        raise RoleError(f"input {f.name!r}: role behavior needs labels (one per one-hot slot)")
    return (1, len(f.labels))


def _parse(name: str, model_shape: tuple[int | None, ...], entry: dict[str, Any]) -> dict[str, Any]:
    no_unknown(name, "behavior", entry, ("labels", "order", "length"))
    k = vector_width(name, "behavior", model_shape)
    labels = tuple(str(x) for x in entry.get("labels") or ())
    if not labels:
        labels = tuple(str(i) for i in range(k))
        log.warning("input %r: no behaviour labels given, naming them %s (set --inputs %s=behavior:labels=A|B "
                    "or tag edge.inputs)", name, "|".join(labels), name)
    if len(labels) != k:
        raise RoleError(f"input {name!r} (role behavior): {len(labels)} labels for a one-hot of {k}")
    return {"shape": (1, k), "labels": labels}


def _fixed_shape(entry: dict[str, Any]) -> tuple[int, ...] | None:
    labels = entry.get("labels")
    return (1, len(labels)) if labels else None


def _sample(f: Fields, d: Drive) -> np.ndarray:
    """A one-hot cycling through the labels in blocks of 8 frames."""
    k = len(f.labels or ())
    return np.eye(k)[(np.arange(d.n) // 8) % k]


def _rest(f: Fields, behavior: str) -> np.ndarray:
    """The one-hot of ``behavior``."""
    labels = list(f.labels or ())
    out = np.zeros(len(labels), np.float32)
    out[labels.index(behavior)] = 1.0
    return out


SPEC = RoleSpec(
    name="behavior",
    layouts=("NC",),
    fields=("labels",),
    shape=_shape,
    provider="runtime.inputs.behavior:BehaviorProvider",
    parse=_parse,
    fixed_shape=_fixed_shape,
    sample=_sample,
    rest=_rest,
    donkeycar_names=("behavior_in", "xbehavior_in"),
)
