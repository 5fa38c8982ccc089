"""Small real perception bundles for the runtime's pilot and safety tests, without TensorFlow or torch.

Each is an ONNX model built with ``onnx.helper`` and run by ONNX Runtime, whose output is a fixed
function of the pixels, so what the car should do is known exactly:

- a *segmentation* model: road = grey pixels. Class ``road``'s logit is ``K * (T - spread)`` with
  ``spread`` = max - min over the RGB channels (0..1), ``background``'s is 0: on :func:`road_drive`'s
  look (grey asphalt and white lines on green grass under a blue sky) the drivable mask is the lane;
- a *detector*: one box around the orange pixels (R - B > 0.45), score 1 when there are any, else 0;
  boxes (1, 1, 4) xyxy in input pixels, scores (1, 1), labels (1, 1) = 1 (``cone``), the fixed-size
  outputs the converter gives torchvision-style detectors.

:func:`road_drive` renders the synthetic track (``converter/demo/track.py``) with that look and
returns the steering target of every frame; :func:`draw_cone` puts an orange cone on the ground.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

SEG_PREPROCESS: dict[str, Any] = {"width": 80, "height": 60, "crop_top": 16, "color": "RGB", "scale": 1 / 255.0,
                                  "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "model_rescales": False}
DET_PREPROCESS: dict[str, Any] = {**SEG_PREPROCESS, "crop_top": 10}
SPREAD_THRESHOLD, SPREAD_GAIN = 0.12, 50.0
ORANGE_THRESHOLD = 0.45
CONE_BGR = (0, 128, 255)
DET_CLASSES = ["background", "cone"]


def road_look() -> Any:
    """The synthetic track's look for these tests: grey road, white lines, green grass, blue sky."""
    from converter.demo.track import Appearance

    return Appearance(floor=(40.0, 140.0, 50.0), road=(100.0, 100.0, 100.0), line=(235.0, 235.0, 235.0),
                      sky=(230.0, 180.0, 120.0), center_line=True, horizon=0.30, tex_amp=0.05,
                      tex_freq=(1.0, 2.0, 3.0), tex_phase=(0.1, 0.2, 0.3), shadow_at=1.0, shadow_len=0.0,
                      gain=1.0, tilt=0.0, noise=3.0)


