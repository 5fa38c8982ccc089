"""The serial link to the car's microcontroller (protocol: docs/protocol.md).

``open_link(url)`` picks the implementation:

- ``/dev/rc-car``, ``/dev/ttyACM0``, ``/dev/pts/5``: serial port at 115200 baud;
- ``serial:///dev/ttyACM0?baud=115200&reconnect_s=0.5&write_timeout_s=0.02&guard=1``: the same with
  options (``guard=0``: no deadline guard process, runtime/link/guard.py);
- ``null://``: logs commands, sends nothing (bench runs without a car);
- ``sim://`` (options ``log=PATH``, ``battery_mv=N``): starts the car simulator in this process on
  a fresh pseudo-terminal and drives it over real serial I/O (the whole stack on a laptop).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from runtime.link.base import CarStatus, CommandLink, DriveLink, LinkError, LinkStats
from runtime.link.null_link import NullDriveLink
from runtime.link.serial_link import SerialDriveLink

__all__ = ["CarStatus", "CommandLink", "DriveLink", "LinkError", "LinkStats", "NullDriveLink", "SerialDriveLink", "open_link"]

def _flag(value: str) -> bool:
    if value not in ("0", "1"):
        raise ValueError(value)
    return value == "1"


_SERIAL_OPTIONS = {"baud": int, "reconnect_s": float, "write_timeout_s": float, "guard": _flag}


def _options(query: str, allowed: dict[str, Callable[[str], object]], url: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, values in parse_qs(query, keep_blank_values=True, strict_parsing=False).items():
        if key not in allowed:
            raise LinkError(f"unknown option {key!r} in link URL {url!r}; allowed: {', '.join(sorted(allowed))}")
        try:
            out[key] = allowed[key](values[-1])
        except ValueError as exc:
            raise LinkError(f"bad value {values[-1]!r} for {key} in link URL {url!r}") from exc
    return out


def open_link(url: str) -> DriveLink:
    """A link for ``url`` (see the module doc); not yet opened: call ``open()``."""
    if url.startswith("/"):
        return SerialDriveLink(url)
    parts = urlsplit(url)
    if parts.scheme == "serial":
        if not parts.path:
            raise LinkError(f"link URL {url!r} names no port; e.g. serial:///dev/ttyACM0?baud=115200")
        return SerialDriveLink(parts.path, **_options(parts.query, _SERIAL_OPTIONS, url))  # type: ignore[arg-type]
    if parts.scheme == "null":
        _options(parts.query, {}, url)
        return NullDriveLink()
    if parts.scheme == "sim":
        from runtime.sim.link import SimulatedCarLink

        return SimulatedCarLink(**_options(parts.query, {"log": str, "battery_mv": int}, url))  # type: ignore[arg-type]
    raise LinkError(
        f"unsupported link URL {url!r}; use a device path (/dev/rc-car), serial:///dev/ttyACM0?baud=115200, "
        "null:// or sim://"
    )
