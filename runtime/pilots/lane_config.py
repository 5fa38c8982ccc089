"""The ``[lane]`` config section: the camera's geometry and the lane follower's gains and limits.

The defaults are the synthetic road's camera and car (``converter/demo/track.py``): a camera 0.25 m
over flat ground, focal length 0.55 of the frame width, horizon 0.30 of the frame height down
(the track varies it between 0.27 and 0.33 with the camera pitch), wheelbase 0.26 m, 0.45 rad of
wheel angle at full steering, pure pursuit 1.0 m ahead. Measure your own car's values: the
camera's height, its focal length over the frame width (from a calibration), the row of the horizon
over the frame height, the wheelbase and the wheel angle at full lock.
"""

from __future__ import annotations

from dataclasses import dataclass

SATURATIONS = ("tanh", "clip")


@dataclass(frozen=True)
class LaneConfig:
    """How the lane follower sees and steers (see the module for the defaults' origin).

    Geometry: ``camera_height_m`` (m, > 0) above the ground; ``focal_fraction`` (> 0) the focal
    length in pixels over the camera frame's width; ``horizon_fraction`` in [0, 1) the horizon's
    row over the frame's height. Centreline: rows whose ground lies ``near_m`` .. ``far_m`` ahead
    (m) are used; in each, the largest drivable run at least ``min_width_m`` wide and not cut by the
    image's side gives one point (its middle); at least ``min_points`` points, spanning ``lookahead_m``, else the lane is lost.
    Less than ``min_drivable_fraction`` of the ground in view drivable: lost. Steering: pure pursuit to
    the fitted centreline ``lookahead_m`` ahead, path curvature ``k = 2 x / L^2`` (1/m), wheel angle
    ``atan(wheelbase_m * k)``, steering ``gain * angle / max_steer_angle_rad`` squashed by
    ``saturation`` (``tanh``, as the synthetic track's target, or ``clip`` to [-1, 1]). Throttle:
    ``throttle_max`` on a straight, falling linearly with ``|k|`` to ``throttle_min`` at
    ``slow_curvature`` (1/m) and beyond. Raises ``ValueError`` naming the key when out of range.
    """

    camera_height_m: float = 0.25
    focal_fraction: float = 0.55
    horizon_fraction: float = 0.30
    lookahead_m: float = 1.0
    near_m: float = 0.4
    far_m: float = 3.0
    wheelbase_m: float = 0.26
    max_steer_angle_rad: float = 0.45
    gain: float = 1.0
    saturation: str = "tanh"
    min_drivable_fraction: float = 0.05
    min_width_m: float = 0.15
    min_points: int = 4
    throttle_max: float = 0.5
    throttle_min: float = 0.2
    slow_curvature: float = 1.0

    def __post_init__(self) -> None:
        positive = ("camera_height_m", "focal_fraction", "lookahead_m", "near_m", "wheelbase_m",
                    "max_steer_angle_rad", "slow_curvature")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"lane.{name} = {getattr(self, name)} must be > 0")
        if not 0.0 <= self.horizon_fraction < 1.0:
            raise ValueError(f"lane.horizon_fraction = {self.horizon_fraction} must be in [0, 1)")
        if not self.near_m <= self.lookahead_m <= self.far_m:
            raise ValueError(f"lane.lookahead_m = {self.lookahead_m} must lie in [near_m, far_m] = "
                             f"[{self.near_m}, {self.far_m}]")
        if not 0.0 < self.gain <= 4.0:
            raise ValueError(f"lane.gain = {self.gain} must be in (0, 4]")
        if self.saturation not in SATURATIONS:
            raise ValueError(f"lane.saturation = {self.saturation!r}; choose from {', '.join(SATURATIONS)}")
        for name in ("min_drivable_fraction", "throttle_max", "throttle_min"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"lane.{name} = {getattr(self, name)} must be in [0, 1]")
        if self.throttle_min > self.throttle_max:
            raise ValueError(f"lane.throttle_min = {self.throttle_min} must be <= throttle_max = {self.throttle_max}")
        if self.min_width_m < 0:
            raise ValueError(f"lane.min_width_m = {self.min_width_m} must be >= 0")
        if self.min_points < 2:
            raise ValueError(f"lane.min_points = {self.min_points} must be >= 2")
