"""The detection safety layer beside the lane follower, on the simulated car over a real pty, with
real ONNX Runtime bundles (tests/runtime/perception_bundles.py): a cone entering the path puts
NEUTRAL on the wire within the watchdog deadline of its frame's capture, the pilot drives again
after the hysteresis, and a crashed or hung detector means neutral."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime.assembly import run
from runtime.backends import open_backend
from runtime.config import RuntimeConfig
from runtime.sim import CarSimulator
from tests.runtime.helpers import FaultyBackend, make_config
from tests.runtime.perception_bundles import det_bundle, draw_cone, road_drive, seg_bundle
from tests.runtime.perception_drive import frame_folder, neutrals, records_by_id, wire_drives

DEADLINE_S = 0.1
EPISODES = [(20, 35), (65, 80), (110, 125)]  # frames with a cone on the road ahead


def safety_config(tmp_path: Path, frames: np.ndarray, port: str) -> RuntimeConfig:
    cfg = make_config(seg_bundle(tmp_path), frame_folder(tmp_path / "frames", frames), link=port)
    cfg.safety.bundle = str(det_bundle(tmp_path))
    cfg.safety.classes, cfg.safety.clear_frames, cfg.safety.clear_s = ("cone",), 5, 0.3
    cfg.record.dir = str(tmp_path / "rec")
    return cfg


@pytest.mark.slow
def test_a_cone_in_the_path_stops_the_car_within_the_deadline_and_clearing_it_lets_it_drive(
    tmp_path: Path, sim: tuple[CarSimulator, str],
) -> None:
    car, port = sim
    frames, _ = road_drive(140, seed=18)
    for a, b in EPISODES:
        frames[a:b] = [draw_cone(f, z=1.3, x=0.05) for f in frames[a:b]]
    summary = run(safety_config(tmp_path, frames, port))
    records = records_by_id(summary)
    cmds = wire_drives(car)
    stops = neutrals(car)
    src = {c["tag"]: records[c["tag"]]["source_index"] for c in cmds}
    latencies = []
    for a, b in EPISODES:
        seen = sorted((r["t_capture"], r["source_index"]) for r in records.values() if a <= r["source_index"] < b)
        t_first, t_last = seen[0][0], seen[-1][0]
        stop = min(t for t in stops if t > t_first)
        latencies.append(stop - t_first)
        after = [c for c in cmds if c["t"] > stop and src[c["tag"]] < b + 45]
        # held from the stop until the cone is gone and the hysteresis has passed, then driving again
        assert after and all(src[c["tag"]] >= b for c in after), [(src[c["tag"]], c["t"] - stop) for c in after]
        assert after[0]["t"] - t_last >= 0.3 - 1 / 30  # clear_s after the last cone frame (one frame of slack)
    assert max(latencies) < DEADLINE_S, latencies
    ev = summary["events"]["safety.obstacle"]
    assert ev["episodes"] == len(EPISODES) and not ev["active"] and "cone" in ev["last_detail"]
    st = summary["safety"]
    assert st["stops"] == len(EPISODES) and st["errors"] == 0 and st["stop_latency_ms"]["max"] < DEADLINE_S * 1000
    hits = [r for r in records.values() if r["safety"] and any(d["in_path"] for d in r["safety"]["detections"])]
    assert hits and all(d["label"] == "cone" and len(d["box"]) == 4 for r in hits for d in r["safety"]["detections"])
    assert all(r["safety"]["age_ms"] <= DEADLINE_S * 1000 for r in records.values() if r["sent"])


def faulty_safety_run(tmp_path: Path, port: str, **faults: Any) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    frames, _ = road_drive(75, seed=18)
    cfg = safety_config(tmp_path, frames, port)
    inner = open_backend(cfg.safety.bundle, "onnxruntime")
    faulty = FaultyBackend(inner, **faults)
    try:
        summary = run(cfg, safety_backend=faulty)
    finally:
        faulty.close()
    return summary, records_by_id(summary)


def test_a_detector_that_fails_holds_the_car_in_neutral(tmp_path: Path, sim: tuple[CarSimulator, str]) -> None:
    car, port = sim
    summary, records = faulty_safety_run(tmp_path, port, raise_on=range(3 + 25, 10**6))  # 3 warm-up runs
    ev = summary["events"]["safety.error"]
    assert ev["episodes"] == 1 and ev["active"] and "injected failure" in ev["last_detail"]
    cmds = wire_drives(car)
    assert cmds, "it drove while the detector answered"
    t_fail = min(r["t_capture"] for r in records.values() if r["safety"] and r["safety"]["error"])
    last_ok = max(r["t_capture"] for r in records.values() if r["safety"] and not r["safety"]["error"])
    stop = min(t for t in neutrals(car) if t > max(c["t"] for c in cmds))
    assert max(c["t"] for c in cmds) < t_fail + DEADLINE_S and stop - last_ok < 2 * DEADLINE_S
    assert summary["safety_held"] > 0 and summary["safety"]["errors"] > 0


def test_a_hung_detector_is_stale_and_the_car_waits_in_neutral(tmp_path: Path, sim: tuple[CarSimulator, str]) -> None:
    car, port = sim
    summary, records = faulty_safety_run(tmp_path, port, hang_on=range(3 + 20, 3 + 21), hang_s=0.8)
    ev = summary["events"]["safety.stale"]
    assert ev["episodes"] >= 1 and not ev["active"] and "limit 100 ms" in ev["last_detail"]
    held = [r for r in records.values() if r["held"] == "safety.stale"]
    assert len(held) >= 10  # ~0.7 s of frames at 30 fps held back
    cmds = wire_drives(car)
    by_tag = {c["tag"] for c in cmds}
    assert not by_tag & {r["frame_id"] for r in held}
    t_held = min(r["t_capture"] for r in held)
    assert any(c["t"] > t_held + 0.8 for c in cmds)  # driving again once the detector answers
    gap = [t for t in neutrals(car) if t_held - DEADLINE_S < t < t_held + DEADLINE_S]
    assert gap  # neutral on the wire right when its verdicts went stale
