"""The loop benchmark runs end to end and reports every figure (speed is judged by running it,
not here)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.loop_benchmark import run_loop_benchmark


def test_benchmark_reports_pipeline_vs_bare(bundle: Path, clip_video: Path) -> None:
    r = run_loop_benchmark(bundle, "tflite", clip_video, n_frames=40, rounds=2, latency_fps=200.0,
                           latency_frames=40, measure_rss=False)
    assert r["frames"] == 40 and len(r["fps_ratio_per_round"]) == 2
    assert r["bare_fps"] > 0 and r["pipeline_fps"] > 0 and r["pipeline_fps_video"] > 0
    assert 0 < r["camera_to_command_ms"]["p50"] <= r["camera_to_command_ms"]["p99"]
    assert set(r["targets"]) == {"fps_ratio", "latency_margin_ms"}
