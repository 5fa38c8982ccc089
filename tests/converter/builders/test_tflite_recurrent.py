"""A Keras recurrent layer TFLite's builtin ops cannot loop over is refused naming the layer and the fix.

Real Keras 3 models through the real LiteRT converter (tiny: a 3-step LSTM, no training).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from converter.builders.tflite import recurrent_refusal
from converter.sources.keras import KerasSource

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")


def _lstm_model(unroll: bool) -> object:
    from keras import layers

    x = keras.Input((3, 8), name="img_in")
    y = layers.LSTM(4, name="LSTM_fin", unroll=unroll)(x)
    return keras.Model(x, layers.Dense(1, name="n_outputs0")(y))


def _convert(model: object, tmp_path: Path) -> bytes:
    model.export(str(tmp_path / "sm"), verbose=False)  # type: ignore[attr-defined]
    return tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm")).convert()


@pytest.mark.slow  # a TensorFlow SavedModel export and LiteRT conversion
def test_lstm_loop_is_refused_naming_the_layer_and_unroll(tmp_path: Path) -> None:
    model = _lstm_model(unroll=False)
    with pytest.raises(Exception, match="tensor list ops") as info:
        _convert(model, tmp_path)
    line = recurrent_refusal(str(info.value), KerasSource(model))
    assert "layer(s) LSTM_fin " in line and "unroll=True" in line and "onnx" in line
    assert "\n" not in line


@pytest.mark.slow  # a TensorFlow SavedModel export and LiteRT conversion
def test_unrolled_lstm_converts_as_the_refusal_says(tmp_path: Path) -> None:
    assert len(_convert(_lstm_model(unroll=True), tmp_path)) > 1000


def test_without_a_keras_model_the_refusal_still_says_what_and_how() -> None:
    line = recurrent_refusal("error: Lowering tensor list ops is failed.", source=None)
    assert "a recurrent layer (LSTM/GRU/RNN)" in line and "unroll=True" in line
