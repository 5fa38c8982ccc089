"""`rc-benchmark` on the demo bundle, for real: table, JSON, Markdown, PNG, an MLflow run; the gate on
a copy of the same version, a really slowed build and a really less accurate one. Counts are small
(flags) to keep the module fast; speed itself is measured by the benchmark, never asserted here
beyond a deliberately gross slowdown."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from mlflow import MlflowClient
from onnx import TensorProto, helper, numpy_helper

from benchmarks.cli import main
from runtime.manifest import sha256_file
from tests.conftest import DemoRegistry

pytestmark = pytest.mark.slow

QUICK = ["--repeats", "1", "--warmup", "3", "--min-count", "30", "--min-time", "0.05"]
LOOP = ["--loop-frames", "40", "--loop-rounds", "1", "--loop-latency-frames", "30", "--loop-latency-fps", "200"]


def _client(reg: DemoRegistry) -> MlflowClient:
    return MlflowClient(tracking_uri=reg.tracking_uri, registry_uri=reg.tracking_uri)


def _registry_args(reg: DemoRegistry, bundle: Path) -> list[str]:
    return ["--name", reg.name, "--tracking-uri", reg.tracking_uri, "--output", str(bundle.parent.parent)]


@pytest.fixture(scope="module")
def first_run(demo_registry: DemoRegistry, demo_bundle: Path, tmp_path_factory: pytest.TempPathFactory,
              ) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "v3"
    argv = ["--version", "3", *_registry_args(demo_registry, demo_bundle), *QUICK, *LOOP, "--out", str(out),
            "--note", "test run"]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):  # module-scoped: capfd is not available here
        code = main(argv)
    return {"code": code, "out": out, "stdout": stdout.getvalue()}


def test_cli_writes_table_json_report_plot_and_mlflow_run(first_run: dict[str, Any], demo_registry: DemoRegistry) -> None:
    assert first_run["code"] == 0
    out: Path = first_run["out"]
    results = json.loads((out / "results.json").read_text())
    assert results["schema"] == "rc-edge-benchmark/1"
    assert results["model"]["name"] == "rc_pilot" and results["model"]["version"] == "3"
    assert {"id", "cpu_model", "logical_cores", "gpu", "tensorrt", "hostname"} <= set(results["machine"])
    by = {b["format"]: b for b in results["builds"]}
    assert list(by) == ["onnx", "onnx-fp16", "tflite-fp32", "tflite-fp16"]
    for fmt, b in by.items():
        assert b["status"] == "ok", (fmt, b.get("reason"))
        assert set(b["latency_ms"]) == {"min", "mean", "p50", "p90", "p99", "max"}
        assert 0 < b["latency_ms"]["min"] <= b["latency_ms"]["p50"] <= b["latency_ms"]["p99"] <= b["latency_ms"]["max"]
        assert b["fps"] > 0 and b["calls_per_repeat"][0] >= 30
        assert b["peak_rss_mb"] > 10 and b["size_mb"] > 0
        assert set(b["accuracy"]["per_output"]) == {"steering", "throttle"} and b["accuracy"]["samples"] == 64
        loop = b["loop"]
        assert loop["link"] == "sim://" and loop["fps"] > 0 and loop["bare_fps"] > 0
        assert loop["camera_to_command_ms"]["p99"] > 0 and loop["dropped"] >= 0
        ratio = loop["fps_ratio_interval"]
        assert ratio["lo"] <= loop["fps_ratio"] <= ratio["hi"] and "per_frame_overhead_us_interval" in loop
        assert bool(loop["consistency"]) == (loop["fps_ratio"] > 1.0)  # a loop faster than bare: never unexplained
    assert by["onnx"]["accuracy"]["max_abs"] < 1e-4 and by["tflite-fp16"]["accuracy"]["max_abs"] < 1e-2
    assert "test run" in results["notes"]
    report = (out / "report.md").read_text()
    assert "| format | status | size MB | error | p50 ms | p99 ms | FPS |" in report
    assert "## End to end" in report and "![latency CDF](latency.png)" in report
    assert (out / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(np.load(out / "latencies.npz").files) == set(by)
    # the terminal table
    stdout = first_run["stdout"]
    for col in ("format", "status", "size MB", "error", "p50 ms", "p99 ms", "FPS", "loop p99 ms"):
        assert col in stdout
    assert "tflite-fp16" in stdout and f"mlflow run: {results['mlflow_run_id']}" in stdout
    # the MLflow run
    client = _client(demo_registry)
    run = client.get_run(results["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "edge-benchmarks"
    assert run.data.tags["edge.model_version"] == "3" and run.data.tags["edge.model_name"] == "rc_pilot"
    assert run.data.tags["edge.machine_id"] == results["machine"]["id"]
    assert run.data.params["bundle.sha256"] == results["bundle"]["sha256"]
    assert run.data.params["machine.cpu_model"] == results["machine"]["cpu_model"]
    assert "toolchain.onnxruntime" in run.data.params
    assert run.data.metrics["tflite-fp16.p99_ms"] == pytest.approx(by["tflite-fp16"]["latency_ms"]["p99"])
    assert "onnx.steering.max_abs" in run.data.metrics and "onnx.loop.c2c_p99_ms" in run.data.metrics
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {
        "results.json", "report.md", "latency.png", "latencies.npz"}


def test_gate_passes_a_copy_of_the_same_version_and_promotes(
    first_run: dict[str, Any], demo_registry: DemoRegistry, demo_bundle: Path, tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    assert first_run["code"] == 0
    client = _client(demo_registry)
    client.set_registered_model_alias(demo_registry.name, "bench-base", "3")
    code = main(["--version", "3", *_registry_args(demo_registry, demo_bundle), *QUICK, "--no-loop", "--no-log",
                 "--formats", "onnx", "--gate-config", str(_gate_config(tmp_path, 80.0, pct=90.0)),
                 "--gate", "--baseline-alias", "bench-base", "--promote", "--promote-alias", "bench-candidate",
                 "--out", str(tmp_path / "out")])
    stdout = capfd.readouterr().out
    assert code == 0, stdout
    assert "gate passed" in stdout and "rc_pilot v3 @bench-base" in stdout
    assert str(client.get_model_version_by_alias(demo_registry.name, "bench-candidate").version) == "3"
    gate = json.loads((tmp_path / "out" / "results.json").read_text())["gate"]
    assert gate["passed"] and gate["verdict"] == "pass" and gate["reasons"] == []
    assert [(c["build"], c["figure"]) for c in gate["comparisons"]] == [("onnx", "p50"), ("onnx", "p99"), ("onnx", "fps")]


def _gate_config(tmp: Path, floor_ms: float, pct: float = 10.0) -> Path:
    """The +``pct`` % rules with a given noise floor, requiring only the builds these tests measure,
    and short side-by-side rounds. On this shared 2-core machine the p99 of a 0.1 ms model over a few
    dozen calls is scheduler noise (tens of ms under load): the copy of the same version is judged
    with a floor above that noise, the slowed build (~100 ms a call) with a 2 ms floor."""
    p = tmp / "gate.toml"
    p.write_text(f"[latency]\nmax_p99_regression_pct = {pct}\nmin_p99_regression_ms = {floor_ms}\n"
                 f"max_p50_regression_pct = {pct}\nmin_p50_regression_ms = {floor_ms}\nmax_fps_regression_pct = {pct}\n"
                 '[builds]\nrequired = ["onnx"]\nbaseline_builds_required = false\n'
                 "[side_by_side]\nrounds = 3\nround_warmup = 2\nround_min_count = 10\nround_min_time_s = 0.05\n")
    return p


def _copy_with_onnx(bundle: Path, dest: Path, model: onnx.ModelProto) -> Path:
    """A copy of the bundle whose model.onnx is ``model``, with the manifest's sha256 and size updated."""
    shutil.copytree(bundle, dest)
    onnx.save(model, dest / "model.onnx")
    manifest = json.loads((dest / "manifest.json").read_text())
    for b in manifest["builds"]:
        if b["format"] == "onnx":
            b["sha256"], b["bytes"] = sha256_file(dest / "model.onnx"), (dest / "model.onnx").stat().st_size
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return dest


