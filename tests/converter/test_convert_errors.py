"""Bad input gets a one-line error, the right exit code, and leaves nothing half-written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from converter.cli import main
from runtime.manifest import load_manifest
from tests.conftest import DemoRegistry, free_port
from tests.converter import custom_layers
from tests.converter.registry_helpers import register

pytestmark = pytest.mark.slow


def run(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit code and everything printed (stdout then stderr); with --json, stdout is the JSON."""
    code = main(argv)
    cap = capfd.readouterr()
    return code, cap.out + "\n" + cap.err


def test_unknown_version_lists_existing(demo_registry: DemoRegistry, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, text = run(["--name", "rc_pilot", "--version", "9", "--tracking-uri", demo_registry.tracking_uri,
                      "--output", str(tmp_path)], capfd)
    assert code == 2
    assert "has no version 9; versions that exist: 1, 2, 3" in text
    assert not any(tmp_path.iterdir())


def test_unknown_model_and_alias(demo_registry: DemoRegistry, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, text = run(["--name", "nope", "--version", "1", "--tracking-uri", demo_registry.tracking_uri], capfd)
    assert code == 2 and "model 'nope' not found" in text and "rc_pilot" in text
    code, text = run(["--name", "rc_pilot", "--alias", "gone", "--tracking-uri", demo_registry.tracking_uri], capfd)
    assert code == 2 and "no alias @gone" in text


def test_registry_unreachable_is_bounded(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code, text = run(["--name", "m", "--version", "1", "--tracking-uri", url, "--output", str(tmp_path)], capfd)
    assert code == 2
    assert "unreachable" in text and "after 3 tries" in text


def test_missing_name_is_usage_error(capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RC_MODEL_NAME", raising=False)
    code, text = run(["--version", "1"], capfd)
    assert code == 2 and "--name" in text


def test_bad_formats_and_tolerance(capfd: pytest.CaptureFixture[str]) -> None:
    code, text = run(["--name", "m", "--version", "1", "--formats", "onnx,tflite-fp64"], capfd)
    assert code == 2 and "unknown format 'tflite-fp64'" in text
    code, text = run(["--name", "m", "--version", "1", "--tolerance", "onnx"], capfd)
    assert code == 2 and "FORMAT=NUMBER" in text



def test_int8_named_without_a_calibration_set_is_refused_before_any_work(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # No registry at this URI: the refusal comes first, from the flags alone.
    uri = f"sqlite:///{tmp_path / 'none.db'}"
    code, text = run(["--name", "m", "--version", "1", "--tracking-uri", uri, "--output", str(tmp_path / "b"),
                      "--formats", "onnx,onnx-int8,tflite-int8"], capfd)
    assert code == 2 and "--formats tflite-int8,onnx-int8 calibrate on real frames: pass --calibration DIR" in text
    assert not (tmp_path / "b").exists() and not (tmp_path / "none.db").exists()


def _truncated_keras(tmp: Path) -> bytes:
    """The first half of a real .keras file (a copy cut short in transfer)."""
    import keras

    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(1, name="steering")])
    model.save(tmp / "whole.keras")
    data = (tmp / "whole.keras").read_bytes()
    return data[: len(data) // 2]


@pytest.mark.parametrize("payload, expect", [
    (b"", "empty"),
    (b"PK\x03\x04 not really a zip", "model.keras is not a complete .keras archive"),
    (_truncated_keras, "model.keras is not a complete .keras archive"),
])
def test_corrupt_or_empty_artifact(tmp_path: Path, capfd: pytest.CaptureFixture[str], payload: Any, expect: str) -> None:
    data = payload(tmp_path) if callable(payload) else payload
    uri = register(tmp_path, None, how="raw", file_bytes=data)
    code, text = run(["--name", "m", "--version", "1", "--tracking-uri", uri, "--output", str(tmp_path / "b")], capfd)
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and expect in errors[0], text[-1500:]
    assert "File not found" not in errors[0] and ("re-log" in errors[0] or expect == "empty")
    leftovers = list((tmp_path / "b").rglob("*")) if (tmp_path / "b").exists() else []
    assert [p for p in leftovers if p.is_file()] == []  # no bundle, no staging files


def test_lambda_layer_refused_by_safe_mode(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from converter.demo.model import build_lambda_pilot

    uri = register(tmp_path, build_lambda_pilot(), how="keras-file")
    code, text = run(["--name", "m", "--version", "1", "--tracking-uri", uri, "--output", str(tmp_path / "b")], capfd)
    assert code == 2
    assert "Lambda layer 'center'" in text and "--custom-objects" in text


def test_unknown_custom_layer_then_custom_objects(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    model = custom_layers.pilot_with(custom_layers.Scale(0.5, name="scale"))
    uri = register(tmp_path, model, how="keras-file")
    base = ["--name", "m", "--version", "1", "--tracking-uri", uri, "--output", str(tmp_path / "b"),
            "--formats", "onnx", "--no-log"]
    code, text = run(base, capfd)
    assert code == 2 and "'Scale'" in text and "--custom-objects" in text
    code, text = run([*base, "--custom-objects", "tests.converter.custom_layers:CUSTOM"], capfd)
    assert code == 0, text


@pytest.mark.parametrize("layer, broken, op", [("LgammaFeature", "onnx", "Lgamma"),
                                                ("DetFeature", "tflite-fp32", "MatrixDeterminant")])
def test_op_one_format_cannot_express(tmp_path: Path, capfd: pytest.CaptureFixture[str], layer: str, broken: str,
                                      op: str) -> None:
    model = custom_layers.pilot_with(custom_layers.CUSTOM[layer](name="extra"))
    uri = register(tmp_path, model, how="keras-file")
    code, text = run(["--name", "m", "--version", "1", "--tracking-uri", uri, "--output", str(tmp_path / "b"),
                      "--formats", "onnx,tflite-fp32", "--no-log", "--json",
                      "--custom-objects", "tests.converter.custom_layers:CUSTOM"], capfd)
    assert code == 1
    summary = json.loads(text.split("\n}\n")[0] + "\n}")
    status = {f["format"]: f for f in summary["formats"]}
    assert status[broken]["status"] == "failed" and op in status[broken]["reason"]
    if layer == "LgammaFeature":
        # LiteRT converts Lgamma but XNNPACK cannot run it: caught by verification, so no bundle at all.
        assert "verification failed" in status["tflite-fp32"]["reason"]
        assert summary["bundle"] is None and not (tmp_path / "b" / "m" / "v1").exists()
        return
    ok = next(f for f in status if f != broken)
    assert status[ok]["status"] == "built"
    m = load_manifest(tmp_path / "b" / "m" / "v1")
    assert [b.format for b in m.builds] == [ok]
    assert m.not_built[0]["format"] == broken
    files = sorted(p.name for p in (tmp_path / "b" / "m" / "v1").iterdir())
    assert files == sorted(["manifest.json", "reference.npz", m.build(ok).file])  # no leftovers of the failed one


def test_trt_without_gpu_skipped_unless_asked(demo_registry: DemoRegistry, tmp_path: Path,
                                              capfd: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("converter.builders.tensorrt")
    base = ["--name", "rc_pilot", "--version", "3", "--tracking-uri", demo_registry.tracking_uri,
            "--output", str(tmp_path), "--no-log", "--json"]
    code, text = run([*base, "--formats", "onnx,trt-fp16"], capfd)
    summary = json.loads(text.split("\n}\n")[0] + "\n}")
    assert code == 1 and summary["formats"][1]["status"] == "failed"  # asked for by name: an error
    code, text = run([*base, "--config", str(_config(tmp_path, ["onnx", "trt-fp16"]))], capfd)
    summary = json.loads(text.split("\n}\n")[0] + "\n}")
    assert code == 0 and summary["formats"][1]["status"] == "skipped"
    assert summary["formats"][1]["reason"]


def _config(tmp: Path, formats: list[str]) -> Path:
    p = tmp / "rc-edge.toml"
    p.write_text(f"[convert]\nformats = {json.dumps(formats)}\n")
    return p


def test_config_unknown_key_is_an_error(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "rc-edge.toml"
    p.write_text('[convert]\nformat = ["onnx"]\n')
    code, text = run(["--name", "m", "--version", "1", "--config", str(p)], capfd)
    assert code == 2 and "unknown key" in text and "format" in text


def test_scale_flag_on_a_model_with_a_rescaling_layer_is_refused(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """A user passes --scale 1/255 for a Keras model that divides by 255 itself: the car would feed
    it pixels scaled twice, and parity (same inputs on both sides) cannot see that. Exit 2, nothing written."""
    import keras

    inp = keras.Input((24, 32, 3), name="image")
    x = keras.layers.Rescaling(1 / 255.0, name="to_unit")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, [keras.layers.Dense(1, activation="tanh", name="steering")(x),
                              keras.layers.Dense(1, activation="sigmoid", name="throttle")(x)])
    uri = register(tmp_path, model, tags={"edge.preprocess": json.dumps({"width": 32, "height": 24})})
    base = ["--name", "m", "--version", "1", "--tracking-uri", uri, "--output", str(tmp_path / "b"), "--formats", "onnx",
            "--no-log", "--n-samples", "4"]
    code, text = run([*base, "--scale", "0.00392156862745098"], capfd)
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "'to_unit'" in errors[0] and "twice" in errors[0], text[-1500:]
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").rglob("*"))
    code, text = run(base, capfd)  # without the flag: raw pixels in, built
    assert code == 0, text[-1500:]
    pre = load_manifest(tmp_path / "b" / "m" / "v1").inputs[0].preprocess
    assert pre is not None and pre.scale == 1.0 and pre.model_rescales
