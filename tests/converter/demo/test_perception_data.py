"""Perception ground truth on the synthetic road: masks and cone boxes checked against the pinhole camera."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from converter.demo import perception_data as pd
from converter.demo import track
from tests.conftest import checkout_env

W, H = 160, 120
F = track.FOCAL_FRACTION * W


def _plain_look(horizon: float = 0.3) -> track.Appearance:
    """Flat colours, no noise/texture/shadows/tilt: what the pixels show is the geometry alone."""
    app = track.random_appearance(np.random.default_rng(0))
    return dataclasses.replace(app, floor=(0.0, 200.0, 0.0), road=(200.0, 0.0, 0.0), line=(0.0, 0.0, 200.0),
                               center_line=False, horizon=horizon, tex_amp=0.0, shadow_len=0.0, gain=1.0,
                               tilt=0.0, noise=0.0)


def test_perception_data_does_not_import_tensorflow_or_torch() -> None:
    # The runtime's tests make clips with obstacles from it: numpy + OpenCV only.
    code = "import sys, converter.demo.perception_data; print(sorted(m for m in ('tensorflow', 'torch', 'mlflow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=checkout_env())
    assert out.stdout.strip() == "[]"


def test_a_centred_straight_road_gives_a_symmetric_mask_as_wide_as_the_lane() -> None:
    mask = pd.drivable_mask(0.0, 0.0, 0.0, 0.3, W, H)
    np.testing.assert_array_equal(mask, mask[:, ::-1])
    v_h = 0.3 * H
    assert not mask[: int(v_h)].any()  # nothing above the horizon is road
    for row in (50, 60, 75):  # rows where the lane is narrower than the image
        z = F * track.CAMERA_HEIGHT / (row + 0.5 - v_h)
        lane_px = 2 * track.LANE_HALF_WIDTH * F / z
        assert abs(mask[row].sum() - lane_px) <= 1.0, row


def test_mask_follows_the_offset_and_the_curve_the_right_way() -> None:
    centre = np.arange(W) + 0.5
    right_of_lane = pd.drivable_mask(0.0, 0.1, 0.0, 0.3, W, H)  # car right of centre: lane to the left
    z = F * track.CAMERA_HEIGHT / (50.5 - 0.3 * H)  # row 50: the whole lane is in view
    assert centre[right_of_lane[50]].mean() - W / 2 == pytest.approx(F * -0.1 / z, abs=0.5)
    bends_right = pd.drivable_mask(0.6, 0.0, 0.0, 0.3, W, H)
    assert centre[bends_right[45]].mean() > centre[bends_right[110]].mean() + 5  # far road is to the right


def test_mask_is_what_render_paints_as_road() -> None:
    app = _plain_look()
    rng = np.random.default_rng(1)
    for k, d, psi in ((0.0, 0.0, 0.0), (0.7, -0.2, 0.1), (-0.5, 0.15, -0.2)):
        frame = track._render(k, d, psi, app, rng, W, H)
        rows = slice(int(0.3 * H) + 6, H)  # leave the hazy rows at the horizon out
        b, g, r = (frame[rows, :, c].astype(int) for c in range(3))
        painted = b > g  # blue (road) over green (floor)
        off_line = r < np.maximum(b, g)  # the red edge lines straddle the lane's border: not compared
        mask = pd.drivable_mask(k, d, psi, app.horizon, W, H)[rows]
        assert np.mean((painted == mask)[off_line]) > 0.995, (k, d, psi)


def test_cone_box_is_where_the_pinhole_projects_it() -> None:
    cone = pd.Cone(z=1.0, x=0.2)
    box = pd.cone_box(cone, 0.3, W, H)
    assert box is not None
    u = W / 2 + F * 0.2 / 1.0
    half = F * pd.CONE_BASE / 2
    expected = [u - half, 36 + F * (track.CAMERA_HEIGHT - pd.CONE_HEIGHT), u + half, 36 + F * track.CAMERA_HEIGHT]
    np.testing.assert_allclose(box, expected, atol=1e-4)
    assert pd.cone_box(pd.Cone(1.0, 5.0), 0.3, W, H) is None  # far to the right: out of view


def test_drawn_cone_fills_its_box_occludes_the_road_and_leaves_the_mask() -> None:
    app = dataclasses.replace(_plain_look(), line=(200.0, 0.0, 0.0))  # no red lines beside the orange cone
    frame = track._render(0.0, 0.0, 0.0, app, np.random.default_rng(2), W, H)
    cone = pd.Cone(z=0.9, x=0.0)
    box = pd.draw_cone(frame, cone, app, np.random.default_rng(3))
    assert box is not None
    b, g, r = (frame[..., c].astype(int) for c in range(3))
    orange = (r > 150) & (g < 160) & (b < 110)
    orange[: int(app.horizon * H) + 1] = False  # the sky can be as red
    rows, cols = np.nonzero(orange)
    assert box[0] - 0.5 <= cols.min() and cols.max() + 1 <= box[2] + 0.5
    assert box[1] - 0.5 <= rows.min() and rows.max() + 1 <= box[3] + 0.5
    assert cols.max() + 1 - cols.min() >= (box[2] - box[0]) - 2  # the base spans the box
    with_cone = pd.drivable_mask(0.0, 0.0, 0.0, app.horizon, W, H, cone)
    without = pd.drivable_mask(0.0, 0.0, 0.0, app.horizon, W, H)
    assert not with_cone[orange].any() and without[orange].mean() > 0.9  # the cone stands on the road


def test_samples_are_deterministic_by_seed_and_masks_come_at_the_model_size() -> None:
    a_frames, a_masks = pd.segmentation_samples(6, seed=5, mask_size=(96, 72))
    b_frames, b_masks = pd.segmentation_samples(6, seed=5, mask_size=(96, 72))
    np.testing.assert_array_equal(a_frames, b_frames)
    np.testing.assert_array_equal(a_masks, b_masks)
    assert a_frames.shape == (6, H, W, 3) and a_masks.shape == (6, 72, 96) and a_masks.dtype == bool
    _, boxes = pd.detection_samples(40, seed=6)
    present = ~np.isnan(boxes[:, 0])
    assert 0.3 < present.mean() < 0.9
    assert (boxes[present, 2] > boxes[present, 0]).all() and (boxes[present, 3] > boxes[present, 1]).all()
    assert (boxes[present] >= 0).all() and (boxes[present][:, [0, 2]] <= W).all()


def test_obstacle_drive_is_the_plain_drive_outside_its_window() -> None:
    drive = pd.obstacle_drive(40, seed=7, appear=10, disappear=25)
    frames, steering, _ = track.drive_sequence(40, seed=7)
    assert drive.present.tolist() == [10 <= i < 25 for i in range(40)]
    for i in range(40):
        assert np.array_equal(drive.frames[i], frames[i]) == (not drive.present[i]), i
    np.testing.assert_array_equal(drive.steering, steering)
    # The cone stands on the lane centre 1.2 m ahead: its box's centre column is that point's column.
    st = track.drive_states(40, seed=7)
    u = W / 2 + F * track._lane_x(st.curvature[15], st.offset[15], st.heading[15], 1.2) / 1.2
    assert (drive.boxes[15, 0] + drive.boxes[15, 2]) / 2 == pytest.approx(u, abs=1e-3)
    assert not drive.masks[15][int(drive.boxes[15, 1]) + 1:int(drive.boxes[15, 3]) - 1, int(u)].any()
    with pytest.raises(ValueError, match="appear"):
        pd.obstacle_drive(10, seed=0, appear=8, disappear=4)
