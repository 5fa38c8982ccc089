"""Wheel-speed sources for the ``wheel_speed`` input role, chosen by URI.

``file://speed.csv`` (or ``.jsonl``, or a bare path): a recorded log replayed in step with the
frames (:mod:`runtime.odometry.replay`). The car's STATUS carries no speed (docs/protocol.md: mode,
flags, the outputs, battery), so neither the car nor ``rc-car-sim`` can give one over the link; an
encoder source (a Hall sensor on a GPIO, donkeycar's ``Tachometer``) is the next kind to add here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from runtime.odometry.base import OdometryError, SpeedSample, SpeedSource
from runtime.odometry.replay import ReplaySpeedSource, read_speed_log

log = logging.getLogger(__name__)

KINDS = ("file",)
USAGE = "use file://speed.csv (a CSV with header t,speed; or .jsonl with {\"t\": s, \"speed\": m/s} per line)"

__all__ = ["KINDS", "OdometryError", "ReplaySpeedSource", "SpeedSample", "SpeedSource", "check_speed_uri",
           "open_model_wheel_speed", "open_wheel_speed", "read_speed_log"]


def check_speed_uri(uri: str) -> str:
    """The log path a wheel-speed URI names; :class:`OdometryError` naming the problem and the fix."""
    text = uri.strip()
    if not text:
        raise OdometryError(f"wheel-speed URI is empty; {USAGE}")
    if "://" not in text:
        text = f"file://{text}"
    parts = urlsplit(text)
    if parts.scheme.lower() not in KINDS:
        raise OdometryError(f"wheel-speed URI {uri!r}: unknown scheme {parts.scheme!r}; {USAGE}")
    if parts.query:
        raise OdometryError(f"wheel-speed URI {uri!r}: file:// takes no options ({parts.query!r})")
    target = unquote(parts.netloc + parts.path)
    if not target:
        raise OdometryError(f"wheel-speed URI {uri!r} names no file; {USAGE}")
    return target


def open_wheel_speed(uri: str) -> SpeedSource:
    """A started source for ``uri``; :class:`OdometryError` naming the URI and the fix."""
    return ReplaySpeedSource(uri, check_speed_uri(uri)).start()


def open_model_wheel_speed(uri: str, roles: Iterable[str]) -> SpeedSource | None:
    """The started source when the model has a wheel_speed input and ``uri`` is set; ``None``
    otherwise (a model with the input and no source fails in its provider, naming the flag)."""
    if "wheel_speed" not in set(roles):
        if uri:
            log.warning("the model has no wheel_speed input; ignoring the wheel-speed source %s", uri)
        return None
    return open_wheel_speed(uri) if uri else None
