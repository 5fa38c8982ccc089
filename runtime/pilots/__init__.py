"""Pilots: what turns one frame's backend outputs into the raw (steering, throttle) that
:class:`runtime.policy.Policy` then limits (clip, trim, slew; the watchdog and failsafes apply
unchanged). One table, one module per pilot:

- ``end_to_end`` (:mod:`runtime.pilots.end_to_end`): the model's steering/throttle outputs, each
  decoded by its decoder (a driving bundle, :attr:`Manifest.task` ``driving``);
- ``lane_follow`` (:mod:`runtime.pilots.lane_follow`): a segmentation bundle's drivable mask ->
  centreline -> pure pursuit (``[lane]``).

A bundle's task picks its pilot unless ``[model] pilot`` / ``--pilot`` names one; a pilot is refused
for a bundle of another task, and a detection bundle is refused as a pilot altogether: it can only
stop the car, beside one (``--safety``, :mod:`runtime.safety`).
"""

from __future__ import annotations

from typing import Any

from runtime.manifest import Manifest
from runtime.pilots.base import Pilot, PilotError, PilotResult
from runtime.pilots.end_to_end import EndToEndPilot
from runtime.pilots.lane_config import LaneConfig
from runtime.pilots.lane_follow import LaneFollowPilot

PILOTS: dict[str, type[Pilot]] = {
    "end_to_end": EndToEndPilot,
    "lane_follow": LaneFollowPilot,
}
PILOT_CHOICES = ("auto", *PILOTS)

__all__ = ["PILOTS", "PILOT_CHOICES", "EndToEndPilot", "LaneConfig", "LaneFollowPilot", "Pilot", "PilotError",
           "PilotResult", "open_pilot", "pilot_kind_for"]


def pilot_kind_for(manifest: Manifest, bundle: str = "the bundle") -> str:
    """The pilot a bundle's task calls for; :class:`PilotError` naming the fix for a detection (or
    unknown) model, which cannot drive by itself."""
    task = manifest.task
    for kind, cls in PILOTS.items():
        if task in cls.tasks:
            return kind
    if task == "detection":
        raise PilotError(f"{bundle} is a detection model: it cannot drive the car by itself; pass it as "
                         "--safety BUNDLE beside a pilot (--bundle a driving or segmentation bundle)")
    have = ", ".join(f"{o.name}={o.meaning}" for o in manifest.outputs)
    raise PilotError(f"{bundle}: no output means steering or segmentation (outputs: {have}); re-export it "
                     "with --outputs NAME=steering[:DECODER] or NAME=segmentation")


def open_pilot(kind: str, manifest: Manifest, lane: LaneConfig | None = None, bundle: str = "the bundle") -> Pilot:
    """The pilot ``kind`` (``auto``/"": the bundle's task decides) for ``manifest``. ``lane``: the
    ``[lane]`` section. :class:`PilotError` for an unknown kind or one that does not drive this task."""
    wanted = pilot_kind_for(manifest, bundle)  # refuses a detection bundle whatever kind is asked for
    kind = kind or "auto"
    if kind == "auto":
        kind = wanted
    cls = PILOTS.get(kind)
    if cls is None:
        raise PilotError(f"unknown pilot {kind!r}; choose from {', '.join(PILOT_CHOICES)}")
    if manifest.task not in cls.tasks:
        raise PilotError(f"pilot {kind} drives {' or '.join(cls.tasks)} models, but {bundle} is a "
                         f"{manifest.task} model; use --pilot {wanted} (or auto)")
    options: Any = lane if kind == "lane_follow" else None
    return cls.for_bundle(manifest, options)
