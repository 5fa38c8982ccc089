"""Small real shadow bundles (ONNX, schema 3) for the shadow tests: a candidate whose decisions are
far from the demo pilot's, with preprocessing of its own (another size, NCHW, BGR)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tests.runtime.perception_bundles import _finish, write_bundle

# Not the demo pilot's 160x120 NHWC RGB: the shadow must preprocess the frame itself.
WIDTH, HEIGHT, CROP_TOP = 80, 60, 10
CANDIDATE_PREPROCESS: dict[str, Any] = {"width": WIDTH, "height": HEIGHT, "crop_top": CROP_TOP, "color": "BGR", "scale": 1 / 255.0,
                        "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
STEER_BIAS, STEER_GAIN, THROTTLE = 0.6, 0.4, -0.4  # steering = bias + gain * mean(pixel); reverse throttle


def candidate_onnx(imu: bool = False) -> bytes:
    """(1, 3, H, W) -> ``steering`` = STEER_BIAS + STEER_GAIN * mean(x), ``throttle`` = THROTTLE (1, 1) each;
    with ``imu``, a second input ``imu`` (1, 6) that the throttle takes in times zero."""
    from onnx import TensorProto, helper, numpy_helper

    h, w = HEIGHT - CROP_TOP, WIDTH
    c = numpy_helper.from_array
    inits = [c(np.asarray(STEER_GAIN, np.float32), "gain"), c(np.asarray(STEER_BIAS, np.float32), "bias"),
             c(np.asarray(0.0, np.float32), "zero"), c(np.asarray(THROTTLE, np.float32), "thr"),
             c(np.asarray([1, 1], np.int64), "shape")]
    mk = helper.make_node
    nodes = [mk("ReduceMean", ["image"], ["m4"], axes=[1, 2, 3], keepdims=0), mk("Reshape", ["m4", "shape"], ["m"]),
             mk("Mul", ["m", "gain"], ["g"]), mk("Add", ["g", "bias"], ["steering"]),
             mk("Mul", ["m", "zero"], ["z"])]
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, h, w])]
    if imu:
        inputs.append(helper.make_tensor_value_info("imu", TensorProto.FLOAT, [1, 6]))
        nodes += [mk("ReduceMean", ["imu"], ["i"], axes=[1], keepdims=1), mk("Mul", ["i", "zero"], ["iz"]),
                  mk("Add", ["z", "iz"], ["z2"]), mk("Add", ["z2", "thr"], ["throttle"])]
    else:
        nodes.append(mk("Add", ["z", "thr"], ["throttle"]))
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1]) for n in ("steering", "throttle")]
    return _finish(nodes, inits, inputs, outs, "shadow_candidate")


def candidate_steering(frame_bgr: np.ndarray) -> float:
    """The candidate's steering for a frame, by hand (resize INTER_AREA, crop, BGR / 255, mean)."""
    import cv2

    img = cv2.resize(frame_bgr, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)[CROP_TOP:]
    return STEER_BIAS + STEER_GAIN * float(img.astype(np.float64).mean() / 255.0)


def _outputs() -> list[dict[str, Any]]:
    return [{"name": n, "shape": [1, 1], "meaning": n, "decode": {"kind": "scalar"}} for n in ("steering", "throttle")]


def candidate_bundle(root: Path, name: str = "candidate", imu: bool = False) -> Path:
    """The candidate bundle (see the module); with ``imu``, it also takes an IMU input."""
    h, w = HEIGHT - CROP_TOP, WIDTH
    image = {"name": "image", "role": "image", "shape": [1, 3, h, w], "dtype": "float32", "layout": "NCHW",
             "preprocess": CANDIDATE_PREPROCESS}
    inputs = [image] + ([{"name": "imu", "role": "imu", "shape": [1, 6], "dtype": "float32", "layout": "NC",
                          "order": ["ax", "ay", "az", "gx", "gy", "gz"]}] if imu else [])
    return write_bundle(root, name, candidate_onnx(imu), inputs, _outputs())
