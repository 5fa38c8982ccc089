"""What the converter calls: loading a set for a bundle's preprocessing, the INT8 cost, the limits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from calibration.cli import main
from calibration.conversion import (
    CalibrationError,
    Int8Limits,
    LimitsError,
    int8_cost,
    load_for_conversion,
    over_limits,
)
from calibration.set_format import FRAMES_FILE, MANIFEST_FILE, read_manifest
from runtime.manifest import PreprocessSpec
from runtime.preprocess import preprocess_batch
from tests.calibration.conftest import DEMO_SPEC, TrackSources

MEANINGS = {"steering": "steering", "throttle": "throttle"}


@pytest.fixture(scope="module")
def small_set(track_sources: TrackSources, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sets") / "small"
    assert main([str(track_sources.video), str(track_sources.recording), "--out", str(out),
                 "--input-size", "160x120", "--frames", "100"]) == 0
    return out


def test_loads_preprocessed_by_the_runtime(small_set: Path) -> None:
    data = load_for_conversion(small_set, PreprocessSpec(160, 120, scale=1 / 255))
    m = read_manifest(small_set)
    assert data.calib.shape == (m["counts"]["calibration"], 120, 160, 3) and data.calib.dtype == np.float32
    assert data.heldout.shape[0] == m["counts"]["heldout"] > 0
    with np.load(small_set / FRAMES_FILE) as z:
        assert np.array_equal(data.heldout, preprocess_batch(z["heldout"], DEMO_SPEC))
    assert data.calib.min() >= 0.0 and data.calib.max() <= 1.0
    assert len(data.sha256) == 64


@pytest.mark.parametrize("spec", [
    PreprocessSpec(160, 120, color="BGR"),
    PreprocessSpec(160, 120, crop_top=40),
    PreprocessSpec(200, 66),
    PreprocessSpec(160, 120, scale=1.0, model_rescales=True),
])
def test_another_preprocessing_is_refused_naming_both(small_set: Path, spec: PreprocessSpec) -> None:
    with pytest.raises(CalibrationError) as e:
        load_for_conversion(small_set, spec)
    msg = str(e.value)
    assert "160x120 crop_top=0 RGB scale=0.00392157" in msg  # the set's
    assert f"{spec.width}x{spec.height} crop_top={spec.crop_top} {spec.color}" in msg  # the model's
    assert "rc-calibrate --bundle" in msg and "\n" not in msg


def test_damaged_or_foreign_sets_are_refused(small_set: Path, tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match=r"calibration\.json missing"):
        load_for_conversion(tmp_path, DEMO_SPEC)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / MANIFEST_FILE).write_text((small_set / MANIFEST_FILE).read_text())
    with np.load(small_set / FRAMES_FILE) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["calibration"][0, 0, 0, 0] ^= 1
    np.savez(bad / FRAMES_FILE, **arrays)
    with pytest.raises(CalibrationError, match="do not match the sha256"):
        load_for_conversion(bad, DEMO_SPEC)
    m = json.loads((small_set / MANIFEST_FILE).read_text())
    m["version"] = 99
    (bad / MANIFEST_FILE).write_text(json.dumps(m))
    with pytest.raises(CalibrationError, match="newer than this tool"):
        load_for_conversion(bad, DEMO_SPEC)


def test_cost_per_output_and_the_steering_share() -> None:
    want = {"steering": np.linspace(-1, 1, 100, dtype=np.float32).reshape(100, 1),
            "throttle": np.full((100, 1), 0.5, np.float32)}
    got = {"steering": want["steering"] + np.where(np.arange(100) < 7, 0.06, 0.01).reshape(100, 1),
           "throttle": want["throttle"] - 0.02}
    cost = int8_cost(got, want, MEANINGS)
    json.dumps(cost)  # JSON-able
    assert cost["frames"] == 100 and cost["steering_share_over"] == pytest.approx(0.07)
    s, t = cost["per_output"]["steering"], cost["per_output"]["throttle"]
    assert s["mean_abs"] == pytest.approx(0.07 * 0.06 + 0.93 * 0.01, rel=1e-4)
    assert s["max_abs"] == pytest.approx(0.06, rel=1e-4) and s["share_over"] == pytest.approx(0.07)
    assert t["mean_abs"] == pytest.approx(0.02, rel=1e-4) and "share_over" not in t
    assert over_limits(cost, None) is not None  # 7% > the default 5% share
    assert over_limits(cost, Int8Limits(max_steering_share_over=0.1)) is None


def test_over_limits_names_every_figure() -> None:
    cost = {"frames": 50, "steering_threshold": 0.05, "steering_share_over": 0.2,
            "per_output": {"steering": {"mean_abs": 0.03, "max_abs": 0.3, "share_over": 0.2},
                           "throttle": {"mean_abs": 0.04, "max_abs": 0.1}}}
    reason = over_limits(cost, None)
    assert reason is not None and "on 50 held-out frames" in reason
    for part in ("steering mean abs error 0.03 > 0.02", "steering max abs error 0.3 > 0.25",
                 "on 20.0% of frames > 5.0%", "throttle mean abs error 0.04 > 0.03"):
        assert part in reason
    assert "only 5 held-out frames" in (over_limits({**cost, "frames": 5}, None) or "")


@pytest.mark.parametrize("kwargs", [{"max_steering_mae": -1.0}, {"max_abs": float("nan")},
                                    {"max_steering_share_over": 2.0}])
def test_bad_limits_are_config_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(LimitsError):
        Int8Limits(**kwargs)
    with pytest.raises(TypeError):  # what the converter turns into "config [int8]: ..." (exit 2)
        Int8Limits(**kwargs)
