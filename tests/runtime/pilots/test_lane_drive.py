"""The lane follower drives the simulated car over a real pty from a real segmentation bundle
(ONNX Runtime; tests/runtime/perception_bundles.py): its steering follows the synthetic road, and
with no road in view the car is in neutral with ``lane.lost`` until the road is back."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from runtime.assembly import run
from runtime.pilots.lane_config import LaneConfig
from runtime.pilots.lane_geometry import throttle_for
from runtime.sim import CarSimulator
from tests.runtime.helpers import WIRE_TOL, make_config
from tests.runtime.perception_bundles import road_drive, seg_bundle
from tests.runtime.perception_drive import frame_folder, neutrals, records_by_id, wire_drives

N = 75


def test_the_lane_follower_steers_along_the_road_and_records_what_it_saw(
    tmp_path: Path, sim: tuple[CarSimulator, str],
) -> None:
    car, port = sim
    frames, target = road_drive(N, seed=18)  # left and right bends
    cfg = make_config(seg_bundle(tmp_path), frame_folder(tmp_path / "frames", frames), link=port)
    cfg.record.dir, cfg.record.overlay, cfg.record.overlay_every = str(tmp_path / "rec"), True, 2
    summary = run(cfg)
    assert summary["pilot"] == "lane_follow" and summary["pilot_held"] == 0
    records = records_by_id(summary)
    cmds = wire_drives(car)
    assert len(cmds) >= N // 2  # a loaded machine may drop frames; most must drive
    errors = []
    for c in cmds:
        r = records[c["tag"]]
        errors.append(c["steering"] - target[r["source_index"]])
        lane = r["pilot"]
        assert abs(c["steering"] - r["steering"]) <= WIRE_TOL
        assert abs(c["throttle"] - throttle_for(lane["curvature"], LaneConfig())) <= WIRE_TOL + 1e-4
    err = np.abs(errors)
    assert err.mean() < 0.03 and err.max() < 0.1, (err.mean(), err.max())
    assert np.ptp(target[[records[c["tag"]]["source_index"] for c in cmds]]) > 0.4  # the road really bends
    for r in records.values():  # the audit trail: what the pilot saw, never the maps
        lane = r["pilot"]
        assert 0.3 < lane["drivable_fraction"] < 1.0 and 4 <= len(lane["centreline"]) <= 8 and lane["lookahead"]
        assert all(0 <= v < 120 and 0 <= u < 160 for v, u in lane["centreline"])
        assert r["raw"] is None and len(str(r)) < 2500
    overlay = Path(summary["recording"]["dir"]) / "overlay.mp4"
    cap = cv2.VideoCapture(str(overlay))
    n_video = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, img = cap.read()
    cap.release()
    assert ok and img.shape == (120, 160, 3) and n_video == summary["recording"]["overlay_frames"] >= len(records) // 3


def test_no_road_in_view_is_neutral_and_lane_lost_until_the_road_is_back(
    tmp_path: Path, sim: tuple[CarSimulator, str],
) -> None:
    car, port = sim
    frames, _ = road_drive(N, seed=5)
    grass = np.random.default_rng(0).normal((40, 140, 50), 4, frames[20:45].shape)
    frames[20:45] = np.clip(grass, 0, 255).astype(np.uint8)  # nothing drivable for 25 frames
    cfg = make_config(seg_bundle(tmp_path), frame_folder(tmp_path / "frames", frames), link=port)
    cfg.record.dir = str(tmp_path / "rec")
    summary = run(cfg)
    ev = summary["events"]["lane.lost"]
    assert ev["episodes"] == 1 and not ev["active"] and "drivable area" in ev["last_detail"]
    records = records_by_id(summary)
    lost = [r for r in records.values() if 20 <= r["source_index"] < 45]
    assert lost and all(r["held"] == "lane.lost" and not r["sent"] and r["pilot"]["lost"] for r in lost)
    assert summary["pilot_held"] == len(lost)
    cmds = wire_drives(car)
    src = [records[c["tag"]]["source_index"] for c in cmds]
    assert not [s for s in src if 20 <= s < 45]  # never driven from a frame without a lane
    assert any(s < 20 for s in src) and any(s >= 45 for s in src)  # drove before, and again after
    first_lost = min(r["t_capture"] for r in lost)
    last_before = max(c["t"] for c in cmds if records[c["tag"]]["source_index"] < 20)
    stop = [t for t in neutrals(car) if t > last_before]
    assert stop and stop[0] - first_lost < 0.1  # neutral on the wire within the deadline of the first lost frame
