"""Small perception models as real ONNX graphs (onnx.helper), run by ONNX Runtime through the
runtime's backend, whose outputs the tests control exactly, and their bundles' manifests.

- segmentation: logits (1, 3, H, W) = a fixed class layout (background | road | line | road |
  background, columns) with a margin of 1.0 between the winner and the others, plus a small term
  from the frame (< 0.01, so the argmax never depends on it) and, for a degraded copy, a constant
  that hands chosen pixels to another class: the pixels flipped are known exactly.
- boxes: boxes (1, K, 4) xyxy pixels, scores (1, K), labels (1, K) int64, padded with score 0, as the
  converter exports torchvision detectors; the boxes move with the frame's brightness (same move
  in every copy), so frames differ.
- yolo: a (1, 4 + C, N) head, a few objects each with several overlapping candidates for NMS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from converter.parity import run_build
from runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from runtime.manifest import (
    BuildEntry,
    InputSpec,
    Manifest,
    ModelInfo,
    OutputSpec,
    PreprocessSpec,
    TensorIO,
    sha256_file,
)

H, W = 24, 32
SEG_CLASSES = ["background", "road", "line"]
DET_CLASSES = ["background", "cone", "person"]
K = 8  # detections the boxes model pads to


def image_input() -> InputSpec:
    """The camera input every test model takes: (1, H, W, 3) NHWC float32."""
    return InputSpec("image", (1, H, W, 3), "float32", "NHWC", PreprocessSpec(W, H))


def frames(n: int, seed: int = 0) -> np.ndarray:
    """(n, H, W, 3) float32 preprocessed frames in [0, 1]."""
    return np.random.default_rng(seed).random((n, H, W, 3), dtype=np.float32)


def _save(tmp: Path, name: str, nodes: list[Any], inits: list[Any], outputs: list[Any]) -> Path:
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, H, W, 3])],
                              outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    path = tmp / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def _brightness(nodes: list[Any]) -> str:
    """Adds nodes computing the frame's mean as a (1, 1) tensor named ``bright``."""
    nodes.append(helper.make_node("ReduceMean", ["image"], ["bright4"], axes=[1, 2, 3], keepdims=1))
    nodes.append(helper.make_node("Reshape", ["bright4", "shape11"], ["bright"]))
    return "bright"


def seg_layout() -> np.ndarray:
    """(H, W) int class per pixel: background | road | line | road | background by columns."""
    lab = np.zeros((H, W), np.int64)
    lab[:, 8:24] = 1
    lab[:, 15:17] = 2
    return lab


def boundary_pixels() -> tuple[np.ndarray, np.ndarray]:
    """(M, 2) row, col of pixels with a 4-neighbour of another class, and (M,) that neighbour's class."""
    lab = seg_layout()
    out, other = [], []
    for r in range(H):
        for c in range(W):
            for dc in (-1, 1):
                if 0 <= c + dc < W and lab[r, c + dc] != lab[r, c]:
                    out.append((r, c))
                    other.append(int(lab[r, c + dc]))
                    break
    return np.array(out), np.array(other)


def flips(share: float, seed: int = 0) -> dict[tuple[int, int], int]:
    """``share`` of all pixels, chosen among the boundary pixels: {(row, col): the class it flips to}."""
    px, other = boundary_pixels()
    n = round(share * H * W)
    assert n <= len(px), f"only {len(px)} boundary pixels"
    pick = np.random.default_rng(seed).choice(len(px), n, replace=False)
    return {(int(px[i, 0]), int(px[i, 1])): int(other[i]) for i in pick}


