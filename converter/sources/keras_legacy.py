"""Legacy ``.h5`` pilots (tf.keras 2.x, standalone Keras 2, Keras 1) loaded with ``tf_keras``.

Keras 3 cannot read most of them (their initializer configs carry ``dtype``; Keras 1 configs are
laid out differently), while ``tf_keras``, the maintained Keras 2 for TensorFlow >= 2.16, reads
them as they were written. Which Keras wrote a file is read from the file itself (its
``keras_version`` and ``backend`` attributes), never from MLflow metadata.

A loaded model is a :class:`TfKerasSource`: the same interface as
:class:`converter.sources.keras.KerasSource`, exporting the same kind of SavedModel (inputs and
outputs by name), so everything after loading is unchanged.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from converter.errors import ModelLoadError
from converter.sources.keras_inspect import (
    H5Info,
    clean_name,
    explain_load_failure,
    lambda_layers_in_config,
    leading_pixel_rescaler,
)

log = logging.getLogger(__name__)


def load_legacy_h5(path: Path, info: H5Info, custom_objects: dict[str, Any] | None) -> TfKerasSource:
    """Load a Keras 1/2 ``.h5`` with ``tf_keras``, Lambda layers refused (safe mode on).

    Raises ModelLoadError naming the Lambda/custom layer, or the file's Keras version and what to do.
    """
    if info.model_config is None and not info.keras_version:
        raise ModelLoadError(
            f"{path.name} is an HDF5 file but not a saved Keras model (no keras_version or model_config); "
            "log the model with model.save(...)"
        )
    if info.model_config is None:
        raise ModelLoadError(
            f"{path.name} holds weights only (no model_config; written by Keras {info.keras_version or '?'}); "
            "log the whole model (model.save), not save_weights"
        )
    try:
        import tf_keras
        from tf_keras.src.saving.serialization_lib import SafeModeScope
    except ImportError:
        raise ModelLoadError(
            f"{path.name} was written by Keras {info.keras_version} and needs the tf_keras package to load; "
            "pip install --no-deps tf_keras==<your TensorFlow version> (make setup does)"
        ) from None
    # tf_keras only applies safe mode to .keras files; an .h5 Lambda would be un-marshalled (arbitrary
    # code) unless the scope says otherwise.
    try:
        with SafeModeScope(True):
            model = tf_keras.models.load_model(str(path), custom_objects=custom_objects or {}, compile=False)
    except Exception as e:
        raise explain_legacy_failure(path, info, e) from None
    log.info("loaded %s with tf_keras %s (written by Keras %s, %s backend; %d params)", path.name,
             tf_keras.__version__, info.keras_version or "?", info.backend or "?", model.count_params())
    return TfKerasSource(model, info)


def explain_legacy_failure(path: Path, info: H5Info, e: Exception) -> ModelLoadError:
    """One line naming the layer at fault, or the Keras version and the fix."""

    text = str(e)
    lambdas = lambda_layers_in_config(info.model_config)
    if info.major < 2:
        m = re.search(r"class '(\w+)'|Unknown layer: '?(\w+)", text)
        what = f"layer {m.group(1) or m.group(2)!r} has Keras 1 arguments" if m else f"{type(e).__name__}"
        also = (f"; it also holds Lambda layer {', '.join(repr(n) for n in lambdas)}, which needs a registered "
                "replacement there") if lambdas else ""
        return ModelLoadError(
            f"{path.name} was written by Keras {info.keras_version or '1.x'}, whose layer configs tf_keras cannot "
            f"read ({what}){also}; re-save it with Keras 2.1/2.2, which still read Keras 1 "
            "files (Python 3.6: pip install keras==2.1.6 tensorflow==1.4.0; keras.models.load_model(f).save(new.h5)), "
            "and register that"
        )
    if lambdas and ("Lambda" in text or "lambda" in text or "arbitrary code" in text):
        return _lambda_error(path, info, lambdas)
    return explain_load_failure(path, e)


def _lambda_error(path: Path, info: H5Info, names: list[str]) -> ModelLoadError:
    listed = ", ".join(repr(n) for n in names)
    return ModelLoadError(
        f"{path.name} (Keras {info.keras_version or '?'}) contains Lambda layer {listed}, refused with safe_mode on "
        "(its Python bytecode could run arbitrary code); pass --custom-objects module:attr with a layer that does "
        "the same math registered as 'Lambda' (e.g. a dict {'Lambda': MyNormalize}), or re-save the model with "
        "a registered custom layer"
    )


class TfKerasSource:
    """A ``tf_keras`` (Keras 2) model behind the SourceModel interface (see :mod:`converter.sources`)."""

    flavor = "tf_keras"

    def __init__(self, model: Any, info: H5Info | None = None) -> None:
        self.model = model
        self.info = info
        names = list(getattr(model, "input_names", None) or [])
        if len(names) != len(model.inputs):
            names = [clean_name(t.name) or f"input_{i}" for i, t in enumerate(model.inputs)]
        self.input_names: list[str] = names
        self.input_shapes: dict[str, tuple[int | None, ...]] = {
            n: tuple(t.shape.as_list()) for n, t in zip(names, model.inputs, strict=True)
        }
        outs = list(getattr(model, "output_names", None) or [])
        if len(outs) != len(model.outputs):
            outs = [clean_name(t.name) for t in model.outputs]
        self.output_names: list[str] = outs
        self.output_activations: dict[str, str] = {}  # e.g. softmax: donkeycar's categorical heads
        for n in outs:
            try:
                act = getattr(model.get_layer(n), "activation", None)
            except ValueError:
                continue
            if act is not None:
                self.output_activations[n] = getattr(act, "__name__", str(act))

    def _call(self, xs: list[Any]) -> list[Any]:
        ys = self.model(xs[0] if len(xs) == 1 else xs, training=False)
        if isinstance(ys, dict):
            return [ys[n] for n in self.output_names]
        return list(ys) if isinstance(ys, list | tuple) else [ys]

    def predict(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """{input name: (N, ...) float32} -> {output name: (N, ...) float32}."""
        import tensorflow as tf

        ys = self._call([tf.constant(feeds[n], tf.float32) for n in self.input_names])
        return {n: np.asarray(y, np.float32) for n, y in zip(self.output_names, ys, strict=True)}

    def rescales_inside(self) -> bool:
        """True when a leading Rescaling/Normalization layer normalises pixels inside the model.

        A Lambda cannot be read (safe mode), so a model loaded with a replacement for it says so
        through the replacement's ``rescales_pixels = True`` class attribute."""
        return any(
            type(layer).__name__ in ("Rescaling", "Normalization") or getattr(layer, "rescales_pixels", False)
            for layer in self.model.layers[:4]
        )

    def input_rescaling_layer(self) -> str | None:
        """See :func:`converter.sources.keras.leading_pixel_rescaler`."""
        return leading_pixel_rescaler(self.model.layers)

    def export_saved_model(self, dest: Path, shapes: dict[str, tuple[int, ...]] | None = None) -> Path:
        """A SavedModel whose serving signature takes the inputs by name and returns a dict keyed by
        output name (the same contract as KerasSource's), with the batch dimension open."""
        import tensorflow as tf

        specs = [
            tf.TensorSpec((None, *(shapes or self.input_shapes)[n][1:]), tf.float32, name=n)
            for n in self.input_names
        ]
        names = self.output_names

        @tf.function(input_signature=specs)
        def serve(*xs: Any) -> dict[str, Any]:
            return dict(zip(names, self._call(list(xs)), strict=True))

        module = tf.Module()
        module.model = self.model  # tracks the variables
        module.serve = serve
        tf.saved_model.save(module, str(dest), signatures={"serving_default": serve})
        return dest