def slowed(model: onnx.ModelProto, n: int = 1536) -> onnx.ModelProto:
    """Same outputs, real extra work: steering += 0 * sum((mean(image) * A) @ B @ B), A and B n x n
    (~100 ms a call here: far beyond any scheduler noise). It depends on the input, so ONNX Runtime
    cannot fold it away."""
    g = model.graph
    rng = np.random.default_rng(0)
    g.initializer.extend([
        numpy_helper.from_array((rng.standard_normal((n, n)) * 0.01).astype(np.float32), "slow_a"),
        numpy_helper.from_array((rng.standard_normal((n, n)) * 0.01).astype(np.float32), "slow_b"),
        numpy_helper.from_array(np.zeros((), np.float32), "slow_zero"),
    ])
    image = g.input[0].name
    steering = next(o for o in g.output if o.name == "steering")
    for node in g.node:  # rename the producer of 'steering' so the new Add can take its name
        node.output[:] = ["steering_fast" if x == "steering" else x for x in node.output]
    g.node.extend([
        helper.make_node("ReduceMean", [image], ["slow_m"], keepdims=0),
        helper.make_node("Mul", ["slow_m", "slow_a"], ["slow_x"]),
        helper.make_node("MatMul", ["slow_x", "slow_b"], ["slow_y"]),
        helper.make_node("MatMul", ["slow_y", "slow_b"], ["slow_y2"]),
        helper.make_node("ReduceSum", ["slow_y2"], ["slow_s"], keepdims=0),
        helper.make_node("Mul", ["slow_s", "slow_zero"], ["slow_0"]),
        helper.make_node("Add", ["steering_fast", "slow_0"], [steering.name]),
    ])
    assert steering.type.tensor_type.elem_type == TensorProto.FLOAT
    onnx.checker.check_model(model)
    return model


