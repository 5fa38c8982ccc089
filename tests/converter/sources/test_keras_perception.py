"""Keras perception models as a team logs them, converted and put on the car.

Fixtures, all made here from the synthetic road (``converter.demo.perception_data``), 64x48 RGB
0..255 input with a leading ``Rescaling``, trained by ``model.fit`` for 2-3 s each:

- segmenters (3.5 k parameters): a MobileNetV3-ish encoder (ReLU convs, a depthwise
  conv, a squeeze-excite gate) and a bilinear-upsampling decoder with one skip, output ``mask``
  (1, 48, 64, 2) NHWC (Keras' layout), softmax or logits; 8 epochs on 256 frames (road IoU ~0.77
  held out). Logged with ``mlflow.keras.log_model`` (Keras 3 ``.keras``, softmax, with and without
  ``task_type``), ``mlflow.tensorflow.log_model`` (the logits one) and as a legacy ``tf_keras``
  ``.h5`` run artifact (softmax);
- one detector trunk (10 k parameters, stride 4: a 12x16 grid, one candidate per cell) trained 12
  epochs on 384 frames for a cone objectness and box, with two exported heads built from the same
  layers: SSD-like ``boxes`` (1, 192, 4) xyxy input pixels, ``scores`` (1, 192), ``classes``
  (1, 192) (TF/Keras' name for the class ids; all 1 = cone, 0 the background) logged with
  ``mlflow.keras.log_model``; and YOLO-style ``output0`` (1, 5, 192) (cx, cy, w, h, cone score)
  logged with ``mlflow.tensorflow.log_model``. Its box decoding is ``keras.ops`` in the functional
  graph (no Lambda, so ``safe_mode`` loads it). Weak (scores ~0.3 on a cone): the tests use
  ``--score-threshold 0.25``; what is judged is each build against the source. Too weak for the
  safety layer to stop for a cone (see the drive test).

The module fixture trains and logs everything once (~35 s here); each test then converts (5-40 s).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("keras", reason="keras is not installed (the tensorflow extra; see README)")

from converter.cli import main
from runtime.manifest import load_manifest
from tests.conftest import car_sim_process, checkout_env, python_module

pytestmark = pytest.mark.slow  # TensorFlow, MLflow logging and conversions

H, W = 48, 64
STRIDE = 4
GH, GW = H // STRIDE, W // STRIDE
K = GH * GW  # candidate boxes: one per grid cell
ROAD = "background,road"


def _rgb(frames_bgr: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(frames_bgr[..., ::-1]).astype(np.float32)


def segmenter(softmax: bool, keras: Any) -> Any:
    """The encoder-decoder segmenter (see the module), built with ``keras`` (Keras 3 or tf_keras)."""
    keras.utils.set_random_seed(0)
    layers = keras.layers
    inp = keras.Input((H, W, 3), name="image")
    x = layers.Rescaling(1 / 255.0, name="rescale")(inp)
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="stem")(x)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu", name="dw")(x)
    s = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="down")(x)
    g = layers.GlobalAveragePooling2D(keepdims=True, name="se_pool")(s)
    g = layers.Conv2D(16, 1, activation="hard_sigmoid", name="se_gate")(g)
    s = layers.Multiply(name="se")([s, g])
    u = layers.UpSampling2D(2, interpolation="bilinear", name="up1")(s)
    u = layers.Concatenate(name="skip")([u, x])
    u = layers.Conv2D(8, 3, padding="same", activation="relu", name="fuse")(u)
    u = layers.UpSampling2D(2, interpolation="bilinear", name="up2")(u)
    out = layers.Conv2D(2, 1, activation="softmax" if softmax else None, name="mask")(u)
    model = keras.Model(inp, out, name="road_seg")
    from converter.demo.perception_data import segmentation_samples

    frames, masks = segmentation_samples(256, 1, W, H)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=not softmax)
    model.compile(keras.optimizers.Adam(0.01), loss)
    model.fit(_rgb(frames), masks.astype("int32"), epochs=8, batch_size=32, verbose=0)
    return model


def _det_targets(boxes: np.ndarray) -> np.ndarray:
    """Per cell (objectness, x and y offset in the cell, log(w/16), log(h/16)); the cone's centre cell only."""
    t = np.zeros((len(boxes), GH, GW, 5), np.float32)
    for i, b in enumerate(boxes):
        if np.isnan(b[0]):
            continue
        cx, cy, w, h = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, max(b[2] - b[0], 1), max(b[3] - b[1], 1)
        gx, gy = min(int(cx // STRIDE), GW - 1), min(int(cy // STRIDE), GH - 1)
        t[i, gy, gx] = [1, cx / STRIDE - gx, cy / STRIDE - gy, np.log(w / 16), np.log(h / 16)]
    return t


def _det_loss(y: Any, p: Any) -> Any:
    import keras

    ops = keras.ops
    obj = y[..., 0]
    bce = keras.losses.binary_crossentropy(obj[..., None], p[..., :1], from_logits=True)
    off = (ops.sum(ops.abs(ops.sigmoid(p[..., 1:3]) - y[..., 1:3]), -1)
           + ops.sum(ops.abs(p[..., 3:5] - y[..., 3:5]), -1))
    return ops.mean(bce * (1 + 20 * obj)) + ops.sum(off * obj) / (ops.sum(obj) + 1)


def detectors() -> tuple[Any, Any]:
    """(SSD-like boxes/scores/classes model, YOLO-style output0 model) sharing one trained trunk."""
    import keras

    from converter.demo.perception_data import detection_samples

    keras.utils.set_random_seed(0)
    layers, ops = keras.layers, keras.ops
    inp = keras.Input((H, W, 3), name="image")
    x = layers.Rescaling(1 / 255.0, name="rescale")(inp)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="c1")(x)
    x = layers.Conv2D(24, 3, strides=2, padding="same", activation="relu", name="c2")(x)
    x = layers.Conv2D(24, 3, padding="same", activation="relu", name="c3")(x)
    head = layers.Conv2D(5, 1, name="head")(x)
    train = keras.Model(inp, head)
    frames, boxes = detection_samples(384, 2, W, H)
    train.compile(keras.optimizers.Adam(0.01), _det_loss)
    train.fit(_rgb(frames), _det_targets(boxes), epochs=12, batch_size=32, verbose=0)

    gx = np.tile(np.arange(GW, dtype=np.float32)[None, :], (GH, 1))
    gy = np.tile(np.arange(GH, dtype=np.float32)[:, None], (1, GW))
    cx = (ops.sigmoid(head[..., 1]) + gx) * STRIDE
    cy = (ops.sigmoid(head[..., 2]) + gy) * STRIDE
    w = ops.exp(ops.clip(head[..., 3], -4, 3)) * 16
    h = ops.exp(ops.clip(head[..., 4], -4, 3)) * 16
    score = ops.sigmoid(head[..., 0])
    xyxy = ops.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)
    ssd = keras.Model(inp, [layers.Reshape((K, 4), name="boxes")(xyxy), layers.Reshape((K,), name="scores")(score),
                            layers.Reshape((K,), name="classes")(ops.ones_like(score))], name="cone_ssd")
    rows = layers.Reshape((K, 5), name="flat")(ops.stack([cx, cy, w, h, score], axis=-1))
    yolo = keras.Model(inp, layers.Permute((2, 1), name="output0")(rows), name="cone_yolo")
    return ssd, yolo


