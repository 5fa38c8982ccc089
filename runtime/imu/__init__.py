"""IMU sources behind one interface, chosen by URI (``file://imu.csv``, ``mpu6050://1?addr=0x68``).
See :mod:`runtime.imu.uri` for the syntax and :mod:`runtime.inputs.imu` for how samples feed a model."""

from __future__ import annotations

from runtime.imu.base import CHANNELS, ImuError, ImuSample, ImuSource
from runtime.imu.mpu6050 import Mpu6050Source
from runtime.imu.replay import ReplaySource, read_imu_csv
from runtime.imu.uri import ImuURI, parse_imu_uri

__all__ = [
    "CHANNELS",
    "ImuError",
    "ImuSample",
    "ImuSource",
    "ImuURI",
    "Mpu6050Source",
    "ReplaySource",
    "make_imu_source",
    "open_imu",
    "parse_imu_uri",
    "read_imu_csv",
]


def make_imu_source(uri: str) -> ImuSource:
    """The (not yet started) source for ``uri``; :class:`ImuError` for a bad URI."""
    u = parse_imu_uri(uri)
    if u.kind == "file":
        return ReplaySource(uri, u.target)
    o = u.options
    return Mpu6050Source(uri, int(u.target), addr=int(o.get("addr", 0x68)), rate=float(o.get("rate", 100.0)),
                         accel_g=int(o.get("accel_g", 2)), gyro_dps=int(o.get("gyro_dps", 250)))


def open_imu(uri: str) -> ImuSource:
    """A started source for ``uri``; :class:`ImuError` naming the URI and the fix if it is missing,
    malformed, or gives no sample at start."""
    return make_imu_source(uri).start()
