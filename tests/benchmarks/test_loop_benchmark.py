"""The loop benchmark runs end to end and reports every figure (speed is judged by running it,
not here)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.loop_benchmark import run_loop_benchmark


def test_benchmark_reports_pipeline_vs_bare(bundle: Path, clip_video: Path) -> None:
    r = run_loop_benchmark(bundle, "litert", clip_video, n_frames=40, rounds=2, latency_fps=200.0,
                           latency_frames=40, measure_rss=False)
    assert r["frames"] == 40 and len(r["fps_ratio_per_round"]) == 2
    assert r["bare_fps"] > 0 and r["pipeline_fps"] > 0 and r["pipeline_fps_video"] > 0
    assert 0 < r["camera_to_command_ms"]["p50"] <= r["camera_to_command_ms"]["p99"]
    assert set(r["targets"]) == {"fps_ratio", "latency_margin_ms"}


def test_pilots_with_several_inputs_side_by_side(tmp_path: Path) -> None:
    from benchmarks.loop_benchmark import compare_loops, format_comparison
    from tests.runtime.multi_input import image_input, vector_input, write_bundle

    bundles = {
        "linear": write_bundle(tmp_path, "linear", [image_input()]),
        "imu": write_bundle(tmp_path, "imu", [image_input(), vector_input("imu_in", "imu", 6)]),
        "memory": write_bundle(tmp_path, "memory", [image_input(), vector_input("mem_in", "memory", 4, length=2)]),
        "sequence": write_bundle(tmp_path, "sequence", [image_input(length=3)]),
        "speed": write_bundle(tmp_path, "speed", [image_input(), vector_input("speed", "wheel_speed", 1)]),
    }
    r = compare_loops(bundles, "onnxruntime", n_frames=30, rounds=2, latency_fps=200.0, latency_frames=30)
    assert list(r["pilots"]) == list(bundles)
    for label, p in r["pilots"].items():
        assert p["pipeline_fps"] > 0 and p["bare_fps"] > 0, label
        assert 0 < p["camera_to_command_p50_ms"] <= p["camera_to_command_p99_ms"], label
        assert len(p["camera_to_command_p99_per_round"]) == 2
    assert r["pilots"]["imu"]["inputs"] == {"img_in": "image", "imu_in": "imu"}
    assert r["pilots"]["sequence"]["inputs_not_ready_paced"] == 2 * 2  # T-1 frames per paced run, 2 rounds
    assert r["pilots"]["imu"]["inputs_not_ready_paced"] == 0  # the replayed IMU never went stale
    assert r["pilots"]["speed"]["inputs_not_ready_paced"] == 0  # nor the replayed wheel speed
    assert "sequence" in format_comparison(r)
