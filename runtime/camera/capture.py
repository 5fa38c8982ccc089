"""Capture in its own thread, keeping only the newest frame.

The capture thread reads the source and publishes each frame into a single slot. The loop takes
the slot's frame and empties it, so a frame is never inferred twice; a frame overwritten before it
was taken is counted as dropped. Live sources are reopened after a failed read (unplugged camera)
every ``reconnect_interval_s``; finite sources end, and :meth:`Camera.get` then returns ``None``
with :attr:`Camera.ended` set.

With a ``prepare`` factory (e.g. ``lambda: Preprocessor(spec)``) the capture thread also makes
the model input, so preprocessing the next frame overlaps inference of the current one. Each
preparer owns its output buffer; three of them circulate (one in the loop's hands, one in the
slot, one being filled), a buffer returning to the pool when its frame is dropped or when the
loop takes the next frame.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from runtime.camera.base import CameraError, CameraFrame, FrameSource
from runtime.events import Events

log = logging.getLogger(__name__)

Prepare = Callable[[np.ndarray], np.ndarray]
N_BUFFERS = 3  # in the loop's hands + in the slot + being filled


class Camera:
    """The capture thread over ``source`` and the one-frame slot the loop takes from (see the module).

    ``events``: where ``camera.*`` events are raised; ``reconnect_interval_s`` (s): how often a live
    source is reopened after a failure; ``prepare``: a factory of preprocessing functions (BGR uint8
    image -> model input array), one per circulating buffer, run in the capture thread.
    """

    def __init__(
        self, source: FrameSource, events: Events | None = None, reconnect_interval_s: float = 0.5,
        prepare: Callable[[], Prepare] | None = None,
    ) -> None:
        self.source = source
        self.events = events or Events()
        self.reconnect_interval_s = reconnect_interval_s
        self._cond = threading.Condition()
        self._slot: CameraFrame | None = None
        self._pool: list[Prepare] = [prepare() for _ in range(N_BUFFERS)] if prepare else []
        self._owner: dict[int, Prepare] = {}  # frame id -> the preparer whose buffer it uses
        self._in_use: int | None = None  # id of the frame the loop holds
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

    def get(self, timeout: float) -> CameraFrame | None:
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
            if self._in_use is not None:  # the loop is done with the previous frame's buffer
                self._release(self._in_use)
            self._in_use = frame.id
            if self.source.lossless:
                self._cond.notify_all()
            return frame

    @property
    def ended(self) -> bool:
        """A finite source reached its end and every frame was taken."""
        with self._cond:
            return self._ended and self._slot is None

    def stats(self) -> dict[str, Any]:
        """Counters for the run summary: frames captured, delivered, dropped; reconnects; failures; ended."""
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
        """Stop the capture thread (waiting up to ``timeout`` s) and close the source; a thread stuck in the
        driver is left to die with the process (logged) and the source is then not closed.
        """
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
        was_down = False
        try:
            while True:
                try:
                    self._capture(was_down)
                    return
                except Exception as e:  # a bug or a driver crash (e.g. cv2.error): the loop goes neutral
                    log.debug("camera thread crashed", exc_info=True)
                    self.events.raise_("camera.disconnected", f"capture crashed: {type(e).__name__}: {e}")
                    if not self.source.live or self._stopping.is_set():
                        return
                    # A live camera is the car's only eye: reopen it rather than end the service.
                    self.failures += 1
                    self._close_quietly()
                    was_down = True
                    self._stopping.wait(self.reconnect_interval_s)
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _close_quietly(self) -> None:
        try:
            self.source.close()
        except Exception as e:  # already broken; reopening is what matters
            log.debug("closing %s after a crash: %s", self.source.describe(), e)

    def _capture(self, was_down: bool = False) -> None:
        src, stop = self.source, self._stopping
        opened = False
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
            t_capture = time.monotonic()
            prep = self._take_preparer()
            x = None
            if prep is not None:
                try:
                    x = prep(image)
                except ValueError as e:  # e.g. a grey or 16-bit frame: skip it, keep going
                    self.events.raise_("camera.read_error", str(e))
                    with self._cond:
                        self._pool.append(prep)
                    continue
            self._publish(image, index, t_capture, x, prep)

    def _take_preparer(self) -> Prepare | None:
        with self._cond:
            return self._pool.pop() if self._pool else None

    def _release(self, frame_id: int) -> None:
        prep = self._owner.pop(frame_id, None)
        if prep is not None:
            self._pool.append(prep)

    def _publish(self, image: Any, index: int, t_capture: float, x: Any, prep: Prepare | None) -> None:
        with self._cond:
            if self.source.lossless:
                while self._slot is not None and not self._stopping.is_set():
                    self._cond.wait(0.1)
            if self._slot is not None:
                self.dropped += 1
                self._release(self._slot.id)
            frame = CameraFrame(self._next_id, t_capture, image, index, x, time.monotonic())
            if prep is not None:
                self._owner[frame.id] = prep
            self._slot = frame
            self._next_id += 1
            self.captured += 1
            self._cond.notify_all()