def perturbed(model: onnx.ModelProto, rel: float = 0.05) -> onnx.ModelProto:
    """A valid but less accurate model: every float weight scaled by (1 + rel * noise)."""
    rng = np.random.default_rng(1)
    for i, init in enumerate(model.graph.initializer):
        w = numpy_helper.to_array(init)
        if w.dtype == np.float32 and w.size > 1:
            noisy = (w * (1 + rel * rng.standard_normal(w.shape))).astype(np.float32)
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(noisy, init.name))
    return model


def test_gate_fails_a_really_slowed_build(
    demo_bundle: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    bundle = _copy_with_onnx(demo_bundle, tmp_path / "rc_pilot" / "v3", slowed(onnx.load(demo_bundle / "model.onnx")))
    code = main(["--bundle", str(bundle), *QUICK, "--formats", "onnx", "--no-loop", "--no-log",
                 "--gate", "--gate-config", str(_gate_config(tmp_path, 2.0)),
                 "--baseline-bundle", str(demo_bundle), "--out", str(tmp_path / "out")])
    stdout = capfd.readouterr().out
    assert code == 1, stdout
    gate = json.loads((tmp_path / "out" / "results.json").read_text())["gate"]
    assert not gate["passed"] and gate["verdict"] == "fail"
    assert [r.split(" ")[:2] for r in gate["reasons"]] == [["onnx:", "p50"], ["onnx:", "p99"], ["onnx:", "fps"]]
    assert "gate failed" in stdout and "FAIL onnx: p99" in stdout


def test_gate_fails_a_less_accurate_build(
    demo_bundle: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    bundle = _copy_with_onnx(demo_bundle, tmp_path / "rc_pilot" / "v3", perturbed(onnx.load(demo_bundle / "model.onnx")))
    code = main(["--bundle", str(bundle), *QUICK, "--formats", "onnx", "--no-loop", "--no-log",
                 "--gate", "--gate-config", str(_gate_config(tmp_path, 2.0)), "--no-baseline", "--out", str(tmp_path / "out")])
    stdout = capfd.readouterr().out
    assert code == 1, stdout
    gate = json.loads((tmp_path / "out" / "results.json").read_text())["gate"]
    assert len(gate["reasons"]) == 1 and "onnx: max abs error" in gate["reasons"][0]
    assert "exceeds the limit 0.0001" in gate["reasons"][0]


def test_gate_without_a_baseline_bundle_fails_before_measuring(
    demo_registry: DemoRegistry, demo_bundle: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    _client(demo_registry).set_registered_model_alias(demo_registry.name, "bench-v1", "1")
    code = main(["--version", "3", *_registry_args(demo_registry, demo_bundle), "--gate",
                 "--baseline-alias", "bench-v1", "--out", str(tmp_path / "out")])
    err = capfd.readouterr().err
    assert code == 1
    assert "baseline rc_pilot @bench-v1: no bundle for rc_pilot v1" in err
    assert "convert-model --name rc_pilot --version 1" in err
    assert not (tmp_path / "out").exists()


def test_a_baseline_from_another_time_is_refused_with_the_fix(
    demo_bundle: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code = main(["--bundle", str(demo_bundle), "--gate", "--baseline-json", str(tmp_path / "results.json"),
                 "--no-log", "--out", str(tmp_path / "out")])
    err = capfd.readouterr().err
    assert code == 2
    assert "the gate measures the baseline in the same run; pass --baseline-bundle DIR" in err
    assert main(["--bundle", str(demo_bundle), "--gate", "--rounds", "2"]) == 2
    assert "at least 3 rounds" in capfd.readouterr().err


def test_missing_bundle_says_to_convert_first(
    demo_registry: DemoRegistry, demo_bundle: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code = main(["--version", "9", *_registry_args(demo_registry, demo_bundle)])
    err = capfd.readouterr().err
    assert code == 2
    assert "no bundle for rc_pilot v9" in err and "run convert-model first: convert-model --name rc_pilot --version 9" in err


def test_usage_errors_exit_2(demo_bundle: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["--bundle", str(demo_bundle), "--promote"]) == 2
    assert "--promote needs --gate" in capfd.readouterr().err
    assert main(["--bundle", str(demo_bundle), "--formats", "onnx,tflite"]) == 2
    assert "unknown ['tflite']" in capfd.readouterr().err
    bad = tmp_path / "gate.toml"
    bad.write_text("[latency]\nmax_p99 = 3\n")
    assert main(["--bundle", str(demo_bundle), "--gate", "--gate-config", str(bad), "--no-baseline"]) == 2
    assert "unknown key(s) ['max_p99']" in capfd.readouterr().err
    assert main(["--bundle", str(tmp_path)]) == 2
    assert "no manifest.json there" in capfd.readouterr().err
