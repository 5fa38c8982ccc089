"""Candidate and baseline side by side: the interval statistics, and real rounds of small real ONNX
bundles through the benchmark's workers (A/A: the same network never fails; A/B: a network with
~4x the compute fails, naming the build and the figure)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.cli import EXIT_FAIL, EXIT_OK, EXIT_UNDECIDED, gate_exit
from benchmarks.gate import evaluate
from benchmarks.gate_config import GateConfig
from benchmarks.side_by_side import FAIL, PASS, UNDECIDED, Limits, RoundSettings, judge_rounds, measure_rounds
from benchmarks.stats import bootstrap_median, paired_ratio
from tests.runtime.perception_bundles import SEG_PREPROCESS, _finish, _image_input, write_bundle


def conv_onnx(width: int) -> bytes:
    """image -> conv 3x3 (3 -> width) -> relu -> conv 3x3 (width -> width) -> relu -> mean: the second
    conv's work grows with width squared (2 x width: ~4x the compute)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array((rng.standard_normal((width, 3, 3, 3)) * 0.1).astype(np.float32), "w1")
    w2 = numpy_helper.from_array((rng.standard_normal((width, width, 3, 3)) * 0.1).astype(np.float32), "w2")
    nodes = [
        helper.make_node("Conv", ["image", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("ReduceMean", ["r2"], ["y"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["y", "shape"], ["score"]),
    ]
    shape = numpy_helper.from_array(np.array([1, 1], np.int64), "shape")
    h, w = SEG_PREPROCESS["height"] - SEG_PREPROCESS["crop_top"], SEG_PREPROCESS["width"]
    return _finish(nodes, [w1, w2, shape], [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, h, w])],
                   [helper.make_tensor_value_info("score", TensorProto.FLOAT, [1, 1])], f"conv{width}")


def conv_bundle(root: Path, name: str, width: int) -> Path:
    outputs = [{"name": "score", "shape": [1, 1], "meaning": "other", "decode": {"kind": "scalar"}}]
    return write_bundle(root, name, conv_onnx(width), [_image_input(SEG_PREPROCESS)], outputs)


QUICK = RoundSettings(rounds=4, warmup=5, min_count=40, min_time_s=0.1, threads=1)


# --- statistics ---------------------------------------------------------------------------------


def test_bootstrap_interval_covers_the_median_and_is_seed_stable() -> None:
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(200):  # lognormal rounds, true median 1.0
        x = rng.lognormal(0.0, 0.3, 15)
        ci = bootstrap_median(x, 0.95, seed=0)
        covered += ci.lo <= 1.0 <= ci.hi
        assert ci.lo <= ci.value <= ci.hi
    assert covered >= 180, covered  # ~95 % nominal; the percentile bootstrap of a median runs a little under
    x = rng.lognormal(0.0, 0.3, 10)
    assert bootstrap_median(x, seed=0) == bootstrap_median(x.copy(), seed=0)
    assert bootstrap_median(x, 0.8).rel_width < bootstrap_median(x, 0.99).rel_width
    few = bootstrap_median([1.0, 2.0, 3.0])
    assert (few.lo, few.hi) == (1.0, 3.0)  # three rounds say little: about [min, max]


def test_paired_ratio_cancels_load_shared_by_a_round() -> None:
    load = np.array([1.0, 3.0, 1.2, 5.0, 1.1, 2.0])  # each round's slowdown, common to both sides
    ratio = paired_ratio(1.2 * load, load)
    assert ratio.lo == pytest.approx(1.2) and ratio.hi == pytest.approx(1.2)
    with pytest.raises(ValueError, match="3 candidate rounds but 2 baseline"):
        paired_ratio([1, 2, 3], [1, 2])


def test_gate_exit_codes() -> None:
    base = {"builds": [], "machine": {"loadavg_start": [1.9], "logical_cores": 2}}
    cfg = GateConfig(required=())
    from benchmarks.side_by_side import Rounds

    def rounds(k: float, noise: float) -> Rounds:
        rng = np.random.default_rng(1)
        data = {s: {"onnx": [{"p50": f * (1 + noise * rng.standard_normal()), "p99": 2 * f, "fps": 1 / f}
                             for _ in range(10)]} for s, f in (("candidate", k), ("baseline", 1.0))}
        return Rounds(RoundSettings(), data)

    assert gate_exit(evaluate(base, rounds(1.0, 0.0), cfg, baseline_builds=["onnx"])) == EXIT_OK
    assert gate_exit(evaluate(base, rounds(2.0, 0.0), cfg, baseline_builds=["onnx"])) == EXIT_FAIL
    undecided = evaluate(base, rounds(1.1, 0.3), cfg, baseline_builds=["onnx"])
    assert gate_exit(undecided) == EXIT_UNDECIDED == 3
    assert "load average up to 1.90 on 2 cores" in undecided.advice


# --- real rounds ----------------------------------------------------------------------------------


@pytest.mark.slow  # 8 worker processes: ~7 s on an idle 2-core machine, 20-30 s at load 11
def test_same_network_side_by_side_is_never_a_failure(tmp_path: Path) -> None:
    a = conv_bundle(tmp_path, "conv_a", 16)
    b = conv_bundle(tmp_path, "conv_b", 16)  # another version of the same network
    rounds = measure_rounds(a, b, ["onnx"], QUICK, tmp_path)
    assert rounds.failed == {} and [len(r["onnx"]) for r in rounds.data.values()] == [4, 4]
    figures = judge_rounds(rounds, Limits())
    assert [f.figure for f in figures] == ["p50", "p99", "fps"]
    assert all(f.verdict in (PASS, UNDECIDED) for f in figures), [f.text for f in figures]


@pytest.mark.slow  # as above
def test_four_times_the_compute_fails_naming_build_and_figure(tmp_path: Path) -> None:
    base = conv_bundle(tmp_path, "conv16", 16)
    cand = conv_bundle(tmp_path, "conv32", 32)
    rounds = measure_rounds(cand, base, ["onnx"], QUICK, tmp_path)
    figures = {f.figure: f for f in judge_rounds(rounds, Limits())}
    assert figures["p50"].verdict == FAIL, figures["p50"].text
    assert figures["p50"].ratio.lo > 1.5, figures["p50"].text
    assert figures["p50"].text.startswith("onnx: p50 ")
