"""Which builds the perception fixtures' ops allow, each run by its real runtime against the FP32 ONNX:

- a YOLOv8-layout ONNX (``output0`` (1, 4 + K, N)) loads as an ONNX source; onnx-fp16, onnx-int8 and
  TFLite FP32/FP16/INT8 (onnx2tf) build; onnx-int8 keeps its class scores (they share one tensor
  with pixel boxes: the output's Concat stays float); tflite-int8's int8 output does not (one scale);
- a segmenter's TFLite builds (Resize, Hardswish, Hardsigmoid) keep the ONNX's (1, K, H, W) layout;
- a detector with its post-processing in the graph gets no TFLite build, with a one-line reason.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch is not installed (the torch extra; see README)")
if importlib.util.find_spec("onnx2tf") is None:  # looked up, never imported (see test_onnx_tf)
    pytest.skip("onnx2tf is not installed (the torch extra; see README)", allow_module_level=True)

import torch

from converter.builders.base import BuildError
from converter.sources import FoundModel, SourceHints, load_source
from tests.converter import perception_models as pm
from tests.converter.sources import perception_builds as pb


def _yolo(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray], dict[str, np.ndarray]]:
    path = pm.yolo_onnx(tmp_path / "yolo" / "model.onnx")
    return path, {"images": pm.images(8, pm.YOLO_HW, seed=5)}, {"images": pm.images(16, pm.YOLO_HW, seed=6)}


def test_yolo_onnx_loads_and_its_onnx_builds_run(tmp_path: Path) -> None:
    path, feeds, cal = _yolo(tmp_path)
    src = load_source(FoundModel(path, "onnx"), hints=SourceHints(workdir=tmp_path / "w"))
    n = sum((pm.YOLO_HW[0] // s) * (pm.YOLO_HW[1] // s) for s in (8, 16, 32))
    assert src.input_shapes == {"images": (1, 3, *pm.YOLO_HW)} and src.output_names == ["output0"]
    ref = src.predict(feeds)
    assert ref["output0"].shape == (8, 4 + 3, n)
    fixed = src.onnx_path(17)  # type: ignore[attr-defined]
    fp16 = pb.run_onnx(pb.onnx_fp16(fixed, tmp_path / "f16.onnx"), feeds)["output0"]
    i8 = pb.run_onnx(pb.onnx_int8(fixed, tmp_path / "i8.onnx", cal), feeds)["output0"]
    scale = np.array(pm.YOLO_HW[::-1] * 2, np.float32)[None, :, None]  # boxes relative to the image
    assert np.max(np.abs(fp16[:, :4] - ref["output0"][:, :4]) / scale) < 1e-3
    assert np.max(np.abs(fp16[:, 4:] - ref["output0"][:, 4:])) < 1e-2
    assert np.max(np.abs(i8[:, :4] - ref["output0"][:, :4]) / scale) < 0.03
    assert np.max(np.abs(i8[:, 4:] - ref["output0"][:, 4:])) < 0.05  # scores not flattened to int8 pixel steps


@pytest.mark.slow  # onnx2tf in a child process: ~15-25 s
def test_yolo_tflite_builds_keep_the_head_layout_and_scores(tmp_path: Path) -> None:
    path, feeds, cal = _yolo(tmp_path)
    ref = pb.run_onnx(path, feeds)["output0"]
    scale = np.array(pm.YOLO_HW[::-1] * 2, np.float32)[None, :, None]
    for mode, box_tol, score_tol in (("fp32", 1e-5, 1e-5), ("fp16", 1e-3, 1e-2)):
        got = pb.run_tflite(pb.tflite(path, tmp_path / f"{mode}.tflite", mode, cal), feeds)["output0"]
        assert got.shape == ref.shape, mode  # (1, 4 + K, N), not onnx2tf's (1, N, 4 + K)
        assert np.max(np.abs(got[:, :4] - ref[:, :4]) / scale) < box_tol, mode
        assert np.max(np.abs(got[:, 4:] - ref[:, 4:])) < score_tol, mode
    # tflite-int8 builds, in the head's layout, but its int8 output has ONE scale for pixel boxes and
    # 0..1 scores (0.48 here: scores keep 3 levels); measured, not fixed (see the report of issue 19).
    i8 = tmp_path / "int8.tflite"
    assert pb.run_tflite(pb.tflite(path, i8, "int8", cal), feeds)["output0"].shape == ref.shape


@pytest.mark.slow  # torch.onnx.export + onnx2tf: ~30 s
def test_segmenter_tflite_builds_keep_nchw_logits(tmp_path: Path) -> None:
    model = pm.tiny_segmenter(classes=3)
    torch.save(model, tmp_path / "model.pth")
    src = load_source(FoundModel(tmp_path / "model.pth", "torch"), hints=SourceHints(input_hw=pm.SEG_HW, workdir=tmp_path / "w"))
    onnx_path = src.onnx_path(18)  # type: ignore[attr-defined]
    feeds, cal = {"image": pm.images(6, pm.SEG_HW, seed=2)}, {"image": pm.images(16, pm.SEG_HW, seed=3)}
    ref = src.predict(feeds)["out"]
    for mode, tol, agree in (("fp32", 1e-4, 1.0), ("fp16", 1e-2, 0.99), ("int8", 0.1, 0.95)):
        got = pb.run_tflite(pb.tflite(onnx_path, tmp_path / f"{mode}.tflite", mode, cal), feeds)["out"]
        assert got.shape == ref.shape == (6, 3, *pm.SEG_HW), (mode, got.shape)
        assert float(np.max(np.abs(got - ref))) < tol, mode
        assert pb.pixel_agreement(got, ref) >= agree, mode
    i8 = pb.run_onnx(pb.onnx_int8(onnx_path, tmp_path / "i8.onnx", cal), feeds)["out"]
    assert pb.pixel_agreement(i8, ref) >= 0.95


@pytest.mark.slow  # torch.onnx.export + onnx2tf: ~30 s
def test_detector_with_its_postprocessing_gets_no_tflite_with_a_one_line_reason(tmp_path: Path) -> None:
    torch.save(pm.tiny_detector(), tmp_path / "model.pth")
    src = load_source(FoundModel(tmp_path / "model.pth", "torch"), hints=SourceHints(input_hw=pm.DET_HW, workdir=tmp_path / "w"))
    with pytest.raises(BuildError) as e:
        pb.tflite(src.onnx_path(18), tmp_path / "d.tflite", "fp32")  # type: ignore[attr-defined]
    msg = str(e.value)
    assert "data-dependent post-processing" in msg and "onnx-int8" in msg and "ONNX node" in msg, msg
    assert "\n" not in msg
