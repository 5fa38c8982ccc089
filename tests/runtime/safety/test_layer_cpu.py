"""How the safety layer shares the CPU with the pilot: ``[safety] nice`` (the detector thread below
the pilot's priority), checked on a real layer thread with the real detector bundle."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from runtime.backends import open_backend
from runtime.camera import CameraFrame
from runtime.config import ConfigError, config_from_dict
from runtime.events import Events
from runtime.link.null_link import NullDriveLink
from runtime.manifest import load_manifest
from runtime.safety import SafetyConfig, SafetyLayer
from runtime.watchdog import Watchdog
from tests.runtime.perception_bundles import det_bundle, road_drive

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux only")


@pytest.mark.parametrize(("toml", "message"), [
    ({"nice": 20}, r"safety.nice = 20 must be in \[0, 19\]"),
    ({"nice": -1}, r"safety.nice = -1 must be in \[0, 19\]"),
    ({"nice": True}, r"nice = True must be an int"),
])
def test_a_bad_nice_is_refused_naming_the_key(toml: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"safety": toml})


def test_nice_defaults_to_10_and_is_read_from_the_config() -> None:
    assert SafetyConfig().nice == 10
    assert config_from_dict({"safety": {"nice": 0}}).safety.nice == 0


def layer(tmp_path: Path, **cfg: object) -> tuple[SafetyLayer, Watchdog]:
    bundle = det_bundle(tmp_path)
    manifest = load_manifest(bundle)
    wd = Watchdog(NullDriveLink(), Events(), deadline_s=0.5).start()
    backend = open_backend(str(bundle), "onnxruntime", None, manifest, threads=1)
    return SafetyLayer(backend, manifest, SafetyConfig(bundle=str(bundle), **cfg), wd, Events(), 0.1), wd  # type: ignore[arg-type]


def thread_nice(sl: SafetyLayer) -> int:
    """The layer thread's nice once it has judged a frame (it renices itself before the first)."""
    frames, _ = road_drive(1, seed=18)
    sl.submit(CameraFrame(1, time.monotonic(), frames[0], 0, None, time.monotonic()))
    t_end = time.monotonic() + 5.0
    while sl.latest() is None and time.monotonic() < t_end:
        time.sleep(0.005)
    assert sl.latest() is not None and sl._thread is not None and sl._thread.native_id is not None
    return os.getpriority(os.PRIO_PROCESS, sl._thread.native_id)


@linux_only
@pytest.mark.parametrize("steps", [10, 0])
def test_the_detector_thread_runs_nice_steps_below_the_process(tmp_path: Path, steps: int) -> None:
    sl, wd = layer(tmp_path, nice=steps)
    base = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        sl.start()
        assert thread_nice(sl) == min(19, base + steps)
        assert sl.stats()["thread_nice"] == (min(19, base + steps) if steps else None)
        assert os.getpriority(os.PRIO_PROCESS, 0) == base  # the loop's own thread keeps its priority
    finally:
        sl.stop()
        wd.stop()
        sl.backend.close()


@pytest.mark.parametrize(("toml", "message"), [
    ({"min_interval_ms": -1.0}, r"safety.min_interval_ms = -1.0 must be >= 0"),
    ({"min_interval_ms": 30.0, "max_verdict_age_ms": 50.0}, r"at most half of safety.max_verdict_age_ms \(50 ms\)"),
])
def test_a_bad_min_interval_is_refused_naming_the_key(toml: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"safety": toml})


def test_a_min_interval_over_half_the_watchdog_deadline_is_refused(tmp_path: Path) -> None:
    # max_verdict_age_ms = 0 means the watchdog deadline (the layer's 0.1 s here)
    with pytest.raises(ConfigError, match=r"at most half of \[watchdog\] deadline_ms \(100 ms\)"):
        layer(tmp_path, min_interval_ms=60.0)


@pytest.mark.parametrize("interval_ms", [25.0, 0.0])
def test_the_detector_judges_at_most_every_min_interval_and_every_check_stays_fresh(
    tmp_path: Path, interval_ms: float,
) -> None:
    """Frames every ~1 ms (faster than any camera) for 0.4 s: with the cap the detector judges about
    one per interval, and every frame's check still finds a verdict within the age limit."""
    sl, wd = layer(tmp_path, min_interval_ms=interval_ms, nice=10 if interval_ms else 0)
    frames, _ = road_drive(8, seed=18)
    try:
        sl.start()
        t0 = time.monotonic()
        sl.submit(CameraFrame(1, t0, frames[0], 0, None, t0))
        while sl.latest() is None and time.monotonic() < t0 + 5.0:
            time.sleep(0.001)
        t_start, held, i = time.monotonic(), [], 1
        while time.monotonic() < t_start + 0.4:
            i += 1
            t = time.monotonic()
            f = CameraFrame(i, t, frames[i % len(frames)], i, None, t)
            sl.submit(f)
            if sl.check(f) is not None:
                held.append(i)
            time.sleep(0.001)
        judged = sl.inferred - 1
    finally:
        sl.stop()
        wd.stop()
        sl.backend.close()
    assert not held, f"frames held as stale: {held}"
    if interval_ms:
        assert 4 <= judged <= 0.4 / (interval_ms / 1000.0) + 2, judged
    else:
        assert judged > 0.4 / 0.025 + 2, judged  # uncapped, it judges (nearly) every frame
