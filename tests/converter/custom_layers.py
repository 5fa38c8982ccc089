"""Custom layers for converter tests (TensorFlow backend ops one format cannot express)."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


class LgammaFeature(keras.layers.Layer):
    """tf2onnx has no Lgamma; LiteRT's builtins do."""

    def call(self, x: Any) -> Any:
        return tf.reduce_mean(tf.math.lgamma(x + 1.0), axis=[1, 2, 3])[:, None]


class DetFeature(keras.layers.Layer):
    """LiteRT's builtins have no MatrixDeterminant; tf2onnx does."""

    def call(self, x: Any) -> Any:
        return tf.linalg.det(tf.reshape(x[:, :4, :4, 0], (-1, 4, 4)))[:, None] * 0.01


class Scale(keras.layers.Layer):
    """A harmless custom layer that Keras cannot deserialize unless told about it."""

    def __init__(self, factor: float = 1.0, **kw: Any) -> None:
        super().__init__(**kw)
        self.factor = factor

    def call(self, x: Any) -> Any:
        return x * self.factor

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": self.factor}


CUSTOM = {"LgammaFeature": LgammaFeature, "DetFeature": DetFeature, "Scale": Scale}


def pilot_with(layer: keras.layers.Layer, steering_only: bool = False) -> keras.Model:
    inp = keras.Input((120, 160, 3), name="image")
    x = keras.layers.Conv2D(4, 5, strides=4, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    # Feature layers read the image; Scale rescales the pooled features.
    x = layer(x) if isinstance(layer, Scale) else keras.layers.Concatenate()([x, layer(inp)])
    steering = keras.layers.Dense(1, activation="tanh", name="steering")(x)
    if steering_only:
        return keras.Model(inp, steering)
    throttle = keras.layers.Dense(1, activation="sigmoid", name="throttle")(x)
    return keras.Model(inp, [steering, throttle])
