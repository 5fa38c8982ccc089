"""The release gate's rules on result documents and side-by-side rounds, and its TOML config (validated, unknown keys are errors)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.gate import evaluate
from benchmarks.gate_config import GateConfig, GateConfigError, load_gate_config
from benchmarks.machine import machine_id
from benchmarks.results import SCHEMA
from benchmarks.side_by_side import Rounds, RoundSettings

MACHINE = {"hostname": "bench1", "cpu_model": "AMD EPYC", "logical_cores": 2, "arch": "x86_64", "gpu": None,
           "compute_capability": None, "tensorrt": None}
MACHINE["id"] = machine_id(MACHINE)


def _build(fmt: str, p99: float, max_abs: float, loop_p99: float | None = 2.0) -> dict[str, Any]:
    b: dict[str, Any] = {
        "format": fmt, "status": "ok", "reason": "",
        "latency_ms": {"min": p99 / 3, "mean": p99 / 2, "p50": p99 / 2, "p90": p99 * 0.8, "p99": p99, "max": p99 * 2},
        "accuracy": {"samples": 64, "max_abs": max_abs, "mean_abs": max_abs / 5,
                     "per_output": {"steering": {"max_abs": max_abs, "mean_abs": max_abs / 5},
                                    "throttle": {"max_abs": max_abs / 2, "mean_abs": max_abs / 9}}},
    }
    if loop_p99 is not None:
        b["loop"] = {"camera_to_command_ms": {"p50": loop_p99 / 2, "p90": loop_p99 * 0.9, "p99": loop_p99, "max": 9.0}}
    return b


def results(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "model": {"name": "rc_pilot", "version": "3"},
        "machine": dict(MACHINE),
        "toolchain": {"onnxruntime": "1.32.0", "ai-edge-litert": "2.3.0"},
        "builds": [
            _build("onnx", 1.60, 2e-7),
            _build("tflite-fp32", 2.50, 3e-7),
            _build("tflite-fp16", 2.40, 3e-4),
            {"format": "trt-fp16", "status": "skipped", "reason": "TensorRT is not installed"},
        ],
    }
    doc.update(overrides)
    return doc


def with_build(doc: dict[str, Any], fmt: str, **changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for b in doc["builds"]:
        if b["format"] == fmt:
            for k, v in changes.items():
                if k == "p99":
                    b["latency_ms"]["p99"] = v
                elif k == "loop_p99":
                    b["loop"]["camera_to_command_ms"]["p99"] = v
                elif k == "max_abs":
                    b["accuracy"]["max_abs"] = v
                    b["accuracy"]["per_output"]["steering"]["max_abs"] = v
                else:
                    b[k] = v
    return doc


CFG = GateConfig()


BUILDS = ["onnx", "tflite-fp32", "tflite-fp16"]


def rounds(cand_scale: dict[str, float] | None = None, noise: float = 0.02, seed: int = 3,
           n: int = 10) -> Rounds:
    """Side-by-side rounds as measure_rounds returns them: both sides ~1 ms p50 / 2 ms p99 with
    ``noise`` relative jitter per measurement; the candidate's latencies times ``cand_scale[fmt]``."""
    rng = np.random.default_rng(seed)
    data: dict[str, dict[str, list[dict[str, float]]]] = {"candidate": {}, "baseline": {}}
    for fmt in BUILDS:
        for side in data:
            k = (cand_scale or {}).get(fmt, 1.0) if side == "candidate" else 1.0
            jit = 1 + noise * rng.standard_normal((n, 2))
            data[side][fmt] = [{"p50": 1.0 * k * j[0], "p99": 2.0 * k * j[1], "fps": 1000.0 / (k * j[0])} for j in jit]
    return Rounds(RoundSettings(rounds=n), data)


def test_same_network_side_by_side_passes_with_intervals() -> None:
    out = evaluate(results(), rounds(), CFG, baseline_builds=BUILDS, baseline_label="v2 @production")
    assert out.passed and out.verdict == "pass", out.reasons
    assert out.to_dict()["baseline_label"] == "v2 @production"
    p99 = next(c for c in out.comparisons if c["build"] == "onnx" and c["figure"] == "p99")
    assert p99["ratio"]["lo"] <= 1.0 <= p99["ratio"]["hi"] and p99["verdict"] == "pass"
    assert any(n.startswith("onnx: p99 ") and "CI over 10 rounds" in n for n in out.notes)


