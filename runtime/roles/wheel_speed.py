"""Role ``wheel_speed``: the car's speed in m/s (donkeycar's odometry/encoder parts feed one to
some pilots); shape (1, 1). The values come from :mod:`runtime.odometry` (``--wheel-speed URI``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from runtime.roles.base import Drive, Fields, RoleError, RoleSpec, no_unknown, vector_width


def _shape(f: Fields) -> tuple[int, ...]:
    return (1, 1)


def _parse(name: str, model_shape: tuple[int | None, ...], entry: dict[str, Any]) -> dict[str, Any]:
    no_unknown(name, "wheel_speed", entry, ())
    k = vector_width(name, "wheel_speed", model_shape)
    if k != 1:
        raise RoleError(f"input {name!r} (role wheel_speed): a wheel speed is one value (N, 1), this input takes {k}; "
                        "give it another role in --inputs")
    return {"shape": (1, 1)}


def _fixed_shape(entry: dict[str, Any]) -> tuple[int, ...] | None:
    return (1, 1)


def _sample(f: Fields, d: Drive) -> np.ndarray:
    """The drive's speed with encoder-like noise, never below 0."""
    return np.maximum(d.speed + d.rng.normal(0.0, 0.03, d.n), 0.0)[:, None]


def _rest(f: Fields, behavior: str) -> np.ndarray:
    return np.zeros(1, np.float32)


SPEC = RoleSpec(
    name="wheel_speed",
    layouts=("NC",),
    fields=(),
    shape=_shape,
    provider="runtime.inputs.wheel_speed:WheelSpeedProvider",
    parse=_parse,
    fixed_shape=_fixed_shape,
    sample=_sample,
    rest=_rest,
)
