"""The lane follower's math: the camera model, mask-to-frame mapping, runs, the fit and pure pursuit."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from converter.demo import track
from runtime.manifest import PreprocessSpec
from runtime.pilots.lane_config import LaneConfig
from runtime.pilots.lane_geometry import (
    Centreline,
    GroundCamera,
    decide,
    largest_run,
    mask_pixel_centres,
    measure_centreline,
    pursuit_steering,
    throttle_for,
)

CFG = LaneConfig()


def test_the_defaults_are_the_synthetic_tracks_camera_and_car() -> None:
    assert (CFG.camera_height_m, CFG.focal_fraction, CFG.lookahead_m, CFG.wheelbase_m, CFG.max_steer_angle_rad) == (
        track.CAMERA_HEIGHT, track.FOCAL_FRACTION, track.LOOKAHEAD, track.WHEELBASE, track.MAX_STEER_ANGLE)


def test_ground_points_and_pixels_round_trip_as_the_track_renders_them() -> None:
    cam = GroundCamera.for_frame(CFG, 160, 120)
    v, u = cam.to_pixel(np.array([0.5, 1.0, 2.0]), np.array([-0.2, 0.0, 0.3]))
    # the track: v = v_h + f h / z, u = cx + f x / z with f = 0.55 * 160, v_h = 0.3 * 120
    np.testing.assert_allclose(v, 36 + 88 * 0.25 / np.array([0.5, 1.0, 2.0]))
    np.testing.assert_allclose(u, 80 + 88 * np.array([-0.2, 0.0, 0.3]) / np.array([0.5, 1.0, 2.0]))
    z, x = cam.to_ground(v, u)
    np.testing.assert_allclose(z, [0.5, 1.0, 2.0])
    np.testing.assert_allclose(x, [-0.2, 0.0, 0.3], atol=1e-12)
    z_sky, _ = cam.to_ground(np.array([10.0, 36.0]), np.array([80.0, 80.0]))
    assert np.isinf(z_sky).all()  # at or above the horizon: no ground


def test_mask_pixels_map_back_through_resize_and_crop() -> None:
    spec = PreprocessSpec(width=80, height=60, crop_top=16)
    # a mask at half the input's resolution over the cropped 44 x 80 input, in a 120 x 160 frame
    v, u = mask_pixel_centres((22, 40), spec, (120, 160))
    assert v[0] == pytest.approx((1.0 + 16) * 2) and v[-1] == pytest.approx((43.0 + 16) * 2)
    assert u[0] == pytest.approx(2.0) and u[-1] == pytest.approx(158.0)


@pytest.mark.parametrize(("row", "run"), [
    ([0, 1, 1, 0, 1, 1, 1, 0], (4, 7)),
    ([1, 1, 0, 1, 1], (0, 2)),  # a tie: the leftmost
    ([1, 1, 1], (0, 3)),
    ([0, 0], None),
])
def test_largest_run(row: list[int], run: tuple[int, int] | None) -> None:
    assert largest_run(np.array(row, bool)) == run


@pytest.mark.parametrize(("curvature", "offset", "heading"), [(0.0, 0.0, 0.0), (0.5, 0.1, -0.1), (-0.7, -0.2, 0.25)])
def test_pure_pursuit_to_the_true_centre_is_the_tracks_steering_target(curvature: float, offset: float, heading: float) -> None:
    x_l = -offset - heading * CFG.lookahead_m + curvature * CFG.lookahead_m**2 / 2
    k, steering = pursuit_steering(x_l, CFG)
    assert k == pytest.approx(2 * x_l)
    assert steering == pytest.approx(track.steering_target(curvature, offset, heading), abs=1e-6)


def test_gain_and_clip_saturation() -> None:
    cfg = LaneConfig(gain=2.0, saturation="clip")
    _, s = pursuit_steering(0.1, cfg)
    assert s == pytest.approx(2.0 * math.atan(0.26 * 0.2) / 0.45)
    assert pursuit_steering(5.0, cfg)[1] == 1.0 and pursuit_steering(-5.0, cfg)[1] == -1.0


def test_throttle_falls_with_curvature_to_its_minimum() -> None:
    assert throttle_for(0.0, CFG) == CFG.throttle_max
    assert throttle_for(-0.5, CFG) == pytest.approx((CFG.throttle_max + CFG.throttle_min) / 2)
    assert throttle_for(3.0, CFG) == CFG.throttle_min


def lane_mask(cam: GroundCamera, v: np.ndarray, u: np.ndarray, centre: float, half: float = 0.35) -> np.ndarray:
    """A drivable mask of a straight lane ``centre`` m right of the camera, from the geometry."""
    z, x = cam.to_ground(v[:, None], u[None, :])
    return np.isfinite(z) & (np.abs(x - centre) <= half)


def test_the_centreline_of_a_drawn_lane_is_found_and_steered_to() -> None:
    cam = GroundCamera.for_frame(CFG, 160, 120)
    v, u = mask_pixel_centres((44, 80), PreprocessSpec(width=80, height=60, crop_top=16), (120, 160))
    line = measure_centreline(lane_mask(cam, v, u, centre=0.15), v, u, cam, CFG)
    assert line.z.size >= CFG.min_points and line.z.min() <= 1.0 <= line.z.max()
    assert np.all(np.diff(line.z) > 0)  # nearest first
    np.testing.assert_allclose(line.x, 0.15, atol=0.05)  # within a pixel's width at those distances
    d = decide(line, CFG)
    assert d.hold is None and d.lookahead_x == pytest.approx(0.15, abs=0.02)
    assert d.steering == pytest.approx(pursuit_steering(0.15, CFG)[1], abs=0.02) and d.steering > 0  # right


def test_a_speck_narrower_than_min_width_is_not_a_lane() -> None:
    cam = GroundCamera.for_frame(CFG, 160, 120)
    v, u = mask_pixel_centres((44, 80), PreprocessSpec(width=80, height=60, crop_top=16), (120, 160))
    line = measure_centreline(lane_mask(cam, v, u, centre=0.0, half=0.03), v, u, cam, CFG)
    assert line.z.size == 0 and decide(line, CFG).hold is not None


@pytest.mark.parametrize(("line", "reason"), [
    (Centreline(np.arange(5.0), np.zeros(5), np.zeros(5), np.zeros(5), 0.01), "drivable area 1.0% of the ground"),
    (Centreline(np.array([0.5, 0.8]), np.zeros(2), np.zeros(2), np.zeros(2), 0.5), "2 centreline points < lane.min_points 4"),
    (Centreline(np.linspace(0.4, 0.9, 6), np.zeros(6), np.zeros(6), np.zeros(6), 0.5),
     "no centreline point at the look-ahead 1.0 m (lane seen 0.40-0.90 m ahead)"),
])
def test_too_little_lane_holds_naming_why(line: Centreline, reason: str) -> None:
    d = decide(line, CFG)
    assert d.hold is not None and d.hold.startswith(reason) and d.steering == 0.0 and d.throttle == 0.0


@pytest.mark.parametrize(("key", "value", "message"), [
    ("lookahead_m", 4.0, "lane.lookahead_m = 4.0 must lie in [near_m, far_m]"),
    ("horizon_fraction", 1.0, "lane.horizon_fraction = 1.0 must be in [0, 1)"),
    ("saturation", "soft", "lane.saturation = 'soft'; choose from tanh, clip"),
    ("throttle_min", 0.9, "lane.throttle_min = 0.9 must be <= throttle_max"),
    ("camera_height_m", 0.0, "lane.camera_height_m = 0.0 must be > 0"),
])
def test_lane_config_ranges(key: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        LaneConfig(**{key: value})  # type: ignore[arg-type]