def test_a_clear_regression_fails_naming_the_build_and_figure() -> None:
    out = evaluate(results(), rounds({"tflite-fp16": 1.5}), CFG, baseline_builds=BUILDS)
    assert out.verdict == "fail" and not out.passed
    assert [r.split(" ")[:2] for r in out.reasons] == [["tflite-fp16:", f] for f in ("p50", "p99", "fps")]
    p99 = out.reasons[1]
    assert p99.startswith("tflite-fp16: p99 2.997 ms [2.912, 3.068] vs baseline 2.022 ms") and p99.endswith("regression")
    # 9 figures judged: each at 1 - 0.05 / 9, so that the gate as a whole holds 95 %
    assert "ratio x1.489 [1.433, 1.528] (99.44% CI over 10 rounds); allowed at most x1.10 and +0.2 ms" in p99


def test_noise_wider_than_the_margin_is_undecided_with_advice() -> None:
    # +10 % on the limit itself, 30 % jitter: the interval straddles x1.10
    out = evaluate(results(), rounds({"onnx": 1.1}, noise=0.3), CFG, baseline_builds=BUILDS)
    assert out.verdict == "undecided" and not out.passed and out.reasons == []
    assert "too noisy to tell (onnx" in out.advice and "--rounds 20" in out.advice and "idle machine" in out.advice
    assert "load average up to" in out.advice or "load average unknown" in out.advice


def test_small_regressions_within_the_noise_floor_pass() -> None:
    # +15 % p99 on a 0.6 ms figure is +0.09 ms: within min_p99_regression_ms (0.2); p50 and FPS lenient
    cfg = GateConfig(max_p50_regression_pct=50, max_fps_regression_pct=50)
    r = rounds({"onnx": 1.15}, noise=0.0)
    for side in r.data.values():
        for x in side["onnx"]:
            x["p99"] *= 0.3
    out = evaluate(results(), r, cfg, baseline_builds=BUILDS)
    assert out.verdict == "pass", out.reasons


def test_nan_side_by_side_figures_fail() -> None:
    r = rounds()
    r.data["candidate"]["onnx"][0]["p99"] = float("nan")
    r.data["candidate"]["onnx"] = [dict(x, p99=float("nan")) for x in r.data["candidate"]["onnx"]]
    out = evaluate(results(), r, CFG, baseline_builds=BUILDS)
    assert out.verdict == "fail" and any(x.startswith("onnx: p99 nan") for x in out.reasons)


def test_a_build_the_baseline_had_must_be_compared() -> None:
    r = rounds()
    r.failed["tflite-fp16"] = "candidate failed: worker exited 1"
    out = evaluate(results(), r, CFG, baseline_builds=BUILDS)
    assert out.reasons == ["tflite-fp16: in the baseline but not compared: candidate failed: worker exited 1"]
    out = evaluate(results(), rounds(), CFG, baseline_builds=[*BUILDS, "onnx-fp16"])
    assert out.reasons == ["onnx-fp16: in the baseline but not compared: missing here"]
    assert evaluate(results(), rounds(), GateConfig(baseline_builds_required=False),
                    baseline_builds=[*BUILDS, "onnx-fp16"]).passed


def test_accuracy_over_the_limit_fails_without_a_baseline() -> None:
    cand = with_build(results(), "tflite-fp16", max_abs=0.05)
    out = evaluate(cand, None, CFG)
    assert not out.passed
    assert out.reasons == ["tflite-fp16: max abs error 0.05 on steering exceeds the limit 0.01"]
    assert any("no baseline comparison" in n for n in out.notes)


def test_accuracy_not_measured_fails() -> None:
    cand = with_build(results(), "onnx", accuracy=None)
    out = evaluate(cand, None, CFG)
    assert not out.passed and "onnx: accuracy was not measured" in out.reasons[0]


def test_missing_or_unmeasured_required_build_fails() -> None:
    cand = results()
    cand["builds"] = [b for b in cand["builds"] if b["format"] != "tflite-fp32"]
    out = evaluate(cand, None, CFG)
    assert out.reasons == ["required build tflite-fp32 is missing from the bundle (convert-model --formats tflite-fp32)"]
    cand = with_build(results(), "onnx", status="failed", reason="worker exited 1")
    out = evaluate(cand, None, CFG)
    assert out.reasons == ["required build onnx was not measured: failed (worker exited 1)"]


