"""systemd's notify protocol, no dependency: one datagram per state over ``$NOTIFY_SOCKET``.

    notify("READY=1")      after the first inference (Type=notify: start-up is complete)
    notify("WATCHDOG=1")   only while the loop is healthy (WatchdogSec=)
    notify("STOPPING=1")   on the way out
    notify("STATUS=12.3 fps, car armed")

``$NOTIFY_SOCKET`` is a filesystem path or, starting with ``@``, a name in the abstract namespace.
Outside systemd (no variable) nothing is sent and ``notify`` returns False; it never raises.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def _address(value: str) -> str | None:
    if value.startswith("@"):
        return "\0" + value[1:]  # abstract namespace
    if value.startswith("/"):
        return value
    return None  # e.g. vsock: (VMs only), not for a service on the car


def notify(state: str) -> bool:
    """Send ``state`` (one or more ``KEY=VALUE`` lines) to systemd; True when it was sent."""
    value = os.environ.get("NOTIFY_SOCKET", "")
    if not value:
        return False
    address = _address(value)
    if address is None:
        log.debug("NOTIFY_SOCKET=%r: unsupported address; not notifying", value)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        log.debug("notify(%r) to %s failed: %s", state, value, exc)
        return False
    return True


def watchdog_interval_s() -> float | None:
    """How often to send WATCHDOG=1: half of ``WatchdogSec=`` (``$WATCHDOG_USEC``), if it is meant for
    this process (``$WATCHDOG_PID`` unset or ours)."""
    usec, pid = os.environ.get("WATCHDOG_USEC", ""), os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid.isdigit() and int(pid) != os.getpid()):
        return None
    return int(usec) / 2e6