def road_drive(n: int, seed: int, width: int = 160, height: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """A continuous drive on the track with :func:`road_look`: (frames (N, H, W, 3) BGR uint8, the
    track's steering target per frame)."""
    from converter.demo.track import _render, drive_states, steering_target

    st = drive_states(n, seed)
    rng = np.random.default_rng([seed, 2])
    look = road_look()
    frames = np.stack([_render(st.curvature[i], st.offset[i], st.heading[i], look, rng, width, height,
                               dash_phase=st.distance[i]) for i in range(n)])
    return frames, np.asarray(steering_target(st.curvature, st.offset, st.heading), np.float64)


def draw_cone(frame: np.ndarray, z: float = 1.2, x: float = 0.0, height_m: float = 0.2,
              width_m: float = 0.16) -> np.ndarray:
    """A copy of ``frame`` with an orange cone standing on the ground ``z`` m ahead, ``x`` m right
    (the track's camera: 0.25 m high, focal 0.55 of the width, horizon 0.30 of the height)."""
    from converter.demo.track import CAMERA_HEIGHT, FOCAL_FRACTION

    h, w = frame.shape[:2]
    f, v_h = FOCAL_FRACTION * w, 0.30 * h
    v_base = v_h + f * CAMERA_HEIGHT / z
    u = w / 2 + f * x / z
    half, tall = f * width_m / z / 2, f * height_m / z
    out = frame.copy()
    pts = np.array([[u - half, v_base], [u + half, v_base], [u, v_base - tall]], np.int32)
    cv2.fillConvexPoly(out, pts, CONE_BGR)
    return out


def seg_mask(frame_bgr: np.ndarray) -> np.ndarray:
    """The segmentation model in numpy: the drivable mask (rows, cols) of the model input for one frame."""
    from runtime.manifest import PreprocessSpec
    from runtime.preprocess import preprocess_frame

    x = preprocess_frame(frame_bgr, PreprocessSpec.from_dict(SEG_PREPROCESS), "NCHW")[0]
    return SPREAD_GAIN * (SPREAD_THRESHOLD - (x.max(axis=0) - x.min(axis=0))) > 0


def _finish(nodes: list[Any], inits: list[Any], inputs: list[Any], outputs: list[Any], name: str) -> bytes:
    import onnx
    from onnx import helper

    model = helper.make_model(helper.make_graph(nodes, name, inputs, outputs, inits),
                              opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def seg_onnx() -> bytes:
    """(1, 3, H, W) RGB 0..1 -> ``seg`` (1, 2, H, W) logits (background, road)."""
    from onnx import TensorProto, helper, numpy_helper

    h, w = SEG_PREPROCESS["height"] - SEG_PREPROCESS["crop_top"], SEG_PREPROCESS["width"]
    c = numpy_helper.from_array
    inits = [c(np.asarray(SPREAD_GAIN, np.float32), "gain"), c(np.asarray(SPREAD_THRESHOLD, np.float32), "thr"),
             c(np.asarray(0.0, np.float32), "zero")]
    nodes = [helper.make_node("ReduceMax", ["image"], ["mx"], axes=[1], keepdims=1),
             helper.make_node("ReduceMin", ["image"], ["mn"], axes=[1], keepdims=1),
             helper.make_node("Sub", ["mx", "mn"], ["spread"]),
             helper.make_node("Sub", ["thr", "spread"], ["margin"]),
             helper.make_node("Mul", ["margin", "gain"], ["road"]),
             helper.make_node("Mul", ["spread", "zero"], ["background"]),
             helper.make_node("Concat", ["background", "road"], ["seg"], axis=1)]
    return _finish(nodes, inits, [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, h, w])],
                   [helper.make_tensor_value_info("seg", TensorProto.FLOAT, [1, 2, h, w])], "road_segmentation")


def det_onnx() -> bytes:
    """(1, 3, H, W) RGB 0..1 -> ``boxes`` (1, 1, 4) xyxy pixels, ``scores`` (1, 1), ``labels`` (1, 1)."""
    from onnx import TensorProto, helper, numpy_helper

    h, w = DET_PREPROCESS["height"] - DET_PREPROCESS["crop_top"], DET_PREPROCESS["width"]
    c = numpy_helper.from_array
    inits = [c(np.asarray(ORANGE_THRESHOLD, np.float32), "thr"), c(np.asarray([1, w], np.int64), "shape_w"),
             c(np.asarray([1, h], np.int64), "shape_h"), c(np.asarray([1], np.int64), "one"),
             c(np.asarray([1, 1, 4], np.int64), "shape_box"), c(np.asarray([[1.0]], np.float32), "cone_id")]
    mk = helper.make_node
    nodes = [mk("Split", ["image"], ["r", "g", "b"], axis=1),
             mk("Sub", ["r", "b"], ["rb"]), mk("Greater", ["rb", "thr"], ["hit"]), mk("Cast", ["hit"], ["m"], to=1),
             mk("ReduceMax", ["m"], ["cols3"], axes=[1, 2], keepdims=0), mk("Reshape", ["cols3", "shape_w"], ["cols"]),
             mk("ReduceMax", ["m"], ["rows3"], axes=[1, 3], keepdims=0), mk("Reshape", ["rows3", "shape_h"], ["rows"]),
             mk("ArgMax", ["cols"], ["x1"], axis=1, keepdims=1),
             mk("ArgMax", ["cols"], ["x2l"], axis=1, keepdims=1, select_last_index=1), mk("Add", ["x2l", "one"], ["x2"]),
             mk("ArgMax", ["rows"], ["y1"], axis=1, keepdims=1),
             mk("ArgMax", ["rows"], ["y2l"], axis=1, keepdims=1, select_last_index=1), mk("Add", ["y2l", "one"], ["y2"]),
             mk("Concat", ["x1", "y1", "x2", "y2"], ["xyxy"], axis=1), mk("Cast", ["xyxy"], ["xyxyf"], to=1),
             mk("Reshape", ["xyxyf", "shape_box"], ["boxes"]),
             mk("ReduceMax", ["cols"], ["scores"], axes=[1], keepdims=1),
             mk("Identity", ["cone_id"], ["labels"])]
    outs = [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 1, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1]),
            helper.make_tensor_value_info("labels", TensorProto.FLOAT, [1, 1])]
    return _finish(nodes, inits, [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, h, w])], outs,
                   "cone_detector")


