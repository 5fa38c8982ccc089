"""Small parts: latency summaries, medians over repeats, build order, machine records, timing loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.machine import cpu_model, describe_machine, machine_id, short
from benchmarks.stats import median, median_of_dicts, rotate, summarize
from benchmarks.worker import timed_calls


def test_summarize_percentiles() -> None:
    s = summarize(np.arange(1, 101, dtype=float))
    assert (s["min"], s["max"], s["count"]) == (1.0, 100.0, 100)
    assert s["p50"] == pytest.approx(50.5) and s["p99"] == pytest.approx(99.01)
    with pytest.raises(ValueError, match="no latency samples"):
        summarize([])


def test_medians_over_repeats() -> None:
    assert median([3.0, 1.0, 2.0, None]) == 2.0
    assert median([None]) is None
    runs = [{"p99": 1.0, "gpu": {"compute": 0.5}}, {"p99": 9.0, "gpu": {"compute": 0.7}}, {"p99": 2.0, "gpu": {"compute": 0.6}}]
    assert median_of_dicts(runs) == {"p99": 2.0, "gpu": {"compute": 0.6}}


def test_rotate_puts_each_build_first_once() -> None:
    items = ["onnx", "onnx-fp16", "tflite-fp32"]
    assert [rotate(items, r)[0] for r in range(3)] == items
    assert rotate(items, 4) == ["onnx-fp16", "tflite-fp32", "onnx"]
    assert rotate([], 2) == []


def test_cpu_model_from_cpuinfo(tmp_path: Path) -> None:
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\nprocessor\t: 1\n")
    assert cpu_model(x86) == "AMD EPYC 7B13"
    arm = tmp_path / "arm"  # a Jetson Orin's /proc/cpuinfo has no model name
    arm.write_text("processor\t: 0\nBogoMIPS\t: 62.50\nCPU implementer\t: 0x41\nCPU part\t: 0xd42\n")
    assert cpu_model(arm) == "ARM implementer 0x41 part 0xd42"


def test_machine_record_here() -> None:
    m = describe_machine()
    assert m["logical_cores"] and m["cpu_model"] and m["arch"]
    assert m["id"] == machine_id(m)  # the id is a pure function of the record
    assert m["hostname"] in short(m) and m["id"] in short(m)


def test_timed_calls_reaches_count_and_time() -> None:
    calls: list[int] = []
    inputs = np.zeros((4, 2, 2, 3), np.float32)
    lat, wall = timed_calls(lambda x: calls.append(x.shape[0]), inputs, warmup=3, min_count=25, min_time_s=0.0)
    assert len(lat) == 25 and len(calls) == 28 and set(calls) == {1}  # batch 1, warm-up not timed
    lat, wall = timed_calls(lambda x: None, inputs, warmup=0, min_count=1, min_time_s=0.02)
    assert wall >= 0.02 and len(lat) > 1
