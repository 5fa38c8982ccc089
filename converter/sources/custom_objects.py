"""``--custom-objects module:attr``: the way out for custom Keras layers (safe_mode stays on)."""

from __future__ import annotations

import importlib
from typing import Any

from converter.errors import ConverterError


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