def seg_model(tmp: Path, name: str = "seg", flip: dict[tuple[int, int], int] | None = None) -> Path:
    """The segmentation graph, ``flip``'s pixels handed to their new class (margin 1.0 -> -1.0)."""
    lab = seg_layout()
    base = np.zeros((1, 3, H, W), np.float32)
    for k in range(3):
        base[0, k][lab == k] = 1.0
    for (r, c), k in (flip or {}).items():
        base[0, k, r, c] = 2.0
    nodes: list[Any] = []
    bright = _brightness(nodes)
    inits = [numpy_helper.from_array(np.array([1, 1], np.int64), "shape11"),
             numpy_helper.from_array(np.array([0.005], np.float32), "gain"),
             numpy_helper.from_array(np.array([1, 1, 1, 1], np.int64), "shape1111"),
             numpy_helper.from_array(base, "base")]
    nodes += [helper.make_node("Mul", [bright, "gain"], ["b2"]),
              helper.make_node("Reshape", ["b2", "shape1111"], ["b4"]),
              helper.make_node("Add", ["base", "b4"], ["out"])]
    return _save(tmp, name, nodes, inits, [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, H, W])])


def seg_outputs() -> list[OutputSpec]:
    """The manifest's outputs of :func:`seg_model`: ``out`` means segmentation, road drivable."""
    return [OutputSpec("out", (1, 3, H, W), "segmentation",
                       {"kind": "segmentation", "layout": "NCHW", "classes": SEG_CLASSES, "drivable": ["road"],
                        "activation": "logits"})]


# The source detector's detections in pixels: box xyxy, score, class id; the rest of K are padding.
DETECTIONS: list[tuple[tuple[float, float, float, float], float, int]] = [
    ((2, 2, 10, 12), 0.95, 1), ((12, 4, 20, 14), 0.9, 2), ((22, 10, 30, 20), 0.8, 1), ((5, 14, 11, 22), 0.7, 2),
    ((14, 16, 19, 23), 0.53, 1),  # just above the 0.5 threshold: borderline
]


def boxes_model(tmp: Path, name: str = "det", detections: list[tuple[tuple[float, float, float, float], float, int]]
                | None = None, int_labels: bool = True) -> Path:
    """boxes (1, K, 4), scores (1, K), labels (1, K) int64 (float32 class ids without ``int_labels``);
    every box moves by 2 * the frame's mean."""
    dets = DETECTIONS if detections is None else detections
    boxes = np.zeros((1, K, 4), np.float32)
    scores = np.zeros((1, K), np.float32)
    labels = np.zeros((1, K), np.int64)
    for i, (b, s, c) in enumerate(dets):
        boxes[0, i], scores[0, i], labels[0, i] = b, s, c
    nodes: list[Any] = []
    bright = _brightness(nodes)
    inits = [numpy_helper.from_array(np.array([1, 1], np.int64), "shape11"),
             numpy_helper.from_array(np.array([2.0], np.float32), "two"),
             numpy_helper.from_array(np.array([1, 1, 1], np.int64), "shape111"),
             numpy_helper.from_array(boxes, "b0"), numpy_helper.from_array(scores, "s0"),
             numpy_helper.from_array(labels if int_labels else labels.astype(np.float32), "l0")]
    nodes += [helper.make_node("Mul", [bright, "two"], ["shift"]),
              helper.make_node("Reshape", ["shift", "shape111"], ["shift3"]),
              helper.make_node("Add", ["b0", "shift3"], ["boxes"]),
              helper.make_node("Identity", ["s0"], ["scores"]),
              helper.make_node("Identity", ["l0"], ["labels"])]
    outs = [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, K, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, K]),
            helper.make_tensor_value_info("labels", TensorProto.INT64 if int_labels else TensorProto.FLOAT, [1, K])]
    return _save(tmp, name, nodes, inits, outs)


def boxes_outputs(score_threshold: float = 0.5) -> list[OutputSpec]:
    """The manifest's outputs of :func:`boxes_model` (NMS in the graph, boxes in input pixels)."""
    return [OutputSpec("boxes", (1, K, 4), "detection",
                       {"kind": "boxes", "scores": "scores", "labels": "labels", "box_format": "xyxy",
                        "normalized": False, "input_size": [W, H], "classes": DET_CLASSES,
                        "score_threshold": score_threshold, "iou_threshold": 0.45, "nms": "graph"}),
            OutputSpec("scores", (1, K), "other"), OutputSpec("labels", (1, K), "other")]


