"""Disagreement statistics between the driving model and the shadow, over pairs of their raw
decisions (steering, throttle before limits) on the SAME frame: |diff| percentiles, sign flips and
large disagreements, with counts per minute of driving. The policy's limits are left out on
purpose: they are stateful (slew) and the same for both, so they would only blur the comparison."""

from __future__ import annotations

import math
from typing import Any

from runtime.shadow.clips import Episodes
from runtime.shadow.config import ShadowConfig
from runtime.stats import Ring


class Disagreement:
    """Pairs added by the shadow thread (:meth:`add`), summarised by :meth:`summary`."""

    def __init__(self, cfg: ShadowConfig, capacity: int = 1 << 16) -> None:
        self.cfg = cfg
        self.steering = Ring(capacity)
        self.throttle = Ring(capacity)
        self.episodes = Episodes()
        self.pairs = self.sign_flips = self.large = self.non_finite = 0
        self.t_first: float | None = None

    def add(self, frame_id: int, index: int, t_capture: float, drive: tuple[float, float | None],
            shadow: tuple[float, float | None]) -> None:
        """One frame's (steering, throttle) from each model (throttle None: that model gives none,
        so throttle is compared only when both do). A pair with a non-finite value (either model) is
        counted, not compared."""
        values = [shadow[0], drive[0]] + [v for v in (shadow[1], drive[1]) if v is not None]
        if not all(math.isfinite(v) for v in values):
            self.non_finite += 1
            return
        if self.t_first is None:
            self.t_first = t_capture
        self.pairs += 1
        ds = abs(shadow[0] - drive[0])
        self.steering.add(ds)
        dt = 0.0
        if shadow[1] is not None and drive[1] is not None:
            dt = abs(shadow[1] - drive[1])
            self.throttle.add(dt)
        band = self.cfg.sign_deadband
        if abs(shadow[0]) > band and abs(drive[0]) > band and (shadow[0] > 0) != (drive[0] > 0):
            self.sign_flips += 1
        if ds >= self.cfg.large_steering or dt >= self.cfg.large_throttle:
            self.large += 1
            self.episodes.add(frame_id, index, t_capture, ds, dt)

    def summary(self, driving_s: float) -> dict[str, Any]:
        """The figures; rates per minute over ``driving_s`` seconds of driving (None when too short)."""
        minutes = driving_s / 60.0
        t0 = self.t_first or 0.0

        def per_min(n: int) -> float | None:
            return round(n / minutes, 3) if minutes > 0 else None

        return {
            "pairs": self.pairs, "non_finite_pairs": self.non_finite, "driving_s": round(driving_s, 3),
            "steering_abs_diff": _percentiles(self.steering), "throttle_abs_diff": _percentiles(self.throttle),
            "sign_flips": self.sign_flips, "sign_flips_per_min": per_min(self.sign_flips),
            "large": self.large, "large_per_min": per_min(self.large),
            "thresholds": {"large_steering": self.cfg.large_steering, "large_throttle": self.cfg.large_throttle,
                           "sign_deadband": self.cfg.sign_deadband},
            "episodes": self.episodes.count, "episodes_per_min": per_min(self.episodes.count),
            "episode_list": [e.to_dict(t0) for e in self.episodes.kept],
        }


def _percentiles(ring: Ring) -> dict[str, float | int]:
    s = ring.summary()
    return {k: s[k] for k in ("count", "mean", "p50", "p99", "max") if k in s}