def test_baseline_error_is_a_failure_reason() -> None:
    out = evaluate(results(), None, CFG, baseline_error="baseline rc_pilot v2 (@production) has no benchmark run")
    assert not out.passed and out.reasons == ["baseline rc_pilot v2 (@production) has no benchmark run"]


# --- config ---------------------------------------------------------------------------------


def test_shipped_defaults_load() -> None:
    cfg = load_gate_config()
    assert cfg.source == "benchmarks/gate.toml"
    assert cfg.max_p99_regression_pct == 10.0 and cfg.min_p99_regression_ms == 0.2
    assert cfg.required == ("onnx", "tflite-fp32", "tflite-fp16")
    assert cfg.accuracy_limit("tflite-fp16") == 1e-2
    assert cfg.accuracy_limit("tflite-int8") == 0.25  # not listed: the converter's tolerance
    assert (cfg.rounds, cfg.confidence, cfg.seed) == (10, 0.95, 0)
    assert cfg.round_settings(rounds=20).rounds == 20


def test_partial_config_keeps_defaults(tmp_path: Path) -> None:
    p = tmp_path / "gate.toml"
    p.write_text('[latency]\nmax_p99_regression_pct = 5\n[builds]\nrequired = ["onnx"]\n')
    cfg = load_gate_config(p)
    assert (cfg.max_p99_regression_pct, cfg.min_p99_regression_ms, cfg.required) == (5.0, 0.2, ("onnx",))


@pytest.mark.parametrize(("text", "message"), [
    ("[latency]\nmax_p99_regresion_pct = 5\n", "unknown key(s) ['max_p99_regresion_pct']"),
    ("[latncy]\n", "unknown key(s) ['latncy']"),
    ("[accuracy]\nonnx-fp64 = 0.1\n", "unknown format 'onnx-fp64'"),
    ('[builds]\nrequired = ["tflite"]\n', "unknown format 'tflite'"),
    ('[latency]\nmax_p99_regression_pct = "ten"\n', "must be a finite number"),
    ("[latency]\nmax_p99_regression_pct = nan\n", "must be a finite number"),
    ("[accuracy]\nonnx = inf\n", "must be a finite number"),
    ("[latency]\nmin_p99_regression_ms = -1\n", "must be >= 0"),
    ('[builds]\nbaseline_builds_required = "yes"\n', "must be true or false"),
    ("[latency\n", "not valid TOML"),
    ("[side_by_side]\nrounds = 2\n", "must be >= 3"),
    ("[side_by_side]\nrounds = 2.5\n", "must be a whole number"),
    ("[side_by_side]\nconfidence = 1.5\n", "must be between 0 and 1"),
    ("[side_by_side]\nround = 5\n", "unknown key(s) ['round']"),
])
def test_bad_configs_are_refused_with_the_key(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "gate.toml"
    p.write_text(text)
    with pytest.raises(GateConfigError, match=None) as e:
        load_gate_config(p)
    assert message in str(e.value) and str(p) in str(e.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(GateConfigError, match="cannot read it"):
        load_gate_config(tmp_path / "nope.toml")


def test_nan_figures_fail_instead_of_passing() -> None:
    cand = copy.deepcopy(results())
    cand["builds"][0]["accuracy"]["per_output"]["throttle"]["max_abs"] = float("nan")  # not the first output
    out = evaluate(cand, None, CFG)
    assert not out.passed and any("onnx: max abs error nan on throttle" in r for r in out.reasons)


def test_a_perception_build_is_gated_on_its_task_figures_not_raw_logits() -> None:
    cand = with_build(results(), "tflite-fp16", max_abs=3.0)  # raw logit error: says little about the map
    for b in cand["builds"]:
        if b["format"] == "tflite-fp16":
            b["accuracy"]["task"] = {"segmentation": {"pixel_acc_segmentation": 0.999, "miou_segmentation": 0.998,
                                                      "drivable_iou": 0.999, "frames": 64}}
    assert evaluate(cand, None, CFG).passed
    for b in cand["builds"]:
        if b["format"] == "tflite-fp16":
            b["accuracy"]["task"]["segmentation"]["miou_segmentation"] = 0.9
    out = evaluate(cand, None, CFG)
    assert not out.passed and out.reasons[0].startswith("tflite-fp16: segmentation mIoU 0.9 < 0.97 (fp16 gate)")
