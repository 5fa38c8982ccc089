"""Perception models as teams save them load through the real ``load_source`` and export to an ONNX
that ONNX Runtime runs to within float error of PyTorch's own outputs:

- segmentation (torchvision's ``{"out": (N, K, H, W)}``, LRASPP and DeepLabV3-style heads, with
  Hardswish, Hardsigmoid and bilinear Resize) from a pickle, a ``torch.export`` program and a state
  dict + ``--model-class``;
- detectors returning torchvision's list of dicts (n data-dependent), wrapped to fixed-size boxes
  (1, K, 4), scores (1, K), labels (1, K), with the wrapper's own outputs as the reference; a
  detector returning tensors (dict or tuple); one whose ``forward`` loops over its boxes is refused
  naming the line and the fix.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch is not installed (the torch extra; see README)")

import torch

from converter.errors import ModelLoadError
from converter.sources import FoundModel, SourceHints, load_source
from converter.sources.torch_source import ExportError
from tests.conftest import checkout_env
from tests.converter import perception_models as pm
from tests.converter.sources import perception_builds as pb

EXPORT_TOL = 1e-4  # FP32 ONNX vs PyTorch, max abs (logits of order 1, box pixels of order 10)


def _save(model: Any, kind: str, dest: Path, hw: tuple[int, int]) -> FoundModel:
    dest.mkdir(parents=True, exist_ok=True)
    if kind == "pt2":
        path = dest / "model.pt2"
        torch.export.save(torch.export.export(model, (torch.zeros(1, 3, *hw),)), str(path))
        return FoundModel(path, "pt2")
    if kind == "pickle":
        path = dest / "model.pth"
        torch.save(model, str(path))
    else:
        path = dest / "weights.pth"
        torch.save(model.state_dict(), str(path))
    return FoundModel(path, "torch")


def _torch(model: Any, x: np.ndarray) -> Any:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(x))


@pytest.mark.slow  # torch.onnx.export (dynamo) takes 5-20 s per model here
@pytest.mark.parametrize("kind", ["pickle", "pt2", "state-dict"])
def test_segmenter_loads_and_its_onnx_matches_torch(kind: str, tmp_path: Path) -> None:
    model = pm.tiny_segmenter(classes=3, aux=True)
    found = _save(model, kind, tmp_path / "m", pm.SEG_HW)
    hints = SourceHints(model_class="tests.converter.perception_models:TinySegmenter" if kind == "state-dict" else None,
                        input_hw=pm.SEG_HW, workdir=tmp_path / "w")
    if kind == "state-dict":  # the factory's defaults are 2 classes, no aux: the state dict must not fit
        with pytest.raises(ModelLoadError, match="does not fit --model-class"):
            load_source(found, hints=hints)
        model = pm.tiny_segmenter()
        found = _save(model, kind, tmp_path / "m2", pm.SEG_HW)
    src = load_source(found, hints=hints)
    want_outputs = ["out", "aux"] if kind != "state-dict" else ["out"]
    assert src.output_names == want_outputs and src.input_shapes == {"image": (1, 3, *pm.SEG_HW)}
    x = pm.images(4, pm.SEG_HW)
    ref = src.predict({"image": x})
    direct = _torch(model, x)
    assert ref["out"].shape == (4, 3 if kind != "state-dict" else 2, *pm.SEG_HW)
    assert pb.max_abs(ref, {k: v.numpy() for k, v in direct.items()})["out"] < 1e-6
    onnx_path = src.onnx_path(18)  # type: ignore[attr-defined]  # TorchSource
    got = pb.run_onnx(onnx_path, {"image": x})
    assert sorted(got) == sorted(want_outputs)
    assert max(pb.max_abs(got, ref).values()) < EXPORT_TOL
    import onnx

    ops = {n.op_type for n in onnx.load(str(onnx_path)).graph.node}
    assert {"Resize", "HardSwish", "HardSigmoid"} <= ops  # the usual trouble spots really are in the graph


@pytest.mark.slow  # torch.onnx.export (dynamo) takes 5-20 s per model here
def test_deeplab_head_exports(tmp_path: Path) -> None:
    model = pm.tiny_segmenter(head="deeplab")
    src = load_source(_save(model, "pickle", tmp_path / "m", pm.SEG_HW), hints=SourceHints(input_hw=pm.SEG_HW,
                                                                                           workdir=tmp_path / "w"))
    x = pm.images(3, pm.SEG_HW, seed=1)
    got = pb.run_onnx(src.onnx_path(18), {"image": x})  # type: ignore[attr-defined]
    assert pb.max_abs(got, {"out": _torch(model, x)["out"].numpy()})["out"] < EXPORT_TOL


def _frames_with_counts(model: Any, want_zero: bool = True) -> tuple[np.ndarray, list[int]]:
    """Images for which the detector finds a varying number of boxes, one of them none."""
    x = pm.images(12, pm.DET_HW, seed=1)
    counts = [len(d["boxes"]) for d in _torch(model, x)]
    assert len(set(counts)) > 2 and (0 in counts or not want_zero), counts
    return x, counts


@pytest.mark.slow  # torch.onnx.export (dynamo) takes 5-20 s per model here
@pytest.mark.parametrize("kind", ["pickle", "pt2"])
def test_list_of_dicts_detector_is_wrapped_to_fixed_size(kind: str, tmp_path: Path) -> None:
    model = pm.tiny_detector()
    x, counts = _frames_with_counts(model)
    src = load_source(_save(model, kind, tmp_path / "m", pm.DET_HW),
                      hints=SourceHints(input_hw=pm.DET_HW, workdir=tmp_path / "w", max_detections=16))
    assert src.output_names == ["boxes", "scores", "labels"]
    ref = src.predict({"images": x})
    assert ref["boxes"].shape == (12, 16, 4) and ref["scores"].shape == (12, 16) and ref["labels"].shape == (12, 16)
    for i, d in enumerate(_torch(model, x)):  # the model's own detections first, then zeros
        n = counts[i]
        assert np.allclose(ref["boxes"][i, :n], d["boxes"].numpy()) and np.allclose(ref["scores"][i, :n], d["scores"].numpy())
        assert np.array_equal(ref["labels"][i, :n], d["labels"].numpy().astype(np.float32))
        assert not ref["scores"][i, n:].any() and not ref["boxes"][i, n:].any()
    got = pb.run_onnx(src.onnx_path(18), {"images": x})  # type: ignore[attr-defined]
    assert max(pb.max_abs(got, ref).values()) < EXPORT_TOL  # every count, 0 included, from one export
    assert "FixedDetections(max_detections=16)" in src.toolchain()["wrapper"]  # type: ignore[attr-defined]


@pytest.mark.slow  # torch.onnx.export (dynamo) takes 5-20 s per model here
def test_detector_returning_tensors(tmp_path: Path) -> None:
    as_dict = pm.tiny_detector(returns="dict")
    src = load_source(_save(as_dict, "pickle", tmp_path / "d", pm.DET_HW),
                      hints=SourceHints(input_hw=pm.DET_HW, workdir=tmp_path / "wd"))
    assert src.output_names == ["boxes", "scores", "labels"]
    x, _ = _frames_with_counts(pm.tiny_detector())
    got = pb.run_onnx(src.onnx_path(18), {"images": x})  # type: ignore[attr-defined]
    assert got["boxes"].shape == (12, 10, 4)
    assert max(pb.max_abs(got, src.predict({"images": x})).values()) < EXPORT_TOL
    # A tuple whose labels are float cannot say which of its (1, K) tensors is the scores: named by --outputs.
    as_tuple = pm.tiny_detector(returns="tuple")
    found = _save(as_tuple, "pickle", tmp_path / "t", pm.DET_HW)
    with pytest.raises(ModelLoadError, match="3 unnamed tensors; name them in order with --outputs"):
        load_source(found, hints=SourceHints(input_hw=pm.DET_HW, workdir=tmp_path / "wt"))
    named = load_source(found, hints=SourceHints(input_hw=pm.DET_HW, workdir=tmp_path / "wt",
                                                 output_names=["boxes", "scores", "labels"]))
    assert named.output_names == ["boxes", "scores", "labels"]


class IntLabelsDetector(torch.nn.Module):
    """Batched fixed-size detections with int64 labels, labels first: named by their shapes and dtypes."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = pm.tiny_detector(returns="tuple")

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(1, 3, H, W) -> labels (1, K) int64, boxes (1, K, 4), scores (1, K)."""
        b, s, lab = self.inner(images)
        return lab.to(torch.int64), b, s


def test_int64_labels_are_named_and_cast_to_float(tmp_path: Path) -> None:
    src = load_source(_save(IntLabelsDetector().eval(), "pickle", tmp_path / "m", pm.DET_HW),
                      hints=SourceHints(input_hw=pm.DET_HW, workdir=tmp_path / "w"))
    assert src.output_names == ["labels", "boxes", "scores"]
    got = pb.run_onnx(src.onnx_path(18), {"images": pm.images(2, pm.DET_HW, seed=1)})  # type: ignore[attr-defined]
    import onnxruntime as ort

    sess = ort.InferenceSession(str(src.onnx_path(18)), providers=["CPUExecutionProvider"])  # type: ignore[attr-defined]
    assert {o.name: o.type for o in sess.get_outputs()} == dict.fromkeys(["labels", "boxes", "scores"], "tensor(float)")
    assert got["labels"].max() >= 1


class LoopNmsDetector(pm.TinyDetector):
    """A detector whose NMS is a Python loop over the boxes found (greedy NMS written by hand)."""

    def _postprocess(self, boxes: torch.Tensor, probs: torch.Tensor) -> dict[str, torch.Tensor]:
        scores, idx = probs.max(-1)
        keep = scores > self.score_threshold
        boxes, scores, labels = boxes[keep], scores[keep], idx[keep] + 1
        kept: list[int] = []
        order = list(range(boxes.shape[0]))
        while order:  # data-dependent: the number of boxes decides how often this runs
            i = order.pop(0)
            kept.append(i)
            order = [j for j in order if pm.fast_nms(boxes[[i, j]], scores[[i, j]], labels[[i, j]], 0.5)[1]]
        sel = torch.tensor(kept, dtype=torch.int64)
        return {"boxes": boxes[sel], "scores": scores[sel], "labels": labels[sel]}


def test_a_loop_over_the_boxes_is_refused_naming_the_line(tmp_path: Path) -> None:
    model = LoopNmsDetector(3)
    model.load_state_dict(pm.tiny_detector().state_dict())
    model.eval()
    src = load_source(_save(model, "pickle", tmp_path / "m", pm.DET_HW),
                      hints=SourceHints(input_hw=pm.DET_HW, workdir=tmp_path / "w"))
    with pytest.raises(ExportError) as e:
        src.onnx_path(18)  # type: ignore[attr-defined]
    msg = str(e.value)
    assert "data-dependent" in msg and "test_perception_torch.py" in msg and "nms: runtime" in msg, msg
    assert "\n" not in msg


class Masks(torch.nn.Module):
    """A list of dicts that are not detections."""

    def forward(self, image: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """(N, 3, H, W) -> [{"masks": (N, 1, H, W)}]."""
        return [{"masks": image[:, :1]}]


def test_a_list_that_is_not_detections_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as e:
        load_source(_save(Masks(), "pickle", tmp_path / "m", pm.DET_HW), hints=SourceHints(input_hw=pm.DET_HW))
    assert "list of 1 dict (keys masks)" in str(e.value) and "boxes (n, 4)" in str(e.value)


_INT8_ZERO_DETECTIONS = """
import sys
import numpy as np
from pathlib import Path
from tests.converter import perception_models as pm
from tests.converter.sources import perception_builds as pb
src, out = Path(sys.argv[1]), Path(sys.argv[2])
pb.onnx_int8(src, out, {"images": pm.images(16, pm.DET_HW, seed=6)})
got = pb.run_onnx(out, {"images": np.load(sys.argv[3])})
print("ran", got["scores"].shape)
"""


@pytest.mark.slow  # torch.onnx.export (dynamo) takes 5-20 s per model here
def test_onnx_int8_detector_runs_on_a_frame_without_detections(tmp_path: Path) -> None:
    """The quantized post-processing used to crash ONNX Runtime (segfault) at n = 0; in a child, so a
    crash fails this test instead of the session."""
    model = pm.tiny_detector()
    x, _ = _frames_with_counts(model)
    src = load_source(_save(model, "pickle", tmp_path / "m", pm.DET_HW),
                      hints=SourceHints(input_hw=pm.DET_HW, workdir=tmp_path / "w"))
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run([sys.executable, "-c", _INT8_ZERO_DETECTIONS, str(src.onnx_path(18)),  # type: ignore[attr-defined]
                           str(tmp_path / "i8.onnx"), str(tmp_path / "x.npy")],
                          capture_output=True, text=True, env=checkout_env(), timeout=120, check=False)
    assert proc.returncode == 0 and "ran (12, 100)" in proc.stdout, (proc.returncode, proc.stderr[-2000:])
    import onnx

    from converter.builders.onnx_int8 import float_tail

    assert any(n.op_type == "NonZero" for n in onnx.load(str(src.onnx_path(18))).graph.node)  # type: ignore[attr-defined]
    assert float_tail(onnx.load(str(src.onnx_path(18))))  # type: ignore[attr-defined]
