"""The serial link's health in one word, worst first (stats JSON, log, systemd status), and its
one-line description."""

from __future__ import annotations

from runtime.link.base import CarStatus
from runtime.link.protocol import STATUS_PERIOD_MS

STATUS_TIMEOUT_S = 10 * STATUS_PERIOD_MS / 1000  # no STATUS for this long: the car is not answering

# Link health, worst first (stats, log, systemd status).
NO_PORT, NO_STATUS, DISARMED, MANUAL, OK = "no_port", "no_status", "disarmed", "manual", "ok"


def link_health(connected: bool, status: CarStatus | None, now: float) -> str:
    """``no_port`` (not ``connected``), ``no_status`` (no ``status``, or it was received more than
    ``STATUS_TIMEOUT_S`` s before ``now``, both ``time.monotonic()`` s), ``manual``, ``ok`` (armed)
    or ``disarmed``."""
    if not connected:
        return NO_PORT
    if status is None or now - status.received_at > STATUS_TIMEOUT_S:
        return NO_STATUS
    if status.manual:
        return MANUAL
    return OK if status.armed else DISARMED


def describe(health: str, port: str, missing_reason: str) -> str:
    """One line for logs, errors and the systemd status; ``missing_reason`` says why there is no
    port (e.g. "does not exist", "is in use by pid N"). ``KeyError`` for an unknown ``health``."""
    if health == NO_PORT:
        return f"no port: {port} {missing_reason}"
    if health == NO_STATUS:
        return f"no STATUS from the car on {port} for {STATUS_TIMEOUT_S:.1f} s"
    return {DISARMED: "car disarmed", MANUAL: "car in manual (RC transmitter) mode", OK: "car armed"}[health]