YOLO_N = 32
YOLO_OBJECTS = [((8.0, 8.0, 8.0, 8.0), 0.9, 0), ((22.0, 14.0, 10.0, 8.0), 0.8, 1), ((16.0, 20.0, 6.0, 6.0), 0.7, 0)]


def yolo_model(tmp: Path, name: str = "yolo", objects: list[tuple[tuple[float, float, float, float], float, int]]
               | None = None, score_noise: float = 0.0) -> Path:
    """A (1, 4 + 2, YOLO_N) head (centre x, y, w, h in pixels, 2 class scores): each object as 3
    overlapping candidates (NMS keeps the best), the other candidates scoring 0.01."""
    objs = YOLO_OBJECTS if objects is None else objects
    head = np.zeros((1, 6, YOLO_N), np.float32)
    head[0, :4] = np.array([[4.0], [4.0], [2.0], [2.0]])
    head[0, 4:] = 0.01
    rng = np.random.default_rng(3)
    j = 0
    for (cx, cy, w, h), s, c in objs:
        for d, ds in ((0.0, 0.0), (0.6, -0.1), (-0.5, -0.2)):
            head[0, :4, j] = [cx + d, cy - d, w, h]
            head[0, 4 + c, j] = s + ds + (rng.uniform(-score_noise, score_noise) if score_noise else 0.0)
            j += 1
    nodes: list[Any] = []
    bright = _brightness(nodes)
    inits = [numpy_helper.from_array(np.array([1, 1], np.int64), "shape11"),
             numpy_helper.from_array(np.array([1, 1, 1], np.int64), "shape111"),
             numpy_helper.from_array(head, "h0"),
             numpy_helper.from_array(np.array([1, 1, 0, 0, 0, 0], np.float32).reshape(1, 6, 1), "xy_only")]
    nodes += [helper.make_node("Reshape", [bright, "shape111"], ["b3"]),
              helper.make_node("Mul", ["b3", "xy_only"], ["move"]),
              helper.make_node("Add", ["h0", "move"], ["output0"])]
    return _save(tmp, name, nodes, inits,
                 [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, YOLO_N])])


def yolo_outputs() -> list[OutputSpec]:
    """The manifest's output of :func:`yolo_model`."""
    return [OutputSpec("output0", (1, 6, YOLO_N), "detection",
                       {"kind": "yolo", "layout": "CN", "objectness": False, "input_size": [W, H],
                        "classes": ["cone", "person"], "score_threshold": 0.5, "iou_threshold": 0.45})]


def manifest(outputs: list[OutputSpec]) -> Manifest:
    """A bundle manifest for a model with :func:`image_input` and ``outputs`` (no builds yet)."""
    return Manifest(ModelInfo("perception", "1", None, "models:/perception/1", "pytorch"), [image_input()],
                    outputs, [], "", "0")


def entry(path: Path, m: Manifest, fmt: str = "onnx", precision: str = "fp32") -> BuildEntry:
    """The build entry of ONNX file ``path``: logical names = the graph's tensor names and dtypes."""
    model = onnx.load(str(path))
    dtypes = {v.name: helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name
              for v in [*model.graph.input, *model.graph.output]}
    io = {n: TensorIO(n, dtypes[n]) for n in ["image", *m.output_names()]}
    return BuildEntry(fmt, precision, path.name, sha256_file(path), path.stat().st_size, io)


def outputs_of(path: Path, m: Manifest, x: np.ndarray) -> dict[str, np.ndarray]:
    """{output: (N, values)} of the ONNX file at ``path`` on frames ``x``, batch 1 through ONNX Runtime."""
    with OnnxRuntimeBackend(path, entry(path, m), m) as backend:
        return run_build(backend, x)