def _log(root: Path, uri: str, name: str, model: Any, how: str, task: str | None) -> None:
    """Log and register ``model`` as version 1 of ``name``: ``how`` keras | tensorflow (the MLflow
    flavors) | h5 (a ``.h5`` file logged as the run's ``model/`` artifact, as pre-Keras-3 teams did)."""
    import mlflow

    from converter.demo.registration import tracking

    with tracking(uri):
        exp = mlflow.create_experiment(f"perception-{name}", artifact_location=(root / "art" / name).as_uri())
        with mlflow.start_run(experiment_id=exp) as run:
            if task:
                mlflow.log_param("task_type", task)
            if how == "h5":
                local = root / "upload" / name / "model.h5"
                local.parent.mkdir(parents=True)
                model.save(str(local))
                mlflow.log_artifact(str(local), artifact_path="model")
                client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
                client.create_registered_model(name)  # MLflow 3's register_model wants an MLmodel here
                client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
            else:
                getattr(mlflow, how).log_model(model, name="model", registered_model_name=name)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import keras
    import tf_keras

    from converter.demo.perception_data import detection_samples, obstacle_drive
    from converter.demo.track import write_image_folder, write_video

    root = tmp_path_factory.mktemp("keras-perception")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    soft = segmenter(True, keras)
    _log(root, uri, "road_seg", soft, "keras", "segmentation")
    _log(root, uri, "road_seg_untasked", soft, "keras", None)
    _log(root, uri, "road_seg_logits", segmenter(False, keras), "tensorflow", "segmentation")
    _log(root, uri, "road_seg_h5", segmenter(True, tf_keras), "h5", "segmentation")
    ssd, yolo = detectors()
    _log(root, uri, "cone_ssd", ssd, "keras", "detection")
    _log(root, uri, "cone_yolo", yolo, "tensorflow", "detection")
    write_image_folder(root / "cone_samples", detection_samples(64, 7, W, H)[0])
    write_image_folder(root / "calib_frames", detection_samples(200, 8)[0])
    drive = obstacle_drive(90, 11, appear=30, disappear=60)
    write_video(root / "drive.mp4", drive.frames)
    return {"root": root, "uri": uri, "builds": root / "builds", "drive": drive}


