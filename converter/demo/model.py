"""The demo pilot: a small Keras 3 CNN, 160x120 RGB in, steering and throttle out.

donkeycar-sized in parameters (~0.45 M, mostly in the dense head) but light in compute: a 2x
average pool first and strided convolutions keep training on a laptop CPU to seconds. Only layers
every converter handles (Conv2D, pooling, Flatten, Dense, Dropout, Rescaling).

Variants, for the converter's tests:
- :func:`build_pilot`: input ``image`` (120, 160, 3) in [0, 1], outputs ``steering`` (tanh) then
  ``throttle`` (sigmoid); ``outputs=`` picks another order or a subset (e.g. steering only).
- :func:`build_steering_only`: one output, ``steering``.
- :func:`build_pilot_rescaling`: takes raw 0..255 pixels and rescales inside (``Rescaling(1/255)``).
- :func:`build_lambda_pilot`: contains a ``Lambda`` layer, which ``safe_mode`` refuses to load.

Keras is imported inside the functions so that importing this module (e.g. for the constants)
stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from converter.demo import DEMO_PREPROCESS

if TYPE_CHECKING:
    import keras

INPUT_NAME = "image"
INPUT_SHAPE = (*DEMO_PREPROCESS.input_hw, 3)  # (120, 160, 3)
OUTPUTS = ("steering", "throttle")
ACTIVATIONS = {"steering": "tanh", "throttle": "sigmoid"}
VARIANTS = ("pilot", "steering", "rescaling", "lambda")


def _trunk(x: Any, dropout: float = 0.1) -> Any:
    """donkeycar's KerasLinear trunk (~0.8 M parameters, ~48 M MACs on the full 120x160 frame), so
    latency, INT8 and loop-overhead figures measured on the demo mean what they would for a real pilot."""
    from keras import layers

    x = layers.Conv2D(24, 5, strides=2, activation="relu", name="conv1")(x)
    x = layers.Conv2D(32, 5, strides=2, activation="relu", name="conv2")(x)
    x = layers.Conv2D(64, 5, strides=2, activation="relu", name="conv3")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv4")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv5")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(100, activation="relu", name="fc1")(x)
    x = layers.Dropout(dropout, name="drop1")(x)
    x = layers.Dense(50, activation="relu", name="fc2")(x)
    return x


def _heads(x: Any, outputs: Sequence[str]) -> list[Any]:
    from keras import layers

    unknown = [o for o in outputs if o not in ACTIVATIONS]
    if unknown or not outputs or len(set(outputs)) != len(outputs):
        raise ValueError(f"outputs must be distinct names from {list(ACTIVATIONS)}, got {list(outputs)}")
    return [layers.Dense(1, activation=ACTIVATIONS[o], name=o)(x) for o in outputs]


def build_pilot(outputs: Sequence[str] = OUTPUTS, name: str = "rc_pilot") -> keras.Model:
    """Input ``image`` (120, 160, 3) float32 in [0, 1]; ``model.output_names == list(outputs)``."""
    import keras

    inp = keras.Input(shape=INPUT_SHAPE, dtype="float32", name=INPUT_NAME)
    return keras.Model(inp, _heads(_trunk(inp), outputs), name=name)


def build_steering_only() -> keras.Model:
    """One output, ``steering`` (tanh)."""
    return build_pilot(outputs=("steering",), name="rc_pilot_steering")


def build_pilot_rescaling(outputs: Sequence[str] = OUTPUTS) -> keras.Model:
    """Input ``image`` raw 0..255 float32; a ``Rescaling(1/255)`` layer inside normalises it.

    Preprocess for it with :data:`converter.demo.DEMO_PREPROCESS_RAW` (scale 1, model_rescales).
    """
    import keras
    from keras import layers

    inp = keras.Input(shape=INPUT_SHAPE, dtype="float32", name=INPUT_NAME)
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inp)
    return keras.Model(inp, _heads(_trunk(x), outputs), name="rc_pilot_rescaling")


def build_lambda_pilot(outputs: Sequence[str] = OUTPUTS) -> keras.Model:
    """Like :func:`build_pilot` with a ``Lambda`` layer named ``center`` ([0, 1] -> [-1, 1]) first.

    A saved ``.keras`` of it loads only with ``safe_mode=False`` (the Lambda holds Python bytecode).
    """
    import keras
    from keras import layers

    inp = keras.Input(shape=INPUT_SHAPE, dtype="float32", name=INPUT_NAME)
    x = layers.Lambda(lambda t: t * 2.0 - 1.0, name="center")(inp)
    return keras.Model(inp, _heads(_trunk(x), outputs), name="rc_pilot_lambda")


def build_variant(variant: str) -> keras.Model:
    """``pilot`` | ``steering`` | ``rescaling`` | ``lambda``."""
    builders = {
        "pilot": build_pilot,
        "steering": build_steering_only,
        "rescaling": build_pilot_rescaling,
        "lambda": build_lambda_pilot,
    }
    if variant not in builders:
        raise ValueError(f"unknown model variant {variant!r}; known: {', '.join(VARIANTS)}")
    return builders[variant]()
