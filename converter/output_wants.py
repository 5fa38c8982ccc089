"""One requested (output, meaning[, decoder]), as the ``--outputs`` flag or ``edge.outputs`` tag says it
or as the converter recognises it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Want:
    """Output ``name`` means ``meaning``, decoded as ``decode`` (a decoder's dict, possibly partial:
    the converter completes perception decoders; None: by the output's shape)."""

    name: str
    meaning: str
    decode: dict[str, Any] | None = None