def convert(world: dict[str, Any], name: str, capfd: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str]:
    """``convert-model`` in process for version 1 of ``name``; (exit code, stdout + stderr)."""
    code = main(["--tracking-uri", world["uri"], "--name", name, "--version", "1", "--output", str(world["builds"]),
                 "--no-log", *flags])
    cap = capfd.readouterr()
    return code, cap.out + "\n" + cap.err


def _error_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, text[-3000:]
    return lines[0]


def _seg_figures(bundle: Path) -> dict[str, dict[str, float]]:
    m = load_manifest(bundle)
    return {b.format: b.parity["task"]["segmentation"] for b in m.builds}


def test_segmenter_from_mlflow_keras_every_format_judged_by_miou(world: dict[str, Any],
                                                                 capfd: pytest.CaptureFixture[str]) -> None:
    from calibration.cli import main as calibrate

    code, out = convert(world, "road_seg", capfd, "--formats", "onnx", "--classes", ROAD)
    assert code == 0, out[-3000:]
    bundle = world["builds"] / "road_seg" / "v1"
    calib = world["root"] / "calib-road"
    assert calibrate(["--bundle", str(bundle), "--out", str(calib), str(world["root"] / "calib_frames")]) == 0
    capfd.readouterr()
    formats = "onnx,onnx-fp16,tflite-fp32,tflite-fp16,onnx-int8,tflite-int8"
    code, out = convert(world, "road_seg", capfd, "--formats", formats, "--classes", ROAD, "--calibration", str(calib))
    assert code == 0, out[-3000:]
    m = load_manifest(bundle)
    assert m.task == "segmentation" and m.schema_version == 3
    (seg,) = [o for o in m.outputs if o.meaning == "segmentation"]
    assert seg.name == "mask" and seg.decode["layout"] == "NHWC" and seg.decode["activation"] == "softmax"
    assert seg.decode["classes"] == ["background", "road"] and seg.decode["drivable"] == ["road"]
    figures = _seg_figures(bundle)
    assert set(figures) == set(formats.split(",")), figures
    for fmt, f in figures.items():
        assert f["miou_segmentation"] >= (0.9 if "int8" in fmt else 0.97), (fmt, f)
    cost = m.build("onnx-int8").extra["int8_cost"]["task"]["segmentation"]
    assert cost["frames"] >= 20 and cost["miou_segmentation"] >= 0.9, cost


@pytest.mark.parametrize(("name", "activation"), [("road_seg_logits", "logits"), ("road_seg_h5", "softmax")],
                         ids=["logits-mlflow-tensorflow", "legacy-tf-keras-h5"])
def test_segmenter_logged_another_way(world: dict[str, Any], capfd: pytest.CaptureFixture[str], name: str,
                                      activation: str) -> None:
    code, out = convert(world, name, capfd, "--formats", "onnx,tflite-fp32", "--classes", ROAD)
    assert code == 0, out[-3000:]
    bundle = world["builds"] / name / "v1"
    (seg,) = [o for o in load_manifest(bundle).outputs if o.meaning == "segmentation"]
    assert seg.decode["layout"] == "NHWC" and seg.decode["activation"] == activation
    assert all(f["miou_segmentation"] >= 0.995 for f in _seg_figures(bundle).values())


def test_without_task_type_the_map_needs_its_classes(world: dict[str, Any], capfd: pytest.CaptureFixture[str]) -> None:
    code, out = convert(world, "road_seg_untasked", capfd, "--formats", "onnx")
    line = _error_line(out)
    assert code == 2 and "segmentation" in line and "--classes" in line, line
    assert not (world["builds"] / "road_seg_untasked").exists()
    code, out = convert(world, "road_seg_untasked", capfd, "--formats", "onnx", "--classes", ROAD)
    assert code == 0, out[-3000:]  # two names fit the map's last axis only: NHWC, a segmentation map
    (seg,) = [o for o in load_manifest(world["builds"] / "road_seg_untasked" / "v1").outputs
              if o.meaning == "segmentation"]
    assert seg.decode["layout"] == "NHWC"


