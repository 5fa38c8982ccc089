"""The detection safety layer (``rc-runtime --safety BUNDLE``, ``[safety]``): a detector bundle run
beside any pilot on the same camera frames, in its own thread, that holds the car in neutral while
a configured class is in the path, when its verdicts are stale and when it fails. It can never
raise throttle or move the car: it only blocks (:meth:`runtime.watchdog.Watchdog.block`).

- :mod:`runtime.safety.config`: the ``[safety]`` section;
- :mod:`runtime.safety.region`: the path region (a convex polygon in frame coordinates);
- :mod:`runtime.safety.rule`: which detections stop the car, and the hysteresis that lifts a stop;
- :mod:`runtime.safety.layer`: the thread, the block and the loop's check.
"""

from __future__ import annotations

from runtime.safety.config import DEFAULT_REGION, SafetyConfig
from runtime.safety.layer import ERROR, OBSTACLE, STALE, SafetyLayer, Verdict
from runtime.safety.region import PathRegion
from runtime.safety.rule import Hysteresis, StopRule, to_frame

__all__ = ["DEFAULT_REGION", "ERROR", "OBSTACLE", "STALE", "Hysteresis", "PathRegion", "SafetyConfig",
           "SafetyLayer", "StopRule", "Verdict", "to_frame"]
