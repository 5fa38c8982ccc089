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
        except Exception as e:  # the user's module failed while importing: its error, in one line
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise ConverterError(
                f"--custom-objects {spec!r}: importing {module} raised {type(e).__name__}: {first}; fix that module"
            ) from None
        if isinstance(obj, dict):
            out.update(obj)
        else:
            out[attr] = obj
    return out
