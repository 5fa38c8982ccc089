"""A custom layer that loads and builds but fails when it runs: an unexpected error mid-conversion."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


class Tripwire(keras.layers.Layer):
    """(N, ...) -> the same; raises InvalidArgumentError whenever it really runs (never in tracing)."""

    def call(self, x: Any) -> Any:
        with tf.control_dependencies([tf.debugging.assert_less(x, -1e9, message="tripwire fired")]):
            return tf.identity(x)


CUSTOM = {"Tripwire": Tripwire}
