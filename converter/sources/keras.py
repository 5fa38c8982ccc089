"""A Keras model (``.keras`` or ``.h5``) as a conversion source, loaded with ``safe_mode=True``.

Behind the :class:`converter.sources.SourceModel` interface: inputs and outputs by name (any number of
each), ``predict`` on a batch, and ``export_saved_model`` (one SavedModel that every
TensorFlow-based builder converts from).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from converter.sources.keras_inspect import clean_name, leading_pixel_rescaler

log = logging.getLogger(__name__)

class KerasSource:
    """A loaded Keras model, Functional, Sequential or subclassed-and-saved, with any number of inputs."""

    flavor = "keras"

    def __init__(self, model: Any) -> None:
        self.model = model
        self.input_names: list[str] = [clean_name(t.name) or f"input_{i}" for i, t in enumerate(model.inputs)]
        self.input_shapes: dict[str, tuple[int | None, ...]] = {
            n: tuple(t.shape) for n, t in zip(self.input_names, model.inputs, strict=True)
        }
        self.output_names: list[str] = keras_output_names(model)
        self.output_activations: dict[str, str] = _activations(model, self.output_names)

    def predict(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """{input name: (N, ...) float32} -> {output name: (N, ...) float32}."""
        xs = [feeds[n] for n in self.input_names]
        ys = _as_list(self.model.predict_on_batch(xs[0] if len(xs) == 1 else xs), self.output_names)
        return {n: np.asarray(y, np.float32) for n, y in zip(self.output_names, ys, strict=True)}

    def rescales_inside(self) -> bool:
        """True when the model normalises its input itself (a leading Rescaling/Normalization)."""
        return any(type(layer).__name__ in ("Rescaling", "Normalization") for layer in self.model.layers[:4])

    def input_rescaling_layer(self) -> str | None:
        """See :func:`leading_pixel_rescaler`."""
        return leading_pixel_rescaler(self.model.layers)

    def export_saved_model(self, dest: Path, shapes: dict[str, tuple[int, ...]] | None = None) -> Path:
        """One SavedModel whose serving signature takes the inputs by name and returns a dict keyed
        by output name.

        ``model.export`` would name the outputs output_0, output_1 by position; a dict keeps the
        logical names through tf2onnx and the TFLite converter, so every build maps by name.
        ``shapes`` fixes dimensions the model leaves open (e.g. a dynamic image size) to what the
        manifest records; the batch dimension stays open.
        """
        import keras
        import tensorflow as tf

        model, names, in_names = self.model, self.output_names, self.input_names
        specs = [
            tf.TensorSpec((None, *(shapes or self.input_shapes)[n][1:]), tf.float32, name=n) for n in in_names
        ]

        def serve(*xs: Any) -> dict[str, Any]:
            out = model(xs[0] if len(xs) == 1 else list(xs), training=False)
            return dict(zip(names, _as_list(out, names), strict=True))

        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(name="serving_default", fn=serve, input_signature=specs)
        archive.write_out(str(dest), verbose=False)
        return dest


def _activations(model: Any, names: list[str]) -> dict[str, str]:
    """Output name -> the activation of the layer of that name (e.g. softmax), where it has one."""
    out = {}
    for name in names:
        try:
            act = getattr(model.get_layer(name), "activation", None)
        except ValueError:
            continue
        if act is not None:
            out[name] = getattr(act, "__name__", str(act))
    return out


def keras_output_names(model: Any) -> list[str]:
    """Output names as the layers that make them are named.

    A Keras 3 ``Sequential`` has no ``output_names``; its outputs are named after the layers that
    produce them, which is what a Functional model reports too.
    """
    names = getattr(model, "output_names", None)
    if names:
        return [clean_name(n) for n in names]
    found = []
    for t in model.outputs:
        history = getattr(t, "_keras_history", None)
        op = getattr(history, "operation", None) or (history[0] if history else None)
        found.append(clean_name(getattr(op, "name", "") or t.name))
    return found


def _as_list(ys: Any, names: list[str]) -> list[Any]:
    """A Keras model returns one tensor, a list, or (dict outputs) a dict keyed by output name."""
    if isinstance(ys, dict):
        return [ys[n] for n in names]
    return list(ys) if isinstance(ys, list | tuple) else [ys]
