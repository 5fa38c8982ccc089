"""Conversion sources: the model file found in a version's artifacts, loaded behind one interface.

One module per kind of source (``keras``, ``saved_model``); :func:`load_source` picks by what the
file is, never by MLflow's flavor metadata. Every source offers:

- ``input_names`` / ``input_shapes`` ({name: shape with the batch first, ``None`` where open});
- ``output_names``;
- ``predict(feeds)``: {input name: (N, ...) float32} -> {output name: (N, ...) float32};
- ``rescales_inside()``: the model normalises pixels itself;
- ``export_saved_model(dest, shapes)`` for TensorFlow sources.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from converter.errors import ModelLoadError
from converter.sources.custom_objects import import_custom_objects
from converter.sources.find import FoundModel, find_model_file

log = logging.getLogger(__name__)

__all__ = ["FoundModel", "Source", "find_model_file", "import_custom_objects", "load_source"]


class Source(Protocol):
    flavor: str
    input_names: list[str]
    input_shapes: dict[str, tuple[int | None, ...]]
    output_names: list[str]

    def predict(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def rescales_inside(self) -> bool: ...

    def export_saved_model(self, dest: Path, shapes: dict[str, tuple[int, ...]] | None = None) -> Path: ...


def load_source(found: FoundModel, custom_objects: dict[str, Any] | None = None) -> Source:
    """Load what ``found`` is; :class:`ModelLoadError` naming the problem and the fix otherwise."""
    from converter.sources.keras import KerasSource, _explain_load_failure
    from converter.sources.saved_model import SavedModelSource

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
