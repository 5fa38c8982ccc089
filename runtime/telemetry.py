"""What the drive loop publishes about each frame it drove, for readers beside it (shadow mode,
metrics, the update agent): one read-only interface instead of each reaching into the loop.

The loop calls :meth:`Telemetry.publish` once per inferred frame, after its command went out (or
was held), so a listener never delays a command. A :class:`FrameReport` is frozen: readers get
values, never the loop's buffers. Listeners run in the loop's thread and must only hand the
report over (a mailbox put); one that raises is logged once and counted, never propagated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from runtime.camera import CameraFrame

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FrameReport:
    """One inferred frame: its ``frame_id``, ``source_index`` and ``t_capture`` (monotonic s); the
    pilot's raw ``steering``/``throttle`` before limits (``throttle`` None: the model gives none);
    the command after limits (``command_steering``/``command_throttle``, 0 when none was valid);
    ``sent`` (handed to the link in time), ``held`` (why the car was held in neutral, else None) and
    ``camera_to_command_ms`` (None when nothing was sent)."""

    frame_id: int
    source_index: int
    t_capture: float
    decided: bool
    steering: float
    throttle: float | None
    command_steering: float
    command_throttle: float
    sent: bool
    held: str | None
    camera_to_command_ms: float | None


Listener = Callable[[CameraFrame, FrameReport], None]


class Telemetry:
    """The newest :class:`FrameReport` (:meth:`latest`) and the listeners told of every one."""

    def __init__(self) -> None:
        self._latest: FrameReport | None = None
        self._listeners: list[Listener] = []
        self.published = 0
        self.listener_errors = 0

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(frame, report)`` for every published frame (in the loop's thread: it must
        not block). ``frame`` is a copy without the capture thread's recycled input buffer."""
        self._listeners.append(listener)

    def publish(self, frame: CameraFrame, report: FrameReport) -> None:
        """The loop's side: store ``report`` and tell the listeners (their errors stay here)."""
        self._latest = report
        self.published += 1
        if not self._listeners:
            return
        own = replace(frame, input=None)  # frame.input is recycled by the camera: never handed on
        for listener in self._listeners:
            try:
                listener(own, report)
            except Exception as e:  # a reader's bug must never reach the drive loop
                self.listener_errors += 1
                if self.listener_errors == 1:
                    log.error("telemetry listener %r failed (further failures only counted): %s", listener, e)

    def latest(self) -> FrameReport | None:
        """The newest report, or None before the first inferred frame."""
        return self._latest
