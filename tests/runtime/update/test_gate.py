"""The replay gate (runtime/update/gate.py) on small signed bundles with ONNX Runtime: a bundle
that reproduces its reference outputs passes with figures; one whose outputs are off, or one over
the latency budget, fails with the figures that say why. ~2 s."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.update.gate import GateConfig, replay_gate
from tests.runtime.signing.keys import write_keypair
from tests.runtime.update.registry_parts import signed_bundle


@pytest.fixture
def key(tmp_path: Path) -> Path:
    return write_keypair(tmp_path, "team")[0]


def test_a_bundle_that_reproduces_its_reference_passes(tmp_path: Path, key: Path) -> None:
    why, fig = replay_gate(signed_bundle(tmp_path, "p", "1", key), GateConfig("onnxruntime"))
    assert why is None, why
    assert fig["gated"] and fig["backend"] == "onnxruntime" and fig["frames"] == 12
    assert fig["max_abs_err"]["steering"] <= 1e-4 and fig["p99_ms"] <= fig["p99_budget_ms"]


def test_outputs_off_on_the_reference_frames_fail_with_figures(tmp_path: Path, key: Path) -> None:
    why, fig = replay_gate(signed_bundle(tmp_path, "p", "1", key, wrong_outputs=True), GateConfig("onnxruntime"))
    assert why is not None and "steering off by 0.3" in why and "tolerance 0.01" in why, why
    assert fig["max_abs_err"]["steering"] == pytest.approx(0.3, abs=1e-3)


def test_a_p99_over_the_budget_fails(tmp_path: Path, key: Path) -> None:
    why, fig = replay_gate(signed_bundle(tmp_path, "p", "1", key), GateConfig("onnxruntime", p99_ms=1e-6))
    assert why is not None and "p99" in why and fig["p99_ms"] > 1e-6
