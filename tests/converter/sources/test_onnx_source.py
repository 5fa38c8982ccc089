"""An ONNX source whose image input is not float32 (a uint8 image input, as some exporters write
with the normalisation inside) is refused when loaded, naming the input, its type and the fix,
instead of an internal error from ONNX Runtime; through ``convert-model`` that is exit 2 and
nothing written. The same graph with a float32 input loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from converter.cli import main
from converter.errors import ModelLoadError
from converter.sources.hints import SourceHints
from converter.sources.onnx_source import OnnxSource


def _pilot(path: Path, dtype: int) -> Path:
    """images (1, 16, 16, 3) of ``dtype`` -> Cast -> /255 -> Transpose -> Conv -> pool -> controls (1, 2)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(0, 1, (4, 2)).astype(np.float32), "h"),
             numpy_helper.from_array(np.array(1 / 255, np.float32), "k")]
    nodes = [helper.make_node("Cast", ["images"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["f", "k"], ["fs"]),
             helper.make_node("Transpose", ["fs"], ["nchw"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["nchw", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["c"], ["g"]),
             helper.make_node("Flatten", ["g"], ["fl"]),
             helper.make_node("MatMul", ["fl", "h"], ["m"]),
             helper.make_node("Tanh", ["m"], ["controls"])]
    graph = helper.make_graph(nodes, "pilot", [helper.make_tensor_value_info("images", dtype, [1, 16, 16, 3])],
                              [helper.make_tensor_value_info("controls", TensorProto.FLOAT, [1, 2])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_uint8_image_input_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as e:
        OnnxSource(_pilot(tmp_path / "model.onnx", TensorProto.UINT8), SourceHints(workdir=tmp_path / "w"))
    msg = str(e.value)
    assert "'images'" in msg and "uint8" in msg and "float32" in msg and "--scale 1" in msg, msg


def test_float32_input_of_the_same_graph_loads_and_runs(tmp_path: Path) -> None:
    src = OnnxSource(_pilot(tmp_path / "model.onnx", TensorProto.FLOAT), SourceHints(workdir=tmp_path / "w"))
    assert src.input_shapes == {"images": (1, 16, 16, 3)} and src.default_layout == "NHWC"
    out = src.predict({"images": np.full((2, 16, 16, 3), 128.0, np.float32)})["controls"]
    assert out.shape == (2, 2) and np.all(np.isfinite(out))


def _with_external_data(tmp_path: Path) -> Path:
    src = onnx.load(str(_pilot(tmp_path / "one_file.onnx", TensorProto.FLOAT)))
    (tmp_path / "art").mkdir()
    onnx.save_model(src, str(tmp_path / "art" / "model.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="model.onnx.data", size_threshold=0)
    return tmp_path / "art" / "model.onnx"


def test_external_data_missing_beside_the_onnx_names_the_file_and_the_fix(tmp_path: Path) -> None:
    path = _with_external_data(tmp_path)
    (path.parent / "model.onnx.data").unlink()  # logged without its data file
    with pytest.raises(ModelLoadError) as e:
        OnnxSource(path, SourceHints(workdir=tmp_path / "w"))
    msg = str(e.value)
    assert "external data (model.onnx.data)" in msg and "same artifact folder" in msg, msg
    assert str(tmp_path) not in msg  # no scratch path: the artifact's own names


def test_external_data_beside_the_onnx_loads(tmp_path: Path) -> None:
    src = OnnxSource(_with_external_data(tmp_path), SourceHints(workdir=tmp_path / "w"))
    out = src.predict({"images": np.full((1, 16, 16, 3), 128.0, np.float32)})["controls"]
    assert out.shape == (1, 2) and np.all(np.isfinite(out))


def test_convert_model_refuses_a_registered_uint8_onnx_with_exit_2(tmp_path: Path,
                                                                    capfd: pytest.CaptureFixture[str]) -> None:
    import mlflow

    from converter.demo.registration import tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with tracking(uri):
        mlflow.set_experiment("u8")
        with mlflow.start_run():
            mlflow.onnx.log_model(onnx.load(str(_pilot(tmp_path / "model.onnx", TensorProto.UINT8))), name="model",
                                  registered_model_name="u8_pilot")
    code = main(["--name", "u8_pilot", "--version", "1", "--tracking-uri", uri, "--output", str(tmp_path / "b"),
                 "--formats", "onnx", "--no-log", "--outputs", "controls=steering:component:0"])
    errors = [line for line in capfd.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "uint8" in errors[0], errors
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").rglob("*"))