def _det_figures(bundle: Path) -> dict[str, dict[str, float]]:
    return {b.format: b.parity["task"]["detection"] for b in load_manifest(bundle).builds}


def test_ssd_like_detector_with_a_classes_output(world: dict[str, Any], capfd: pytest.CaptureFixture[str]) -> None:
    code, out = convert(world, "cone_ssd", capfd, "--formats", "onnx,onnx-fp16,tflite-fp32,tflite-fp16",
                        "--classes", "background,cone", "--score-threshold", "0.25",
                        "--samples", str(world["root"] / "cone_samples"))
    assert code == 0, out[-3000:]
    m = load_manifest(world["builds"] / "cone_ssd" / "v1")
    assert m.task == "detection"
    (det,) = [o for o in m.outputs if o.meaning == "detection"]
    assert det.name == "boxes" and det.decode["kind"] == "boxes" and det.decode["labels"] == "classes"
    for fmt, f in _det_figures(world["builds"] / "cone_ssd" / "v1").items():
        assert f["source_detections"] >= 10 and f["f1_50_detection"] >= 0.95, (fmt, f)


def test_yolo_style_head(world: dict[str, Any], capfd: pytest.CaptureFixture[str]) -> None:
    code, out = convert(world, "cone_yolo", capfd, "--formats", "onnx,tflite-fp32", "--classes", "cone",
                        "--score-threshold", "0.25", "--samples", str(world["root"] / "cone_samples"))
    assert code == 0, out[-3000:]
    m = load_manifest(world["builds"] / "cone_yolo" / "v1")
    (det,) = [o for o in m.outputs if o.meaning == "detection"]
    assert det.decode["kind"] == "yolo" and det.decode["layout"] == "CN" and det.decode["objectness"] is False
    for fmt, f in _det_figures(world["builds"] / "cone_yolo" / "v1").items():
        assert f["source_detections"] >= 10 and f["f1_50_detection"] >= 0.95, (fmt, f)


def test_the_runtime_drives_by_the_keras_segmenter_with_the_keras_detector_as_safety(
        world: dict[str, Any], capfd: pytest.CaptureFixture[str]) -> None:
    from runtime.recording import read_recording

    seg, det = world["builds"] / "road_seg" / "v1", world["builds"] / "cone_ssd" / "v1"
    for name, bundle, flags in (("road_seg", seg, ("--classes", ROAD)),
                                ("cone_ssd", det, ("--classes", "background,cone", "--score-threshold", "0.25"))):
        if not (bundle / "manifest.json").exists():  # the test run alone
            code, out = convert(world, name, capfd, "--formats", "onnx", *flags)
            assert code == 0, out[-3000:]
    root = world["root"]
    link, log, rec = root / "rc-car", root / "car.jsonl", root / "rec"
    with car_sim_process(link, log):
        r = subprocess.run(python_module("runtime.cli", "--bundle", str(seg), "--format", "onnx", "--safety", str(det),
                                         "--camera", f"file://{root / 'drive.mp4'}?realtime=1", "--serial", str(link),
                                         "--record", str(rec)),
                           env=checkout_env(), capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, r.stderr[-2000:]
    _, records = read_recording(rec)
    rows = list(records)
    assert len(rows) > 20
    drive = world["drive"]
    idx = np.array([row["source_index"] for row in rows])
    sent = np.array([row["sent"] for row in rows])
    cone, clear = drive.present[idx], ~drive.present[idx]
    # The lane follower steers by the Keras mask: the track's pure-pursuit target on the frames it drove.
    assert all(row["pilot"] and row["pilot"]["centreline"] for row in rows if row["sent"])
    err = np.abs(np.array([row["steering"] for row in rows])[sent] - drive.steering[idx[sent]])
    assert sent[clear].mean() > 0.8 and float(np.mean(err)) < 0.12, (sent[clear].mean(), float(np.mean(err)))
    # The Keras detector runs as the safety layer on the same frames, its detections decoded by kind.
    verdicts = [row["safety"] for row in rows]
    assert all(v is not None and v["error"] is None for v in verdicts[5:]), verdicts[:10]
    # Too weak to stop for the drive's cone (scores ~0.25 < the layer's minimum): stopping is shown with the
    # PyTorch detector in tests/converter/test_perception_e2e.py; here, that a Keras detector is accepted.
    held = np.array([row.get("held") == "blocked" for row in rows])
    print("keras drive: sent on clear", sent[clear].mean(), "steering error", float(np.mean(err)),
          "blocked on cone frames", held[cone].mean(), "on clear", held[clear].mean())
