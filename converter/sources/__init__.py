"""Conversion sources: the model file found in a version's artifacts, loaded behind one interface.

One module per kind of source: ``keras`` (Keras 3 ``.keras``/``.h5``), ``keras_legacy`` (``tf_keras``
``.h5``), ``saved_model``, ``torch_source`` (pt2 programs, pickled modules, state dicts with
``--model-class``) and ``onnx_source``; :func:`load_source` picks by what the file is, never by
MLflow's flavor metadata. Every source offers:

- ``input_names`` / ``input_shapes`` ({name: shape with the batch first, ``None`` where open});
- ``output_names``;
- ``predict(feeds)``: {input name: (N, ...) float32} -> {output name: (N, ...) float32};
- ``rescales_inside()``: the model normalises pixels itself; ``input_rescaling_layer()``: the name
  of its layer that scales raw 0..255 pixels, if it has one (a flag scaling them too is refused);
- ``export_saved_model(dest, shapes)`` for TensorFlow sources.

Sources whose graph is ONNX (PyTorch, ONNX: :class:`GraphSource`) also offer ``onnx_path(opset)``
(the FP32 ONNX every build of theirs is made from; ``converter.builders.from_onnx`` calls it),
``toolchain()`` (what made it, for the manifest) and ``default_layout`` (NCHW for PyTorch).
A PyTorch detector returning torchvision's list of dicts is wrapped to fixed-size ``boxes``,
``scores``, ``labels`` (``converter.sources.torch_detections``); ``predict`` and ``onnx_path`` both
run the wrapper.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from converter.errors import ModelLoadError
from converter.sources.custom_objects import import_custom_objects
from converter.sources.find import FoundModel, find_model_file
from converter.sources.hints import SourceHints

log = logging.getLogger(__name__)

__all__ = ["FoundModel", "GraphSource", "SourceHints", "SourceModel", "find_model_file", "import_custom_objects",
           "load_source"]


class SourceModel(Protocol):
    """What the pipeline calls on every loaded model (see the module)."""

    flavor: str
    input_names: list[str]
    input_shapes: dict[str, tuple[int | None, ...]]
    output_names: list[str]

    def predict(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def rescales_inside(self) -> bool: ...

    def input_rescaling_layer(self) -> str | None: ...

    def export_saved_model(self, dest: Path, shapes: dict[str, tuple[int, ...]] | None = None) -> Path: ...


class GraphSource(SourceModel, Protocol):
    """A source whose builds are made from its own ONNX (PyTorch, ONNX); the builders tell one by
    ``converter.builders.from_onnx.has_onnx_graph``."""

    default_layout: str

    def onnx_path(self, opset: int) -> Path:
        """The FP32 ONNX, batch 1, inputs and outputs by name (made once per opset)."""
        ...

    def toolchain(self) -> dict[str, Any]:
        """Versions and exporter that made ``onnx_path`` (recorded in each build)."""
        ...


def load_source(found: FoundModel, custom_objects: dict[str, Any] | None = None,
                hints: SourceHints | None = None) -> SourceModel:
    """Load what ``found`` is, decided by the file itself: a SavedModel directory, a Keras 3
    ``.keras``/``.h5``, a legacy (Keras 1/2, tf.keras 2.x) ``.h5`` through ``tf_keras``, a PyTorch
    file or an ONNX file. ``hints`` (names, input size, ``--model-class``) are for files that do not
    say it all (PyTorch, ONNX).

    Raises :class:`ModelLoadError` naming the problem and the fix.
    """
    if found.kind in ("pt2", "torch", "onnx"):
        return _load_graph_source(found, hints or SourceHints())
    from converter.sources.keras import KerasSource
    from converter.sources.keras_inspect import explain_load_failure
    from converter.sources.saved_model import SavedModelSource

    if found.kind == "saved_model":
        try:
            return SavedModelSource(found.path)
        except ModelLoadError:
            raise
        except Exception as e:
            raise explain_load_failure(found.path, e) from None
    if found.path.stat().st_size == 0:
        raise ModelLoadError(f"{found.path.name} is empty (0 bytes); re-log the model")
    if found.kind == "h5":
        from converter.sources.keras_inspect import read_h5_info
        from converter.sources.keras_legacy import load_legacy_h5

        info = read_h5_info(found.path)
        if not info.is_keras3:
            return load_legacy_h5(found.path, info, custom_objects)
    import keras

    try:
        model = keras.saving.load_model(str(found.path), custom_objects=custom_objects, compile=False, safe_mode=True)
    except Exception as e:
        raise explain_load_failure(found.path, e) from None
    log.info("loaded %s (%s, %d params)", found.path.name, found.kind, model.count_params())
    if not getattr(model, "inputs", None):
        model = _as_functional(model, found.path)
    return KerasSource(model)


def _as_functional(model: Any, path: Path) -> Any:
    """A subclassed model, saved after it was built, as a Functional model calling it on one
    input of the shape it was built with (a loaded subclassed model has no ``inputs``)."""
    import keras

    shape = (model.get_build_config() or {}).get("input_shape") if hasattr(model, "get_build_config") else None
    if not shape or not isinstance(shape, list | tuple) or not all(isinstance(d, int | None) for d in shape):
        raise ModelLoadError(
            f"{path.name} holds a subclassed model ({type(model).__name__}) without a single recorded input shape; "
            "call it on one batch before model.save, or save it as a Functional model"
        )
    x = keras.Input(tuple(shape[1:]), name="input")
    try:
        return keras.Model(x, model(x), name=model.name)
    except Exception as e:
        raise ModelLoadError(
            f"{path.name}: the subclassed model {type(model).__name__} could not be called on its recorded input "
            f"shape {tuple(shape)} ({type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}); "
            "save it as a Functional model"
        ) from None


def _load_graph_source(found: FoundModel, hints: SourceHints) -> SourceModel:
    """PyTorch files (torch imported here only) and ONNX files, verified against their own runtime."""
    if found.kind == "onnx":
        from converter.sources.onnx_source import OnnxSource

        return OnnxSource(found.path, hints)
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ModelLoadError(
            f"{found.path.name} is a PyTorch model and torch is not installed; install the torch extra "
            "(`pip install -e '.[torch]'`, see README)"
        ) from None
    from converter.sources.torch_load import load_torch
    from converter.sources.torch_source import TorchSource

    return TorchSource(load_torch(found.path, hints.model_class), hints)
