"""The shadow never reaches the wire: ``rc-runtime --bundle <demo pilot>`` with a candidate whose
decisions are far from the pilot's (tests/runtime/shadow/bundles.py: steering ~0.8, reverse
throttle) in ``[shadow]``, against ``rc-car-sim`` in its own process on a real pty. Every DRIVE the
car logged is the demo pilot's output for the frame it names (ONNX Runtime run directly with a
hand-written preprocessing), while the stats JSON reports the disagreement that the candidate's
own numbers imply. A candidate that cannot be a shadow is exit 2, one line, and the car is never armed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from runtime.assembly import run as run_runtime
from runtime.cli import main
from runtime.recording import read_recording
from runtime.sim import CarSimulator
from tests.conftest import car_sim_process, checkout_env, python_module
from tests.runtime.helpers import WIRE_TOL, reference_outputs
from tests.runtime.perception_bundles import det_bundle
from tests.runtime.shadow.bundles import THROTTLE, candidate_bundle, candidate_steering

PASS_THROUGH = "[policy]\nmax_throttle = 1.0\nmax_reverse = 1.0\nthrottle_slew_rate = 0.0\n"


def test_the_car_gets_only_the_driving_models_commands_while_the_disagreement_is_reported(
    bundle: Path, clip_video: Path, clip_decoded: list[np.ndarray], tmp_path: Path,
) -> None:
    candidate = candidate_bundle(tmp_path / "bundles")
    config = tmp_path / "runtime.toml"
    config.write_text(PASS_THROUGH + f'[shadow]\nbundle = "{candidate}"\nnice = 5\n')
    link, log, stats, rec = tmp_path / "rc-car", tmp_path / "car.jsonl", tmp_path / "stats.json", tmp_path / "rec"
    with car_sim_process(link, log):
        r = subprocess.run(python_module(
            "runtime.cli", "--config", str(config), "--bundle", str(bundle), "--backend", "onnxruntime",
            "--camera", f"file://{clip_video}?realtime=1&fps=30", "--serial", str(link), "--deadline-ms", "1000",
            "--record", str(rec), "--stats-json", str(stats)), env=checkout_env(), capture_output=True, text=True,
            timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads(stats.read_text())
    _, records = read_recording(rec)
    by_id = {row["frame_id"]: row for row in records}
    ref = reference_outputs(bundle, clip_decoded)  # the driving model, independent of the loop's code

    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    wire = [e for e in events if e["event"] == "drive"]
    assert len(wire) >= max(1, summary["commands"] // 2), (len(wire), summary["commands"])
    for c in wire:  # every DRIVE is the driving model's, for the frame it names; none is the candidate's
        i = by_id[c["tag"]]["source_index"]
        assert abs(c["steering"] - np.clip(ref["steering"][i], -1, 1)) <= WIRE_TOL, c
        assert abs(c["throttle"] - np.clip(ref["throttle"][i], -1, 1)) <= WIRE_TOL, c

    shadow = summary["shadow"]
    assert shadow["model"] == {"name": "candidate", "version": "1"} and shadow["errors"] == 0
    assert shadow["offered"] == summary["frames"] == shadow["inferred"] + shadow["skipped"] + shadow["left"], shadow
    d = shadow["disagreement"]
    assert d["pairs"] == shadow["inferred"] > 0
    # Pairs are on the same frame: each |diff| is one of the per-frame differences the two models imply.
    expected = np.abs(np.array([candidate_steering(f) for f in clip_decoded]) - ref["steering"])
    s = d["steering_abs_diff"]
    assert expected.min() - 0.002 <= s["p50"] <= s["p99"] <= s["max"] <= expected.max() + 0.002, (s, expected)
    t_expected = np.abs(THROTTLE - ref["throttle"])
    assert t_expected.min() - 0.002 <= d["throttle_abs_diff"]["p50"] <= t_expected.max() + 0.002
    assert d["large"] > 0 and d["episodes"] >= 1 and d["large_per_min"] is not None
    first = d["episode_list"][0]
    assert first["frames"][0] <= first["frames"][1] and 0 <= first["source_index"][0] < len(clip_decoded)
    assert shadow["priority"] == "nice 5" or shadow["priority"].endswith("(already)"), shadow["priority"]
    assert "shadow candidate v1:" in r.stderr and "steering |diff| p50" in r.stderr


@pytest.mark.parametrize("kind", ["detection", "corrupt", "imu"])
def test_a_bundle_that_cannot_be_a_shadow_is_exit_2_and_the_car_is_never_armed(
    bundle: Path, clip_video: Path, sim: tuple[CarSimulator, str], kind: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    car, port = sim
    if kind == "detection":
        shadow = det_bundle(tmp_path / "bundles")
    elif kind == "imu":
        shadow = candidate_bundle(tmp_path / "bundles", imu=True)  # the demo pilot has no IMU input: none opened
    else:
        shadow = candidate_bundle(tmp_path / "bundles")
        (shadow / "model.onnx").write_bytes(b"not an onnx model")
    code = main(["--bundle", str(bundle), "--backend", "onnxruntime", "--shadow", str(shadow),
                 "--camera", f"file://{clip_video}?realtime=1&fps=30", "--serial", port])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    line = err[-1]
    assert line.startswith("rc-runtime: ") and str(shadow) in line, err
    assert {"detection": "could drive", "corrupt": "sha256", "imu": "--imu"}[kind] in line, line
    assert not [e for e in list(car.events) if e["event"] in ("arm", "drive")]


def test_a_shadow_with_an_imu_input_gets_the_configured_imu_when_the_driving_model_has_none(
    bundle: Path, clip_video: Path, tmp_path: Path,
) -> None:
    """Before: the driving model's assembly ignored ``--imu`` (its model has no imu input), so the
    shadow was refused with "give an IMU source with --imu" although one was given."""
    from runtime.shadow import ShadowConfig
    from tests.runtime.helpers import make_config

    csv = tmp_path / "imu.csv"
    csv.write_text("t,ax,ay,az,gx,gy,gz\n" + "".join(f"{i / 100:.2f},0,0,9.81,0,0,0.1\n" for i in range(600)))
    cfg = make_config(bundle, f"file://{clip_video}?realtime=1&fps=30")
    cfg.imu.uri = f"file://{csv}"
    cfg.shadow = ShadowConfig(bundle=str(candidate_bundle(tmp_path / "bundles", imu=True)))
    summary = run_runtime(cfg)
    shadow = summary["shadow"]
    assert shadow["inferred"] > 0 and shadow["errors"] == 0 and shadow["inputs_not_ready"] == 0, shadow
    assert shadow["disagreement"]["pairs"] == shadow["inferred"] and "imu" not in summary  # the pilot has none
