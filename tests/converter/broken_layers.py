"""Custom Keras objects for converter tests: a layer that fails when it runs (an unexpected error
mid-conversion) and a subclassed pilot (a model class that must be registered to load)."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


class Tripwire(keras.layers.Layer):
    """(N, ...) -> the same; raises InvalidArgumentError whenever it really runs (never in tracing)."""

    def call(self, x: Any) -> Any:
        with tf.control_dependencies([tf.debugging.assert_less(x, -1e9, message="tripwire fired")]):
            return tf.identity(x)


class SubclassedPilot(keras.Model):
    """(N, 24, 32, 3) -> (N, 1) steering, written as a subclass (no Functional graph when loaded)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.conv = keras.layers.Conv2D(4, 3, strides=2, activation="relu")
        self.flat = keras.layers.Flatten()
        self.steer = keras.layers.Dense(1, activation="tanh", name="steering")

    def call(self, x: Any) -> Any:
        return self.steer(self.flat(self.conv(x)))


CUSTOM = {"Tripwire": Tripwire, "SubclassedPilot": SubclassedPilot}
