"""The demo pilot: shapes and names the converter relies on, and that training really learns."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from converter.demo import DEMO_PREPROCESS, DEMO_PREPROCESS_RAW
from converter.demo.model import (
    build_lambda_pilot,
    build_pilot,
    build_pilot_rescaling,
    build_steering_only,
    build_variant,
)
from converter.demo.track import generate_dataset
from converter.demo.train import train_pilot
from runtime.preprocess import preprocess_batch


def test_pilot_io_names_order_and_size() -> None:
    m = build_pilot()
    assert m.output_names == ["steering", "throttle"]
    assert m.inputs[0].name == "image" and tuple(m.inputs[0].shape) == (None, 120, 160, 3)
    assert 300_000 <= m.count_params() <= 1_000_000
    assert build_pilot(outputs=("throttle", "steering")).output_names == ["throttle", "steering"]
    assert build_steering_only().output_names == ["steering"]
    x = np.random.default_rng(0).random((2, 120, 160, 3), dtype=np.float32)
    steer, thr = m.predict_on_batch(x)
    assert steer.shape == thr.shape == (2, 1)
    assert np.all(np.abs(steer) <= 1) and np.all((thr >= 0) & (thr <= 1))
    with pytest.raises(ValueError, match="unknown model variant"):
        build_variant("resnet")


def test_rescaling_variant_takes_raw_pixels() -> None:
    pilot, raw = build_pilot(), build_pilot_rescaling()
    assert any(isinstance(layer, keras.layers.Rescaling) for layer in raw.layers)
    raw.set_weights(pilot.get_weights())  # same layers apart from the weightless Rescaling
    frames = generate_dataset(3, seed=0)[0]
    a = pilot.predict_on_batch(preprocess_batch(frames, DEMO_PREPROCESS))
    b = raw.predict_on_batch(preprocess_batch(frames, DEMO_PREPROCESS_RAW))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-5)


def test_lambda_variant_is_refused_by_safe_mode(tmp_path) -> None:
    path = tmp_path / "lambda.keras"
    build_lambda_pilot().save(path)
    with pytest.raises(ValueError, match=r"deserialization of a `Lambda` layer"):  # the name "center" is not in it
        keras.models.load_model(path, safe_mode=True)
    assert keras.models.load_model(path, safe_mode=False).output_names == ["steering", "throttle"]


@pytest.mark.slow
def test_quick_training_learns_the_track() -> None:
    model, metrics = train_pilot(quick=True, seed=1)
    assert model.output_names == ["steering", "throttle"]
    # Far below predicting the mean: the net reads lane geometry from the pixels.
    assert metrics["mae_ratio_steering"] < 0.5, metrics
    assert metrics["mae_ratio_throttle"] < 0.6, metrics
    assert metrics["baseline_mae_steering"] > 0.2  # and the labels are not trivially constant
