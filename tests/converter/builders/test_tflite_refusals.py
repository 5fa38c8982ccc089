"""What TFLite's builtin ops cannot run is refused naming the Keras layer and the fix: a recurrent
layer's loop, and ops it lacks (a 3D-CNN's MaxPool3D, as in donkeycar's 3D pilot).

Real Keras 3 models through the real LiteRT converter (tiny: a 3-step LSTM, a 3-frame 3D-CNN; no
training).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from converter.builders.tflite import recurrent_refusal, unsupported_ops_refusal
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


def _cnn3d_model(time_distributed: bool) -> object:
    from keras import layers

    x = keras.Input((3, 16, 16, 3), name="img_in")  # donkeycar's 3D pilot: a few frames stacked in depth
    y = layers.Conv3D(4, 3, padding="same", name="conv3d_a")(x)
    pool = (layers.TimeDistributed(layers.MaxPooling2D((2, 2)), name="pool_frames") if time_distributed
            else layers.MaxPooling3D((1, 2, 2), name="pool3d_a"))
    y = layers.Flatten()(pool(y))
    return keras.Model(x, layers.Dense(2, name="n_outputs0")(y))


@pytest.mark.slow  # a TensorFlow SavedModel export and LiteRT conversion
def test_a_3d_pool_is_refused_naming_the_layer_and_the_fix(tmp_path: Path) -> None:
    from converter.builders.tflite import _OPS

    model = _cnn3d_model(time_distributed=False)
    with pytest.raises(Exception, match="MaxPool3D") as info:
        _convert(model, tmp_path)
    text = str(info.value)
    line = unsupported_ops_refusal(text, sorted(set(_OPS.findall(text))), KerasSource(model))
    assert line.startswith("TFLite (builtin ops) cannot express op(s) MaxPool3D (in layer(s) pool3d_a); build onnx")
    assert "TimeDistributed(MaxPooling2D)" in line and "\n" not in line


@pytest.mark.slow  # a TensorFlow SavedModel export and LiteRT conversion
def test_the_3d_cnn_with_time_distributed_pooling_converts_as_the_refusal_says(tmp_path: Path) -> None:
    assert len(_convert(_cnn3d_model(time_distributed=True), tmp_path)) > 1000


def test_without_a_keras_model_the_ops_refusal_still_names_the_op_and_the_fix() -> None:
    line = unsupported_ops_refusal("'tf.MaxPool3D' op is neither a custom op nor a flex op", ["MaxPool3D"], None)
    assert "op(s) MaxPool3D;" in line and "onnx/onnx-fp16/trt-*" in line and "TimeDistributed" in line
