"""``benchmarks.shadow_benchmark`` on the demo bundle, tiny: figures for both modes, the shadow judged
frames, and bad arguments are exit 2 with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.shadow_benchmark import main


def test_one_round_gives_figures_for_both_modes(demo_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "shadow.json"
    assert main(["--bundle", str(demo_bundle), "--rounds", "1", "--frames", "12", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    for mode in ("drive", "drive+shadow"):
        c = d["camera_to_command_ms"][mode]
        assert 0 < c["p50"] <= c["p90"] <= c["p99"] and c["inference_p99"] > 0
    assert d["camera_to_command_pooled_ms"]["drive"]["count"] > 0 and d["pooled_p99_ratio"] > 0
    assert d["p99_ratio"] > 0 and d["shadow_judged"]["inferred"] > 0 and d["shadow_judged"]["errors"] == 0


def test_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--bundle", str(tmp_path), "--rounds", "1"]) == 2
    assert "has no manifest.json" in capsys.readouterr().err
