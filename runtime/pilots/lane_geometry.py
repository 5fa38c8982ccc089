"""The lane follower's geometry: mask pixels -> ground points -> a centreline -> pure pursuit.

Camera model: a pinhole at ``camera_height_m`` over flat ground, looking along the car's axis,
square pixels. In camera-frame pixel coordinates (continuous, 0 at the top-left edge, a pixel's
centre at +0.5) a ground point ``z`` m ahead and ``x`` m to the right is seen at row
``v = v_h + f * h / z`` and column ``u = W / 2 + f * x / z``, with ``f = focal_fraction * W`` and
``v_h = horizon_fraction * H`` (``converter/demo/track.py`` renders its road with the same model).
A mask pixel is mapped back to the camera frame through the bundle's preprocessing: the frame was
resized to ``width`` x ``height``, then ``crop_top`` rows were dropped, and the mask may have its
own resolution over that input.

Sign conventions as everywhere in this project: ``x`` > 0 right, curvature > 0 turns right,
steering > 0 right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from runtime.manifest import PreprocessSpec
from runtime.pilots.lane_config import LaneConfig


@dataclass(frozen=True)
class GroundCamera:
    """The pinhole over flat ground for a ``width`` x ``height`` camera frame (pixels; see the module)."""

    width: int
    height: int
    focal_px: float
    horizon_px: float
    camera_height_m: float

    @classmethod
    def for_frame(cls, cfg: LaneConfig, width: int, height: int) -> GroundCamera:
        """The ``[lane]`` geometry for a camera frame of ``width`` x ``height`` pixels."""
        return cls(width, height, cfg.focal_fraction * width, cfg.horizon_fraction * height, cfg.camera_height_m)

    def to_ground(self, v: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel rows ``v`` and columns ``u`` (broadcast) -> (z ahead, x right) in metres; rows at or
        above the horizon give inf/NaN (no ground there)."""
        dv = np.asarray(v, np.float64) - self.horizon_px
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(dv > 0, self.focal_px * self.camera_height_m / dv, np.inf)
            x = (np.asarray(u, np.float64) - self.width / 2) * z / self.focal_px
        return z, x

    def to_pixel(self, z: np.ndarray | float, x: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Ground points (z > 0 ahead, x right; metres) -> (row v, column u) in frame pixels."""
        z = np.asarray(z, np.float64)
        return (self.horizon_px + self.focal_px * self.camera_height_m / z,
                self.width / 2 + self.focal_px * np.asarray(x, np.float64) / z)


def mask_pixel_centres(mask_hw: tuple[int, int], spec: PreprocessSpec,
                       frame_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Where the centres of a (rows, columns) mask over the model input lie in the camera frame:
    (v per mask row, u per mask column), frame pixels. The mask covers the input after the crop:
    ``height - crop_top`` resized rows below the first ``crop_top``, all ``width`` columns."""
    hm, wm = mask_hw
    h0, w0 = frame_hw
    rows_in, cols_in = spec.height - spec.crop_top, spec.width
    v = ((np.arange(hm) + 0.5) * rows_in / hm + spec.crop_top) * (h0 / spec.height)
    u = (np.arange(wm) + 0.5) * cols_in / wm * (w0 / spec.width)
    return v, u


def largest_run(row: np.ndarray) -> tuple[int, int] | None:
    """The longest run of True in a 1-D bool array as (start, end) (end exclusive), the leftmost on
    a tie; None when there is no True."""
    padded = np.concatenate(([False], row.astype(bool), [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    if edges.size == 0:
        return None
    starts, ends = edges[0::2], edges[1::2]
    i = int(np.argmax(ends - starts))
    return int(starts[i]), int(ends[i])


@dataclass(frozen=True)
class Centreline:
    """The lane centre seen in one mask: per used row, the point's ground position (``z`` ahead, ``x``
    right; m) and frame pixel (``v`` row, ``u`` column), nearest first; ``drivable_fraction`` of the
    ground in view (the mask rows below the horizon)."""

    z: np.ndarray
    x: np.ndarray
    v: np.ndarray
    u: np.ndarray
    drivable_fraction: float


def measure_centreline(mask: np.ndarray, v_rows: np.ndarray, u_cols: np.ndarray, cam: GroundCamera,
                       cfg: LaneConfig) -> Centreline:
    """Row-wise centres of the largest drivable run, in the rows whose ground lies ``near_m`` ..
    ``far_m`` ahead and whose run is at least ``min_width_m`` wide and does not touch the image's
    left or right side (a lane wider than the view there has no centre to see). ``mask`` (Hm, Wm) bool;
    ``v_rows`` (Hm,), ``u_cols`` (Wm,) its pixel centres in the frame (:func:`mask_pixel_centres`)."""
    z_rows, _ = cam.to_ground(v_rows, np.zeros_like(v_rows))
    ground = np.isfinite(z_rows)
    fraction = float(mask[ground].mean()) if ground.any() else 0.0
    zs: list[float] = []
    xs: list[float] = []
    vs: list[float] = []
    us: list[float] = []
    metres_per_col = (u_cols[1] - u_cols[0]) / cam.focal_px if u_cols.size > 1 else 1.0 / cam.focal_px
    for r in np.flatnonzero(ground & (z_rows >= cfg.near_m) & (z_rows <= cfg.far_m))[::-1]:  # nearest first
        run = largest_run(mask[r])
        if run is None:
            continue
        z = float(z_rows[r])
        if run[0] == 0 or run[1] == mask.shape[1] or (run[1] - run[0]) * metres_per_col * z < cfg.min_width_m:
            continue  # cut by the image's side (its centre is unknown), or too narrow to be the lane
        u = float(u_cols[run[0]] + u_cols[run[1] - 1]) / 2.0
        zs.append(z)
        xs.append((u - cam.width / 2) * z / cam.focal_px)
        vs.append(float(v_rows[r]))
        us.append(u)
    return Centreline(np.asarray(zs), np.asarray(xs), np.asarray(vs), np.asarray(us), fraction)


@dataclass(frozen=True)
class LaneDecision:
    """What the lane follower concluded from one centreline: ``hold`` (why the car must stop, or
    None), the fitted centre ``lookahead_x`` (m) at the look-ahead, the pursuit ``curvature`` (1/m),
    ``steering`` in [-1, 1] and ``throttle``; all 0 when holding."""

    hold: str | None
    lookahead_x: float = 0.0
    curvature: float = 0.0
    steering: float = 0.0
    throttle: float = 0.0


def pursuit_steering(lookahead_x: float, cfg: LaneConfig) -> tuple[float, float]:
    """Pure pursuit to a point ``lookahead_x`` m right at ``lookahead_m`` ahead -> (path curvature
    ``2 x / L^2`` in 1/m, steering in [-1, 1]): wheel angle ``atan(wheelbase * k)`` over the full-lock
    angle, times ``gain``, squashed by ``saturation``."""
    k = 2.0 * lookahead_x / cfg.lookahead_m**2
    s = cfg.gain * math.atan(cfg.wheelbase_m * k) / cfg.max_steer_angle_rad
    return k, (math.tanh(s) if cfg.saturation == "tanh" else min(1.0, max(-1.0, s)))


def throttle_for(curvature: float, cfg: LaneConfig) -> float:
    """``throttle_max`` at curvature 0, linearly down to ``throttle_min`` at ``slow_curvature`` (1/m)."""
    t = min(1.0, abs(curvature) / cfg.slow_curvature)
    return cfg.throttle_max - (cfg.throttle_max - cfg.throttle_min) * t


def decide(line: Centreline, cfg: LaneConfig) -> LaneDecision:
    """Steer by the centreline or hold: too little drivable ground, too few points, or none on both
    sides of the look-ahead distance (the lane is not seen that far, or only beyond it). The
    centre at the look-ahead comes from a least-squares fit ``x = a + b z + c z^2`` (a line for
    fewer than 3 points), the lane's own shape to second order."""
    if line.drivable_fraction < cfg.min_drivable_fraction:
        return LaneDecision(f"drivable area {line.drivable_fraction:.1%} of the ground in view "
                            f"< lane.min_drivable_fraction {cfg.min_drivable_fraction:.1%}")
    n = line.z.size
    if n < cfg.min_points:
        return LaneDecision(f"{n} centreline point{'' if n == 1 else 's'} < lane.min_points {cfg.min_points}")
    if not line.z.min() <= cfg.lookahead_m <= line.z.max():
        return LaneDecision(f"no centreline point at the look-ahead {cfg.lookahead_m} m "
                            f"(lane seen {line.z.min():.2f}-{line.z.max():.2f} m ahead)")
    coef = np.polyfit(line.z, line.x, 2 if n >= 3 else 1)
    x_l = float(np.polyval(coef, cfg.lookahead_m))
    k, steering = pursuit_steering(x_l, cfg)
    return LaneDecision(None, x_l, k, steering, throttle_for(k, cfg))
