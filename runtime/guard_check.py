"""Refuse to arm on a soft deadline: with a serial link, the car is driven only when the deadline guard
(runtime/link/guard.py) runs with SCHED_FIFO, unless ``[guard] allow_soft_deadline = true``.

At normal priority the guard's NEUTRAL was measured p99 250 ms late with both cores busy (README),
i.e. the car's own failsafe, not the 100 ms deadline, bounds a stale command. Under the shipped unit
that happens when ``LimitRTPRIO=10`` is missing or ``RestrictRealtime=yes`` is set; the refusal names
the fix on stderr and on the systemd status line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from runtime.config import ConfigError
from runtime.link.guard import realtime_advice

log = logging.getLogger(__name__)

SOFT_HINT = "or set [guard] allow_soft_deadline = true (--allow-soft-deadline) to drive with a soft deadline"


class SoftDeadlineRefused(ConfigError):
    """The deadline guard is not real-time and the config does not accept a soft deadline."""


def guard_problem(policy: str) -> str | None:
    """What is wrong with a guard that runs as ``policy`` (SerialLink.guard_policy); None for ``fifo``."""
    if policy == "fifo":
        return None
    if policy == "other":
        return f"deadline guard at normal priority: {realtime_advice()}"
    if policy == "off":
        return "deadline guard off (guard=0 in the link URI): remove guard=0"
    return f"deadline guard {policy} (see the log above)"


def require_hard_deadline(link: Any, allow_soft: bool, notify: Callable[[str], Any] | None) -> None:
    """Raise :class:`SoftDeadlineRefused` (before anything is armed) when ``link`` has a deadline guard
    that is not real-time and ``allow_soft`` is False; with ``allow_soft`` only warn. Links without a
    guard (``null://``) pass. The problem also goes to systemd's status line through ``notify``."""
    policy = getattr(link, "guard_policy", None)
    if not isinstance(policy, str):
        return
    problem = guard_problem(policy)
    if problem is None:
        return
    if allow_soft:
        log.warning("%s; driving with a soft deadline ([guard] allow_soft_deadline = true)", problem)
        _status(notify, f"soft deadline: {problem}")
        return
    _status(notify, f"not arming: {problem}")
    raise SoftDeadlineRefused(f"not arming: {problem}, {SOFT_HINT}")


def _status(notify: Callable[[str], Any] | None, line: str) -> None:
    if notify is None:
        return
    try:
        notify(f"STATUS={line}")
    except Exception as e:  # systemd notification is advisory
        log.debug("notify(STATUS) failed: %s", e)
