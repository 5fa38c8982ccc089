"""Role ``imu``: channels in ``order`` (default ax, ay, az in m/s^2, gx, gy, gz in rad/s); shape
(1, len(order)) (donkeycar's KerasIMU ``imu_in``). The samples come from :mod:`runtime.imu`."""

from __future__ import annotations

from typing import Any

import numpy as np

from runtime.imu.base import CHANNELS  # m/s^2 then rad/s, as donkeycar's KerasIMU
from runtime.roles.base import Drive, Fields, RoleError, RoleSpec, no_unknown, vector_width

GRAVITY = 9.81


def _shape(f: Fields) -> tuple[int, ...]:
    return (1, len(f.order or CHANNELS))


def _parse(name: str, model_shape: tuple[int | None, ...], entry: dict[str, Any]) -> dict[str, Any]:
    no_unknown(name, "imu", entry, ("order", "labels", "length"))
    k = vector_width(name, "imu", model_shape)
    order = tuple(entry.get("order") or (CHANNELS if k == len(CHANNELS) else ()))
    if len(order) != k:
        raise RoleError(f"input {name!r} (role imu): say which IMU channel each of its {k} values is: "
                        f"--inputs {name}=imu:order=ax|ay|az|gx|gy|gz (or tag edge.inputs)")
    return {"shape": (1, k), "order": order}


def _fixed_shape(entry: dict[str, Any]) -> tuple[int, ...] | None:
    return (1, len(entry.get("order") or CHANNELS))


def _sample(f: Fields, d: Drive) -> np.ndarray:
    """A car following the drive: lateral ay = v * yaw rate, az = g, gz = the yaw rate, small noise
    elsewhere; in the input's ``order``."""
    n, rng = d.n, d.rng
    channels = {
        "ax": rng.normal(0.0, 0.3, n), "ay": d.speed * d.yaw_rate + rng.normal(0.0, 0.2, n),
        "az": GRAVITY + rng.normal(0.0, 0.2, n), "gx": rng.normal(0.0, 0.05, n), "gy": rng.normal(0.0, 0.05, n),
        "gz": d.yaw_rate + rng.normal(0.0, 0.05, n),
    }
    return np.stack([channels.get(c, rng.normal(0.0, 0.1, n)) for c in f.order or CHANNELS], 1)


def _rest(f: Fields, behavior: str) -> np.ndarray:
    """At rest: gravity on z, nothing else."""
    return np.asarray([GRAVITY if c == "az" else 0.0 for c in f.order or CHANNELS], np.float32)


SPEC = RoleSpec(
    name="imu",
    layouts=("NC",),
    fields=("order",),
    shape=_shape,
    provider="runtime.inputs.imu:ImuProvider",
    parse=_parse,
    fixed_shape=_fixed_shape,
    sample=_sample,
    rest=_rest,
    donkeycar_names=("imu_in",),
)
