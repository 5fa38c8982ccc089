"""What a run tells about the car link: its health at the end and whether the car ever answered."""

from __future__ import annotations

from typing import Any


def link_report(link: object) -> dict[str, Any]:
    """``health`` (no_port / no_status / disarmed / manual / ok; "null" for null://), ``health_detail``
    (one line) and ``reached_car`` (a valid STATUS came at least once; None: the link cannot tell).
    Read it before ``close()``: closing releases the port."""
    health = getattr(link, "health", None)
    describe = getattr(link, "describe_health", None)
    reached = getattr(link, "reached_car", None)
    return {
        "health": health,
        "health_detail": describe() if callable(describe) else None,
        "reached_car": reached,
    }


def never_reached_car(summary: dict[str, Any]) -> str | None:
    """The one-line reason a finished run counts as a failure, or None. A run that ended by itself
    (frames, duration, end of file) without a single valid STATUS from the car did not drive a car,
    whatever its command count says; a run stopped by a signal is not judged."""
    link = summary.get("link") or {}
    if link.get("reached_car") is not False or summary.get("end_reason") == "stopped":
        return None
    detail = link.get("health_detail") or link.get("health") or "no answer"
    return (f"never reached the car ({detail}); {link.get('sent', 0)} frames were written but no valid STATUS came "
            "back: check the port, the cable and that the firmware speaks protocol v2")
