"""The release gate's rules on result documents, and its TOML config (validated, unknown keys are errors)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from benchmarks.gate import evaluate
from benchmarks.gate_config import GateConfig, GateConfigError, load_gate_config
from benchmarks.machine import machine_id
from benchmarks.results import SCHEMA

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


def test_same_results_pass() -> None:
    base = results()
    out = evaluate(copy.deepcopy(base), base, CFG, baseline_label="v3 @production")
    assert out.passed, out.reasons
    assert any("onnx: p99" in n for n in out.notes)
    assert out.to_dict()["baseline_label"] == "v3 @production"


def test_p99_regression_fails_with_the_figures() -> None:
    cand = with_build(results(), "tflite-fp16", p99=2.40 * 1.5)
    out = evaluate(cand, results(), CFG)
    assert not out.passed
    assert len(out.reasons) == 1
    assert "tflite-fp16: p99 3.600 ms vs 2.400 ms baseline (+50.0%" in out.reasons[0]


def test_small_regressions_within_the_noise_floor_pass() -> None:
    # +15% but only +0.09 ms on a 0.6 ms model: below min_p99_regression_ms (0.2)
    base = with_build(results(), "onnx", p99=0.6)
    cand = with_build(base, "onnx", p99=0.69)
    assert evaluate(cand, base, CFG).passed
    # +8% and +0.2 ms: below the percentage
    cand = with_build(results(), "tflite-fp32", p99=2.70)
    assert evaluate(cand, results(), CFG).passed


def test_loop_latency_regression_fails() -> None:
    cand = with_build(results(), "onnx", loop_p99=4.0)
    out = evaluate(cand, results(), CFG)
    assert not out.passed and "onnx: loop camera-to-command p99 4.000 ms vs 2.000 ms" in out.reasons[0]


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


def test_a_build_the_baseline_had_must_not_vanish() -> None:
    base = results()
    base["builds"].append(_build("onnx-fp16", 1.7, 3e-4))
    out = evaluate(results(), base, CFG)
    assert out.reasons == ["onnx-fp16: measured in the baseline but missing here"]
    lenient = GateConfig(baseline_builds_required=False)
    assert evaluate(results(), base, lenient).passed


def test_results_from_another_machine_are_refused_unless_allowed() -> None:
    other = dict(MACHINE, hostname="jetson", cpu_model="ARMv8 Processor rev 1 (v8l)", logical_cores=6)
    other["id"] = machine_id(other)
    base = results(machine=other)
    out = evaluate(results(), base, CFG)
    assert not out.passed
    assert "refusing to compare results from different machines" in out.reasons[0]
    assert "--allow-cross-machine" in out.reasons[0]
    allowed = evaluate(results(), base, CFG, allow_cross_machine=True)
    assert allowed.passed and any("comparing across machines" in n for n in allowed.notes)


def test_host_name_alone_does_not_make_another_machine() -> None:
    twin = dict(MACHINE, hostname="bench2")
    twin["id"] = machine_id(twin)
    assert twin["id"] == MACHINE["id"]
    assert evaluate(results(), results(machine=twin), CFG).passed


def test_baseline_error_is_a_failure_reason() -> None:
    out = evaluate(results(), None, CFG, baseline_error="baseline rc_pilot v2 (@production) has no benchmark run")
    assert not out.passed and out.reasons == ["baseline rc_pilot v2 (@production) has no benchmark run"]


def test_toolchain_changes_are_noted() -> None:
    cand = results(toolchain={"onnxruntime": "1.33.0", "ai-edge-litert": "2.3.0"})
    out = evaluate(cand, results(), CFG)
    assert out.passed and "toolchain differs: onnxruntime 1.32.0 (baseline) -> 1.33.0" in out.notes


# --- config ---------------------------------------------------------------------------------


def test_shipped_defaults_load() -> None:
    cfg = load_gate_config()
    assert cfg.source == "benchmarks/gate.toml"
    assert cfg.max_p99_regression_pct == 10.0 and cfg.min_p99_regression_ms == 0.2
    assert cfg.required == ("onnx", "tflite-fp32", "tflite-fp16")
    assert cfg.accuracy_limit("tflite-fp16") == 1e-2
    assert cfg.accuracy_limit("tflite-int8") == 0.25  # not listed: the converter's tolerance


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
    nan = float("nan")
    cand = copy.deepcopy(results())
    cand["builds"][0]["accuracy"]["per_output"]["throttle"]["max_abs"] = nan  # not the first output
    out = evaluate(cand, results(), CFG)
    assert not out.passed and any("onnx: max abs error nan on throttle" in r for r in out.reasons)
    out = evaluate(with_build(results(), "tflite-fp32", p99=nan), results(), CFG)
    assert not out.passed and any("tflite-fp32: p99 nan ms" in r for r in out.reasons)


def test_a_loop_the_baseline_measured_must_be_measured_again() -> None:
    cand = copy.deepcopy(results())
    for b in cand["builds"]:
        b.pop("loop", None)  # as with --no-loop
    out = evaluate(cand, results(), CFG)
    assert not out.passed
    assert any("the baseline measured the loop but this run did not" in r for r in out.reasons)


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
