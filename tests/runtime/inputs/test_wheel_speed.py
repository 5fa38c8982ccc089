"""Role wheel_speed: its spec (shape, --inputs parse, sample values), its replay source, and its
provider (the speed nearest the frame; stale means neutral with a declared event)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from converter.errors import ConverterError
from converter.model_inputs import resolve_inputs
from runtime.assembly import run
from runtime.config import ConfigError, load_config
from runtime.events import DECLARED
from runtime.inputs import PROVIDERS, InputContext, InputError, WheelSpeedProvider, make_providers
from runtime.manifest import BundleError, InputSpec, PreprocessSpec
from runtime.odometry import OdometryError, ReplaySpeedSource, open_model_wheel_speed, open_wheel_speed
from runtime.roles import ROLES, Drive
from runtime.sim import CarSimulator
from tests.runtime.helpers import make_config
from tests.runtime.inputs.conftest import MakeFrame
from tests.runtime.multi_input import image_input, vector_input, write_bundle
from tests.runtime.test_loop_inputs import wire

IMG = np.zeros((4, 4, 3), np.uint8)
PRE = PreprocessSpec(width=80, height=60)


def write_speeds(path: Path, n: int = 50, rate_hz: float = 100.0) -> Path:
    """A CSV log: speed = 0.1 * row, rows 1/rate_hz apart."""
    path.write_text("t,speed,extra\n" + "".join(f"{i / rate_hz:.4f},{0.1 * i:.3f},x\n" for i in range(n)))
    return path


@pytest.fixture
def replay(tmp_path: Path) -> ReplaySpeedSource:
    return ReplaySpeedSource("file://speed.csv", write_speeds(tmp_path / "speed.csv")).start()


def test_the_spec_is_one_value_in_m_per_s() -> None:
    assert InputSpec("speed", (1, 1), "float32", "NC", role="wheel_speed").expected_shape() == (1, 1)
    with pytest.raises(BundleError, match=r"shape \[1, 2\] does not match its role wheel_speed \(\[1, 1\]\)"):
        InputSpec("speed", (1, 2), "float32", "NC", role="wheel_speed")
    specs = resolve_inputs({"img_in": (None, 60, 80, 3), "speed": (None, 1)}, {}, {"speed": {"role": "wheel_speed"}}, PRE)
    assert [(s.name, s.role, s.shape) for s in specs] == [("img_in", "image", (1, 60, 80, 3)), ("speed", "wheel_speed", (1, 1))]
    with pytest.raises(ConverterError, match=r"input 'speed' \(role wheel_speed\): a wheel speed is one value .* takes 3"):
        resolve_inputs({"img_in": (None, 60, 80, 3), "speed": (None, 3)}, {}, {"speed": {"role": "wheel_speed"}}, PRE)
    drive = Drive(np.zeros(4), np.zeros(4), np.full(4, 2.0), np.zeros(4), np.random.default_rng(0))
    values = ROLES["wheel_speed"].sample(InputSpec("speed", (1, 1), "float32", "NC", role="wheel_speed"), drive)  # type: ignore[misc]
    assert values.shape == (4, 1) and np.all(np.abs(values - 2.0) < 0.2)
    assert "wheel_speed.stale" in DECLARED and "wheel_speed" in PROVIDERS


def test_feeds_the_speed_nearest_the_frame(replay: ReplaySpeedSource, make_frame: MakeFrame) -> None:
    p = WheelSpeedProvider("speed", (1, 1), replay, deadline_s=0.1)
    t0 = time.monotonic()
    x = p.fill(make_frame(IMG, t_capture=t0))  # the first frame anchors the replay on row 0
    assert x is not None and x.dtype == np.float32 and x.shape == (1, 1) and x[0, 0] == 0.0
    x = p.fill(make_frame(IMG, t_capture=t0 + 0.0712))  # nearest row: 7
    assert x is not None and x[0, 0] == pytest.approx(0.7) and p.recorded() == pytest.approx([0.7])


def test_stale_after_the_replay_ends(replay: ReplaySpeedSource, make_frame: MakeFrame) -> None:
    p = WheelSpeedProvider("speed", (1, 1), replay, deadline_s=0.1)
    assert p.fill(make_frame(IMG, t_capture=time.monotonic())) is not None
    time.sleep(0.65)  # the log's last sample is at +0.49 s: 160 ms before now, over the 100 ms deadline
    assert p.fill(make_frame(IMG, t_capture=time.monotonic())) is None
    assert p.event == "wheel_speed.stale" and "no wheel-speed sample for" in p.detail and "file://speed.csv" in p.detail


def test_stale_when_the_nearest_sample_is_far_from_the_frame(tmp_path: Path, make_frame: MakeFrame) -> None:
    src = ReplaySpeedSource("file://gap.csv", write_speeds(tmp_path / "gap.csv", n=2, rate_hz=1 / 0.3)).start()
    p = WheelSpeedProvider("speed", (1, 1), src, deadline_s=0.1)
    now = time.monotonic()
    assert p.fill(make_frame(IMG, t_capture=now - 0.05)) is not None  # anchors row 0 at now - 50 ms
    assert p.fill(make_frame(IMG, t_capture=now + 0.1)) is None  # rows at -50 ms and +250 ms: 150 ms away
    assert p.event == "wheel_speed.stale" and "nearest wheel-speed sample is 150 ms" in p.detail


def test_a_jsonl_log_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "speed.jsonl"
    path.write_text("".join(json.dumps({"t": i / 10, "speed": i * 0.5}) + "\n" for i in range(3)))
    src = open_wheel_speed(str(path))
    assert src.stats()["samples"] == 3 and src.nearest(100.0) is not None


@pytest.mark.parametrize(("text", "match"), [
    ("", r"speed.csv: .*speed.csv not found; record one"),
    ("t,v\n0,1\n", r"header t,v lacks speed; the first line must name t,speed"),
    ("t,speed\n0,1\n0,2\n", r"line 3: t=0.0 is not after the previous t=0.0; sort the rows"),
    ("t,speed\n0,fast\n", r"line 2 \(0,fast\) has no numeric t and speed"),
    ("t,speed\n", r"has no samples; record some first"),
])
def test_a_bad_log_names_the_file_the_line_and_the_fix(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "speed.csv"
    if text:
        path.write_text(text)
    with pytest.raises(OdometryError, match=match):
        open_wheel_speed(f"file://{path}")


def test_no_source_names_the_flag_and_a_bad_uri_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"wheel-speed input 'speed'; give a source with --wheel-speed URI"):
        make_providers([InputSpec("speed", (1, 1), "float32", "NC", role="wheel_speed")], InputContext())
    with pytest.raises(ConfigError, match=r"\[wheel_speed\] uri: wheel-speed URI 'enc://1': unknown scheme 'enc'"):
        load_config(None, {"wheel_speed.uri": "enc://1"})
    assert open_model_wheel_speed(str(tmp_path / "none.csv"), ["image"]) is None  # no such input: not opened


def test_a_wheel_speed_pilot_is_fed_then_stale_means_neutral_and_an_event(
    tmp_path: Path, clip_folder: Path, sim: tuple[CarSimulator, str],
) -> None:
    # a real ONNX Runtime bundle through a real pty to the car simulator: 0.2 s of speed for a 0.48 s drive
    car, port = sim
    inputs = [image_input(), vector_input("speed", "wheel_speed", 1)]
    bundle = write_bundle(tmp_path, "speed", inputs)
    cfg = make_config(bundle, f"file://{clip_folder}?realtime=1&fps=50", link=port)
    cfg.wheel_speed.uri = f"file://{write_speeds(tmp_path / 'speed.csv', n=20)}"
    summary = run(cfg)
    assert 0 < summary["commands"] < summary["camera"]["delivered"] and summary["wheel_speed"]["lookups"] > 0
    ev = summary["events"]["wheel_speed.stale"]
    assert ev["episodes"] == 1 and "no wheel-speed sample for" in ev["last_detail"]
    cmds = wire(car, summary)
    last_drive = max(c["t"] for c in cmds)
    neutrals = [e["t"] for e in car.events if e["event"] == "neutral" and e["t"] > last_drive]
    assert neutrals and neutrals[0] - last_drive < 0.2  # the car is stopped, not left driving