def _image_input(pre: dict[str, Any]) -> dict[str, Any]:
    h, w = pre["height"] - pre["crop_top"], pre["width"]
    return {"name": "image", "role": "image", "shape": [1, 3, h, w], "dtype": "float32", "layout": "NCHW",
            "preprocess": pre}


def seg_outputs() -> list[dict[str, Any]]:
    """The segmentation bundle's manifest outputs."""
    h, w = SEG_PREPROCESS["height"] - SEG_PREPROCESS["crop_top"], SEG_PREPROCESS["width"]
    return [{"name": "seg", "shape": [1, 2, h, w], "meaning": "segmentation",
             "decode": {"kind": "segmentation", "layout": "NCHW", "classes": ["background", "road"],
                        "drivable": ["road"], "activation": "logits"}}]


def det_outputs(score_threshold: float = 0.5) -> list[dict[str, Any]]:
    """The detector bundle's manifest outputs (boxes carry the decode; scores, labels are ``other``)."""
    h, w = DET_PREPROCESS["height"] - DET_PREPROCESS["crop_top"], DET_PREPROCESS["width"]
    return [{"name": "boxes", "shape": [1, 1, 4], "meaning": "detection",
             "decode": {"kind": "boxes", "scores": "scores", "labels": "labels", "box_format": "xyxy",
                        "normalized": False, "input_size": [w, h], "classes": DET_CLASSES,
                        "score_threshold": score_threshold, "iou_threshold": 0.45, "nms": "graph"}},
            {"name": "scores", "shape": [1, 1], "meaning": "other", "decode": {"kind": "scalar"}},
            {"name": "labels", "shape": [1, 1], "meaning": "other", "decode": {"kind": "scalar"}}]


def write_bundle(root: Path, name: str, data: bytes, inputs: list[dict[str, Any]],
                 outputs: list[dict[str, Any]]) -> Path:
    """A schema-3 bundle with one ``onnx`` build; its directory."""
    bundle = root / name
    bundle.mkdir(parents=True)
    (bundle / "model.onnx").write_bytes(data)
    io = {n: {"name": n, "dtype": "float32"} for n in [i["name"] for i in inputs] + [o["name"] for o in outputs]}
    manifest = {
        "schema_version": 3, "converter_version": "test", "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "model": {"name": name, "version": "1", "run_id": None, "source_uri": "test://", "flavor": "onnx"},
        "inputs": inputs, "outputs": outputs,
        "builds": [{"format": "onnx", "precision": "fp32", "file": "model.onnx",
                    "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "io": io}],
        "source": {}, "not_built": [],
    }
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return bundle


def seg_bundle(root: Path, name: str = "road_seg") -> Path:
    """The segmentation bundle (see the module)."""
    return write_bundle(root, name, seg_onnx(), [_image_input(SEG_PREPROCESS)], seg_outputs())


def det_bundle(root: Path, name: str = "cone_det") -> Path:
    """The detector bundle (see the module)."""
    return write_bundle(root, name, det_onnx(), [_image_input(DET_PREPROCESS)], det_outputs())
