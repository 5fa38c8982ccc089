"""A TensorFlow SavedModel directory (e.g. the keras flavor's exported model) as a conversion source."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from converter.errors import ModelLoadError


class SavedModelSource:
    """A TensorFlow SavedModel directory (e.g. the keras flavor's exported model)."""

    flavor = "saved_model"

    def __init__(self, path: Path) -> None:
        import tensorflow as tf

        self.path = path
        loaded = tf.saved_model.load(str(path))
        sigs = getattr(loaded, "signatures", {})
        if "serving_default" not in sigs:
            raise ModelLoadError(f"SavedModel {path.name} has no serving_default signature (it has {list(sigs)})")
        self._loaded = loaded  # keeps the variables alive
        self.signature = sigs["serving_default"]
        inputs = self.signature.structured_input_signature[1]
        if not inputs:
            raise ModelLoadError(f"SavedModel {path.name}'s serving_default signature takes no named inputs")
        self.input_names: list[str] = sorted(inputs)
        self.input_shapes: dict[str, tuple[int | None, ...]] = {n: tuple(inputs[n].shape) for n in self.input_names}
        self.output_names: list[str] = sorted(self.signature.structured_outputs)

    def predict(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """{input name: (N, ...) float32} -> {output name: (N, ...) float32}."""
        import tensorflow as tf

        ys = self.signature(**{n: tf.constant(feeds[n], tf.float32) for n in self.input_names})
        return {n: ys[n].numpy().astype(np.float32) for n in self.output_names}

    def rescales_inside(self) -> bool:
        return False  # unknowable from a graph without guessing; tags or flags must say

    def input_rescaling_layer(self) -> str | None:
        return None

    def export_saved_model(self, dest: Path, shapes: dict[str, tuple[int, ...]] | None = None) -> Path:
        """The SavedModel itself (converters only read it). Its signature's shapes are what they
        are: open dimensions cannot be fixed here, so the converter refuses them earlier."""
        return self.path
