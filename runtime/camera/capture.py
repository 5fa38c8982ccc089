"""Capture in its own thread, keeping only the newest frame.

The capture thread reads the source and publishes each frame into a single slot. The loop takes
the slot's frame and empties it, so a frame is never inferred twice; a frame overwritten before it
was taken is counted as dropped. Live sources are reopened after a failed read (unplugged camera)
every ``reconnect_interval_s``; finite sources end, and :meth:`Camera.get` then returns ``None``
with :attr:`Camera.ended` set.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from runtime.camera.base import CameraError, Frame, FrameSource
from runtime.events import Events

log = logging.getLogger(__name__)


class Camera:
    def __init__(
        self, source: FrameSource, events: Events | None = None, reconnect_interval_s: float = 0.5
    ) -> None:
        self.source = source
        self.events = events or Events()
        self.reconnect_interval_s = reconnect_interval_s
        self._cond = threading.Condition()
        self._slot: Frame | None = None
        self._next_id = 1
        self._ended = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.captured = 0  # frames published
        self.delivered = 0  # frames taken by the loop
        self.dropped = 0  # frames overwritten before the loop took them
        self.reconnects = 0
        self.failures = 0  # failed opens + failed reads of a live source

    # -- consumer side -------------------------------------------------------------------------

    def get(self, timeout: float) -> Frame | None:
        """The newest frame not yet taken, waiting up to ``timeout`` s; ``None`` if none came."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._slot is None:
                if self._ended or self._stopping.is_set():
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            frame, self._slot = self._slot, None
            self.delivered += 1
            if self.source.lossless:
                self._cond.notify_all()
            return frame

    @property
    def ended(self) -> bool:
        """A finite source reached its end and every frame was taken."""
        with self._cond:
            return self._ended and self._slot is None

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {
                "uri": self.source.describe(),
                "captured": self.captured,
                "delivered": self.delivered,
                "dropped": self.dropped,
                "reconnects": self.reconnects,
                "failures": self.failures,
                "ended": self._ended,
            }

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Camera:
        """Validate the source (raises :class:`CameraConfigError`) and start the capture thread."""
        if self._thread is not None:
            return self
        self.source.check()
        self._thread = threading.Thread(target=self._run, name="camera", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                # Blocked inside the driver; it is a daemon thread and dies with the process.
                log.warning("camera thread did not stop within %.1f s", timeout)
                return
        self.source.close()

    def __enter__(self) -> Camera:
        return self.start()  # no-op when already started (open_camera starts it)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- capture thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._capture()
        except Exception as e:  # a bug or a driver crash: end the stream so the loop goes neutral
            log.exception("camera thread crashed")
            self.events.raise_("camera.disconnected", f"capture thread crashed: {e}")
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _capture(self) -> None:
        src, stop = self.source, self._stopping
        opened, was_down = False, False
        next_due = 0.0
        while not stop.is_set():
            if not opened:
                try:
                    src.open()
                except CameraError as e:
                    self.failures += 1
                    self.events.raise_("camera.disconnected", str(e))
                    if not src.live:
                        return
                    was_down = True
                    stop.wait(self.reconnect_interval_s)
                    continue
                opened = True
                next_due = time.monotonic()
                if was_down:
                    self.reconnects += 1
                    self.events.clear("camera.disconnected")
                    log.info("camera %s reconnected", src.describe())
                    was_down = False
            got = src.read()
            if got is None:
                if not src.live:
                    self.events.raise_("camera.ended", src.describe())
                    return
                self.failures += 1
                self.events.raise_("camera.disconnected", f"{src.describe()}: read failed")
                src.close()
                opened, was_down = False, True
                stop.wait(self.reconnect_interval_s)
                continue
            image, index = got
            if src.pacing_s is not None:
                next_due += src.pacing_s
                delay = next_due - time.monotonic()
                if delay > 0:
                    stop.wait(delay)
                elif delay < -src.pacing_s:
                    next_due = time.monotonic()  # fell behind (busy machine): do not burst
            self._publish(image, index)

    def _publish(self, image: Any, index: int) -> None:
        with self._cond:
            if self.source.lossless:
                while self._slot is not None and not self._stopping.is_set():
                    self._cond.wait(0.1)
            if self._slot is not None:
                self.dropped += 1
            # Stamped as late as possible: in lossless mode after the wait, so frame age measures
            # the hand-over, not the time the file reader spent waiting for the loop.
            self._slot = Frame(self._next_id, time.monotonic(), image, index)
            self._next_id += 1
            self.captured += 1
            self._cond.notify_all()
