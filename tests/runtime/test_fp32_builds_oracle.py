"""Each FP32 build of the demo bundle against the source model's outputs, by code other than
``converter.parity`` and the runtime's backends: ONNX Runtime and LiteRT called directly, inputs
from the hand-written preprocessing (``helpers.hand_preprocess``), outputs matched by name through
the TFLite signature / ONNX output names. The expected values are the source model's outputs the
converter stored in ``reference.npz`` (``out/<name>``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtime.manifest import load_manifest
from tests.runtime.helpers import hand_preprocess

FP32_TOL = 1e-4  # FP32 re-implementations of the same graph: float reassociation only


def run_onnx(path: Path, feed_name: str, x: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {feed_name: x}), strict=True))


def run_tflite(path: Path, feed_name: str, x: np.ndarray) -> dict[str, np.ndarray]:
    lite = pytest.importorskip("ai_edge_litert.interpreter", reason="LiteRT (ai-edge-litert) is not installed")
    runner = lite.Interpreter(str(path)).get_signature_runner()
    return {k: np.asarray(v) for k, v in runner(**{feed_name: x}).items()}


@pytest.mark.parametrize("fmt", ["onnx", "tflite-fp32"])
def test_fp32_build_matches_the_source_model(bundle: Path, fmt: str) -> None:
    manifest = load_manifest(bundle)
    if not manifest.has(fmt):
        pytest.skip(f"the bundle has no {fmt} build")
    build = manifest.build(fmt)
    image = manifest.camera_input
    assert image is not None and image.preprocess is not None and len(manifest.inputs) == 1
    ref = np.load(bundle / "reference.npz")
    frames = ref["frames_bgr"]
    run = run_onnx if fmt == "onnx" else run_tflite
    feed = build.io[image.name].name
    worst = {o.name: 0.0 for o in manifest.outputs}
    for i, frame in enumerate(frames):
        y = run(bundle / build.file, feed, hand_preprocess(frame, image.preprocess, image.layout))
        for o in manifest.outputs:
            got = y[build.io[o.name].name].reshape(-1)
            want = ref[f"out/{o.name}"][i].reshape(-1)
            worst[o.name] = max(worst[o.name], float(np.max(np.abs(got.astype(np.float64) - want))))
    assert len(frames) >= 16
    assert all(v <= FP32_TOL for v in worst.values()), worst
    # Not vacuous: the outputs move across the reference frames.
    assert all(float(np.ptp(ref[f"out/{o.name}"])) > 10 * FP32_TOL for o in manifest.outputs)
