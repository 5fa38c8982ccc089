"""The runtime's state file (runtime/state_file.py): a real runtime driving the demo bundle into a
car simulator on a pty publishes armed and moving, then parked and not armed when it stops. ~3 s."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from runtime.assembly import run
from runtime.config import load_config
from runtime.events import Events
from runtime.sim import CarSimulator
from runtime.state_file import StateFile, default_state_path, read_state
from runtime.stats import LoopStats
from runtime.telemetry import FrameReport


def wait_state(path: Path, ok: Any, timeout_s: float) -> dict[str, Any] | None:
    end = time.monotonic() + timeout_s
    doc = None
    while time.monotonic() < end:
        doc = read_state(path)
        if doc is not None and ok(doc):
            return doc
        time.sleep(0.05)
    return doc


def test_a_driving_runtime_says_armed_then_parked_on_exit(
    demo_bundle: Path, clip_video: Path, sim: tuple[CarSimulator, str], tmp_path: Path,
) -> None:
    _, port = sim
    path = tmp_path / "state.json"
    cfg = load_config(None, {
        "model.bundle": str(demo_bundle), "model.backend": "onnxruntime", "link.uri": port,
        "camera.uri": f"file://{clip_video}?loop=1&realtime=1", "state.file": str(path), "run.duration_s": 20.0,
    })
    stop = threading.Event()
    summary: dict[str, Any] = {}
    t = threading.Thread(target=lambda: summary.update(run(cfg, stop)), daemon=True)
    t.start()
    try:
        driving = wait_state(path, lambda d: d["armed"] and not d["parked"], 10.0)
        assert driving is not None and driving["armed"] and not driving["parked"], driving
        assert driving["running"] and driving["bundle"] == str(demo_bundle.resolve())
        assert str(driving["model_version"]) == "3" and driving["fps"] > 0
        assert abs(time.monotonic() - driving["updated_monotonic"]) < 2.0
        assert set(driving["health"]) == {"failsafe_per_min", "watchdog_per_min", "loop_p99_ms"}
        assert driving["health"]["loop_p99_ms"] is not None
    finally:
        stop.set()
        t.join(10.0)
    assert summary["frames"] > 0
    final = json.loads(path.read_text())
    assert final == {**final, "running": False, "armed": False, "parked": True}


def report(throttle: float, sent: bool = True) -> FrameReport:
    return FrameReport(1, 0, 0.0, True, 0.0, throttle, 0.0, throttle, sent, None, 5.0 if sent else None)


def test_parked_after_n_seconds_without_throttle_and_unarmed_when_nothing_goes_out(tmp_path: Path) -> None:
    now = [100.0]
    st = StateFile(tmp_path / "s.json", bundle=str(tmp_path), model_version="3", events=Events(), stats=LoopStats(),
                   parked_after_s=2.0, clock=lambda: now[0])
    frame: Any = None
    st.on_frame(frame, report(0.3))
    assert st.snapshot(True)["parked"] is False
    now[0] += 0.5
    st.on_frame(frame, report(0.0))  # stopped but still commanding: armed, parked only after 2 s
    assert st.snapshot(True)["armed"] and not st.snapshot(True)["parked"]
    now[0] += 1.6
    st.on_frame(frame, report(0.0))
    assert st.snapshot(True)["armed"] and st.snapshot(True)["parked"]
    st.on_frame(frame, report(0.5))
    now[0] += 1.5  # nothing went out for 1.5 s: the car's own disarm has run out
    assert st.snapshot(True)["armed"] is False and st.snapshot(True)["parked"] is True


def test_default_path_follows_runtime_directory(tmp_path: Path) -> None:
    assert default_state_path({"RUNTIME_DIRECTORY": str(tmp_path)}) == tmp_path / "state.json"


def test_a_stale_state_is_parked_only_when_its_runtime_is_gone(tmp_path: Path) -> None:
    import subprocess
    import sys

    from runtime.atomic import atomic_write_json
    from runtime.update.parked import parked_now

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    path = tmp_path / "state.json"
    old = {"running": True, "armed": True, "parked": False, "updated_monotonic": time.monotonic() - 10,
           "updated_wall": time.time() - 10}
    atomic_write_json(path, {**old, "pid": gone.pid})
    assert parked_now(path)[0] is True
    atomic_write_json(path, {**old, "pid": os.getpid()})  # alive but silent: a stalled runtime
    assert parked_now(path) == (False, parked_now(path)[1]) and "stalled" in parked_now(path)[1]
    atomic_write_json(path, {**old, "pid": os.getpid(), "updated_monotonic": time.monotonic(),
                             "updated_wall": time.time()})
    assert parked_now(path)[0] is False
    assert parked_now(tmp_path / "none.json")[0] is True
