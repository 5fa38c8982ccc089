"""PyTorch and ONNX files as conversion sources: each way a model is saved loads, predicts what
PyTorch predicts, and exports an ONNX that ONNX Runtime runs to the same outputs; bad files are
refused with one line naming the class, op or flag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from converter.errors import ModelLoadError
from converter.sources import SourceHints, find_model_file, load_source
from converter.sources.torch_source import ExportError
from tests.converter.torch_models import (
    KINDS,
    H,
    KwargsNet,
    TupleNet,
    W,
    frames,
    nchw,
    pickled_with_missing_class,
    quick_pilot,
    save,
    torch,
    torch_out,
)

pytestmark = pytest.mark.slow
MODEL_CLASS = "converter.demo.jetracer_net:quick_resnet18"


def _hints(tmp: Path, **kw: Any) -> SourceHints:
    return SourceHints(workdir=tmp / "work", **kw)


def _onnx_run(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out: dict[str, list[np.ndarray]] = {o.name: [] for o in s.get_outputs()}
    n = len(next(iter(feeds.values())))
    for i in range(n):  # the export is batch 1
        for o, y in zip(out, s.run(list(out), {k: v[i:i + 1] for k, v in feeds.items()}), strict=True):
            out[o].append(y)
    return {k: np.concatenate(v) for k, v in out.items()}


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_loads_predicts_and_exports(tmp_path: Path, kind: str) -> None:
    model = quick_pilot()
    save(model, kind, tmp_path / "art" / "data")
    found = find_model_file(tmp_path / "art")
    hints = _hints(tmp_path, output_names=["xy"], input_hw=(H, W),
                   model_class=MODEL_CLASS if kind == "state-dict" else None)
    src = load_source(found, hints=hints)
    assert src.input_names == ["image"] and src.output_names == ["xy"]
    assert src.input_shapes["image"] == (1, 3, H, W)
    assert getattr(src, "default_layout", None) == "NCHW"
    x = nchw(frames())
    want = torch_out(model, x)
    got = src.predict({"image": x})["xy"]
    np.testing.assert_allclose(got, want, atol=1e-5)
    onnx_file = src.onnx_path(18)  # type: ignore[attr-defined]
    y = _onnx_run(onnx_file, {"image": x})
    assert list(y) == ["xy"]
    assert float(np.max(np.abs(y["xy"] - want))) <= 1e-4


def test_pickled_module_whose_class_is_gone_names_class_and_flag(tmp_path: Path) -> None:
    pickled_with_missing_class(tmp_path / "art")
    with pytest.raises(ModelLoadError) as e:
        load_source(find_model_file(tmp_path / "art"), hints=_hints(tmp_path, input_hw=(H, W)))
    msg = str(e.value)
    assert "roadnets.RoadNet" in msg and "--model-class" in msg and "\n" not in msg


def test_state_dict_without_model_class_names_the_flag(tmp_path: Path) -> None:
    save(quick_pilot(), "state-dict", tmp_path / "art")
    with pytest.raises(ModelLoadError, match="--model-class module:attr"):
        load_source(find_model_file(tmp_path / "art"), hints=_hints(tmp_path, input_hw=(H, W)))


def test_state_dict_of_another_architecture_is_named(tmp_path: Path) -> None:
    save(quick_pilot(), "state-dict", tmp_path / "art")
    with pytest.raises(ModelLoadError, match=r"does not fit --model-class .*size mismatch for conv1.weight"):
        load_source(find_model_file(tmp_path / "art"),
                    hints=_hints(tmp_path, input_hw=(H, W), model_class="converter.demo.jetracer_net:ResNet18"))


def test_torchscript_without_input_size_names_the_flag(tmp_path: Path) -> None:
    save(quick_pilot(), "torchscript", tmp_path / "art")
    with pytest.raises(ModelLoadError, match="--input-size"):
        load_source(find_model_file(tmp_path / "art"), hints=_hints(tmp_path))


def test_kwargs_forward_is_refused(tmp_path: Path) -> None:
    (tmp_path / "art").mkdir()
    torch.save(KwargsNet(), str(tmp_path / "art" / "model.pth"))
    with pytest.raises(ModelLoadError, match=r"forward takes \*\*inputs"):
        load_source(find_model_file(tmp_path / "art"), hints=_hints(tmp_path, input_hw=(H, W)))


def test_unnamed_tuple_outputs_need_names_then_load(tmp_path: Path) -> None:
    (tmp_path / "art").mkdir()
    torch.save(TupleNet(), str(tmp_path / "art" / "model.pth"))
    found = find_model_file(tmp_path / "art")
    with pytest.raises(ModelLoadError, match=r"2 unnamed tensors.*--outputs out0=MEANING,out1=MEANING"):
        load_source(found, hints=_hints(tmp_path, input_hw=(H, W)))
    src = load_source(found, hints=_hints(tmp_path, input_hw=(H, W), output_names=["steer", "speed"]))
    assert src.output_names == ["steer", "speed"]


@torch.library.custom_op("rctest::wobble", mutates_args=(), schema="(Tensor x) -> Tensor")
def _wobble(x: Any) -> Any:
    return x * 2


@_wobble.register_fake
def _(x: Any) -> Any:
    return torch.empty_like(x)


class _CustomOpNet(torch.nn.Module):
    def forward(self, image: Any) -> Any:
        return _wobble(image).mean(dim=(2, 3))


def test_op_the_exporter_cannot_express_is_named(tmp_path: Path) -> None:
    (tmp_path / "art").mkdir()
    torch.export.save(torch.export.export(_CustomOpNet(), (torch.zeros(1, 3, H, W),)), str(tmp_path / "art" / "m.pt2"))
    src = load_source(find_model_file(tmp_path / "art"), hints=_hints(tmp_path))
    with pytest.raises(ExportError, match=r"cannot express op.*rctest.wobble"):
        src.onnx_path(18)  # type: ignore[attr-defined]


def test_onnx_file_is_a_source_with_onnxruntime_reference(tmp_path: Path) -> None:
    model = quick_pilot()
    save(model, "pt2", tmp_path / "t")
    exported = load_source(find_model_file(tmp_path / "t"), hints=_hints(tmp_path / "a", output_names=["xy"]))
    onnx_file = exported.onnx_path(18)  # type: ignore[attr-defined]
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "model.onnx").write_bytes(onnx_file.read_bytes())
    src = load_source(find_model_file(tmp_path / "art"), hints=_hints(tmp_path / "b"))
    assert (src.input_names, src.output_names, getattr(src, "default_layout", None)) == (["image"], ["xy"], "NCHW")
    x = nchw(frames())
    assert float(np.max(np.abs(src.predict({"image": x})["xy"] - torch_out(model, x)))) <= 1e-4


def test_corrupt_torch_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "model.pt2").write_bytes(b"not a zip")
    with pytest.raises(ModelLoadError, match=r"not a torch\.export archive"):
        load_source(find_model_file(tmp_path / "art"), hints=_hints(tmp_path))
