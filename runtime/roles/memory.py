"""Role ``memory``: the last ``length`` commands sent, oldest first, steering and throttle
interleaved; shape (1, 2 * length) (donkeycar's KerasMemory ``mem_in``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from runtime.roles.base import Drive, Fields, RoleError, RoleSpec, no_unknown, vector_width


def _shape(f: Fields) -> tuple[int, ...]:
    if not f.length or f.length < 1:
        raise RoleError(f"input {f.name!r}: role memory needs length >= 1 (commands remembered)")
    return (1, 2 * f.length)


def _parse(name: str, model_shape: tuple[int | None, ...], entry: dict[str, Any]) -> dict[str, Any]:
    no_unknown(name, "memory", entry, ("length", "labels", "order"))
    k = vector_width(name, "memory", model_shape)
    if k % 2:
        raise RoleError(f"input {name!r} (role memory): memory holds steering/throttle pairs, so its size must be "
                        f"even, not {k}")
    return {"shape": (1, k), "length": k // 2}


def _fixed_shape(entry: dict[str, Any]) -> tuple[int, ...] | None:
    length = entry.get("length")
    return (1, 2 * int(length)) if length else None


def _sample(f: Fields, d: Drive) -> np.ndarray:
    """The previous ``length`` commands, zeros before the first frame (the car starts in neutral)."""
    length = f.length or 1
    padded = np.concatenate([np.zeros((length, 2)), np.stack([d.steering, d.throttle], 1)], 0)
    return np.stack([padded[i : i + length].reshape(-1) for i in range(d.n)])


def _rest(f: Fields, behavior: str) -> np.ndarray:
    return np.zeros(2 * (f.length or 1), np.float32)


SPEC = RoleSpec(
    name="memory",
    layouts=("NC",),
    fields=("length",),
    shape=_shape,
    provider="runtime.inputs.memory:MemoryProvider",
    parse=_parse,
    fixed_shape=_fixed_shape,
    sample=_sample,
    rest=_rest,
    donkeycar_names=("mem_in",),
)
