"""SIGTERM/SIGINT -> a stop event, seen even while the main thread is stuck in native code."""

from __future__ import annotations

import logging
import signal
import socket
import threading
from types import FrameType

log = logging.getLogger("runtime")


class SignalStop:
    """SIGTERM/SIGINT set ``stop``. The C-level wakeup fd is read by a thread too, so the stop is
    seen (and the watchdog sends neutral) even while the main thread is stuck in native code,
    where Python signal handlers cannot run. A second signal changes nothing: the car is already
    being stopped, and the exit status stays that of a normal stop."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.received = 0
        self._r, self._w = socket.socketpair()
        self._w.setblocking(False)
        self._old_fd = signal.set_wakeup_fd(self._w.fileno(), warn_on_full_buffer=False)
        self._old = {s: signal.signal(s, self._handler) for s in (signal.SIGTERM, signal.SIGINT)}
        threading.Thread(target=self._watch, name="signals", daemon=True).start()

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.received += 1  # counted here: the wakeup thread may already have set ``stop``
        if self.received > 1:
            log.info("received %s: already stopping", signal.Signals(signum).name)
            return
        log.info("received %s: stopping", signal.Signals(signum).name)
        self.stop.set()

    def _watch(self) -> None:
        try:
            if self._r.recv(1):
                self.stop.set()
        except OSError:
            pass  # closed by restore()

    def restore(self) -> None:
        """Put back the signal handlers and wakeup fd that were there before, and close the pipe."""
        signal.set_wakeup_fd(self._old_fd)
        for s, h in self._old.items():
            signal.signal(s, h)
        self._w.close()
        self._r.close()
