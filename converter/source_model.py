"""Find and load the source model in a version's downloaded artifacts, however it was logged.

MLflow metadata can mislead (DESIGN.md), so we never trust it: we look for the files themselves.
Priority: a ``.keras`` file, then ``.h5``/``.hdf5``, then a SavedModel directory. Keras files are
loaded with ``safe_mode=True``. Both kinds end up behind one small interface: ``predict`` by name and
``export_saved_model`` (one SavedModel that every TensorFlow-based builder converts from).
"""

from __future__ import annotations

import importlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from converter.errors import ConverterError, ModelLoadError

log = logging.getLogger(__name__)

KERAS_SUFFIXES = (".keras",)
H5_SUFFIXES = (".h5", ".hdf5")


@dataclass(frozen=True)
class FoundModel:
    path: Path
    kind: str  # keras | h5 | saved_model


def find_model_file(root: Path) -> FoundModel:
    """The model file or SavedModel directory in ``root``; ModelLoadError listing what is there."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if not files:
        raise ModelLoadError(f"the version's artifacts at {root} are empty; re-log the model")

    def pick(cands: list[Path]) -> Path:
        return min(cands, key=lambda p: (len(p.relative_to(root).parts), str(p)))

    keras_files = [p for p in files if p.suffix in KERAS_SUFFIXES]
    if keras_files:
        return FoundModel(pick(keras_files), "keras")
    h5 = [p for p in files if p.suffix in H5_SUFFIXES]
    if h5:
        return FoundModel(pick(h5), "h5")
    saved = [p.parent for p in files if p.name in ("saved_model.pb", "saved_model.pbtxt")]
    if saved:
        return FoundModel(pick(saved), "saved_model")
    listing = ", ".join(str(p.relative_to(root)) for p in files[:12])
    raise ModelLoadError(
        f"no model in the version's artifacts (looked for *.keras, *.h5, saved_model.pb); found: {listing}"
    )


def import_custom_objects(specs: list[str]) -> dict[str, Any]:
    """``module:attr`` -> {attr: object}; a dict attribute is merged as is."""
    out: dict[str, Any] = {}
    for spec in specs:
        module, _, attr = spec.partition(":")
        if not module or not attr:
            raise ConverterError(f"--custom-objects {spec!r}: expected module:attr, e.g. mypkg.layers:MyLayer")
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ConverterError(f"--custom-objects {spec!r}: {e}") from None
        if isinstance(obj, dict):
            out.update(obj)
        else:
            out[attr] = obj
    return out


_UNKNOWN_LAYER = re.compile(r"[Cc]ould not locate (?:class|function) '([^']+)'|Unknown layer: '?([\w.]+)")


def _explain_load_failure(path: Path, e: Exception) -> ModelLoadError:
    text = str(e)
    if "Lambda" in text and ("safe_mode" in text or "arbitrary code" in text):
        names = ", ".join(repr(n) for n in _lambda_layer_names(path)) or "(unnamed)"
        return ModelLoadError(
            f"{path.name} contains Lambda layer {names}, refused with safe_mode on (it could run arbitrary "
            "code); replace it with a registered custom layer and pass --custom-objects module:attr"
        )
    m = _UNKNOWN_LAYER.search(text)
    if m:
        layer = m.group(1) or m.group(2)
        return ModelLoadError(
            f"{path.name} uses the unknown custom layer or function {layer!r}; "
            f"pass --custom-objects module:{layer} so it can be deserialized"
        )
    first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
    return ModelLoadError(f"{path.name} could not be loaded ({type(e).__name__}: {first[:200]}); is the artifact corrupt?")


def _lambda_layer_names(path: Path) -> list[str]:
    """Names of Lambda layers in a .keras file's config (Keras' own error does not name them)."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            config = json.loads(z.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return []
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("class_name") == "Lambda":
                found.append(str(node.get("config", {}).get("name", "?")))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(config)
    return found


class KerasSource:
    """A Keras model (from .keras or .h5)."""

    flavor = "keras"

    def __init__(self, model: Any) -> None:
        if len(model.inputs) != 1:
            raise ModelLoadError(f"the model has {len(model.inputs)} inputs; the car feeds exactly one image")
        self.model = model
        kt = model.inputs[0]
        self.input_name: str = _clean_name(kt.name) or "image"
        self.input_shape: tuple[int | None, ...] = tuple(kt.shape)
        self.output_names: list[str] = [_clean_name(n) for n in model.output_names]

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        ys = _as_list(self.model.predict_on_batch(x), self.output_names)
        return {n: np.asarray(y, np.float32) for n, y in zip(self.output_names, ys, strict=True)}

    def rescales_inside(self) -> bool:
        """True when the model normalises its input itself (a leading Rescaling/Normalization)."""
        return any(type(layer).__name__ in ("Rescaling", "Normalization") for layer in self.model.layers[:4])

    def export_saved_model(self, dest: Path) -> Path:
        """One SavedModel whose serving signature returns a dict keyed by output name.

        ``model.export`` would name the outputs output_0, output_1 by position; a dict keeps the
        logical names through tf2onnx and the TFLite converter, so every build maps by name.
        """
        import keras
        import tensorflow as tf

        model, names = self.model, self.output_names

        def serve(x: Any) -> dict[str, Any]:
            return dict(zip(names, _as_list(model(x, training=False), names), strict=True))

        archive = keras.export.ExportArchive()
        archive.track(model)
        spec = tf.TensorSpec((None, *self.input_shape[1:]), tf.float32, name=self.input_name)
        archive.add_endpoint(name="serving_default", fn=serve, input_signature=[spec])
        archive.write_out(str(dest), verbose=False)
        return dest


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
        if len(inputs) != 1:
            raise ModelLoadError(f"SavedModel {path.name} has {len(inputs)} inputs; the car feeds exactly one image")
        (self.input_name, spec), = inputs.items()
        self.input_shape = tuple(spec.shape)
        self.output_names = sorted(self.signature.structured_outputs)

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        import tensorflow as tf

        ys = self.signature(**{self.input_name: tf.constant(x, tf.float32)})
        return {n: ys[n].numpy().astype(np.float32) for n in self.output_names}

    def rescales_inside(self) -> bool:
        return False  # unknowable from a graph without guessing; tags or flags must say

    def export_saved_model(self, dest: Path) -> Path:
        return self.path  # already a SavedModel; converters only read it


Source = KerasSource | SavedModelSource


def _as_list(ys: Any, names: list[str]) -> list[Any]:
    """A Keras model returns one tensor, a list, or (dict outputs) a dict keyed by output name."""
    if isinstance(ys, dict):
        return [ys[n] for n in names]
    return list(ys) if isinstance(ys, list | tuple) else [ys]


def _clean_name(name: str) -> str:
    return name.split(":")[0].split("/")[0]


def load_source(found: FoundModel, custom_objects: dict[str, Any] | None = None) -> Source:
    if found.kind == "saved_model":
        try:
            return SavedModelSource(found.path)
        except ModelLoadError:
            raise
        except Exception as e:
            raise _explain_load_failure(found.path, e) from None
    import keras

    if found.path.stat().st_size == 0:
        raise ModelLoadError(f"{found.path.name} is empty (0 bytes); re-log the model")
    try:
        model = keras.saving.load_model(str(found.path), custom_objects=custom_objects, compile=False, safe_mode=True)
    except Exception as e:
        raise _explain_load_failure(found.path, e) from None
    log.info("loaded %s (%s, %d params)", found.path.name, found.kind, model.count_params())
    return KerasSource(model)
