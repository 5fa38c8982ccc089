"""IMU source URIs: ``file://imu.csv`` (replay) and ``mpu6050://1?addr=0x68`` (I2C bus 1).

Options go in the query string; unknown options are errors::

    file://imu.csv                 (relative path; file:///abs/imu.csv for an absolute one)
    mpu6050://1?addr=0x68&rate=100&accel_g=2&gyro_dps=250

A bare path is read as ``file://``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from runtime.imu.base import ImuError

KINDS = ("file", "mpu6050")
USAGE = "use file://imu.csv (a CSV with header t,ax,ay,az,gx,gy,gz) or mpu6050://BUS?addr=0x68"


def _int(text: str) -> int:
    return int(text, 0)  # 0x68 and 104 both work


# kind -> option -> parser; checked here so sources get typed values.
OPTIONS: dict[str, dict[str, type | object]] = {
    "file": {},
    "mpu6050": {"addr": _int, "rate": float, "accel_g": int, "gyro_dps": int},
}


@dataclass(frozen=True)
class ImuURI:
    kind: str  # file | mpu6050
    target: str  # CSV path, or the I2C bus number
    options: dict[str, int | float] = field(default_factory=dict)
    uri: str = ""


def parse_imu_uri(uri: str) -> ImuURI:
    """Parse and validate an IMU URI; :class:`ImuError` names the problem and the fix."""
    text = uri.strip()
    if not text:
        raise ImuError(f"IMU URI is empty; {USAGE}")
    if "://" not in text:
        text = f"file://{text}"
    parts = urlsplit(text)
    kind = parts.scheme.lower()
    if kind not in KINDS:
        raise ImuError(f"IMU URI {uri!r}: unknown scheme {parts.scheme!r}; {USAGE}")
    target = unquote(parts.netloc + parts.path)
    if not target:
        raise ImuError(f"IMU URI {uri!r} names no {'file' if kind == 'file' else 'I2C bus'}; {USAGE}")
    if kind == "mpu6050" and not target.isdigit():
        raise ImuError(f"IMU URI {uri!r}: the I2C bus must be a number (mpu6050://1 for /dev/i2c-1)")
    options: dict[str, int | float] = {}
    known = OPTIONS[kind]
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in known:
            names = ", ".join(known) or "none"
            raise ImuError(f"IMU URI {uri!r}: unknown option {key!r} for {kind}:// (options: {names})")
        parse = known[key]
        try:
            options[key] = parse(value)  # type: ignore[operator]
        except ValueError:
            raise ImuError(f"IMU URI {uri!r}: option {key}={value!r} is not a number") from None
    return ImuURI(kind, target, options, uri)
