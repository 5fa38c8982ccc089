"""A registered stand-in for the behavioural-cloning pilots' ``Lambda(lambda x: x / 127.5 - 1.0)``.

Passed as ``--custom-objects tests.converter.legacy_layers:LAMBDA``: Keras builds this layer from
the Lambda's saved config instead of un-marshalling its bytecode, so safe mode stays on.
"""

from __future__ import annotations

from typing import Any

import tf_keras


class PixelNormalize(tf_keras.layers.Layer):
    """(N, H, W, C) float32 pixels 0..255 -> x / 127.5 - 1 (same shape)."""

    rescales_pixels = True  # the converter then feeds raw pixels (preprocess scale 1)

    def __init__(self, name: str | None = None, trainable: bool = True, dtype: Any = None,
                 batch_input_shape: Any = None, **lambda_config: Any) -> None:
        # The Lambda's own keys (function, function_type, output_shape, arguments, Keras 1's
        # input_dtype...) describe the bytecode this layer replaces: ignored on purpose.
        kwargs = {"batch_input_shape": tuple(batch_input_shape)} if batch_input_shape else {}
        super().__init__(name=name, trainable=trainable, dtype=dtype, **kwargs)

    def call(self, x: Any) -> Any:
        return x / 127.5 - 1.0


LAMBDA = {"Lambda": PixelNormalize}
