"""The car simulator: a CarModel served on a file descriptor (pty master or serial port) by a thread.

It keeps the firmware's timing (it wakes exactly at the 250 ms failsafe deadline), logs every
accepted command and state change as JSON lines, and records every change of its outputs so that
tests can measure when the car stopped.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from runtime.sim.car import CarModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputChange:
    t: float  # time.monotonic()
    steering: float  # [-1, 1]
    throttle: float
    state: str

    @property
    def neutral(self) -> bool:
        return self.steering == 0 and self.throttle == 0


class CarSimulator:
    """Serves ``model`` on ``fd`` from a background thread; ``start()``/``stop()``.

    ``events`` holds every event dict the model emitted (arm, drive, neutral, heartbeat, failsafe,
    disarm_timeout, manual_on/off); ``outputs`` every change of the outputs. Both only grow, so
    other threads may read them while it runs.
    """

    def __init__(
        self,
        fd: int,
        *,
        model: CarModel | None = None,
        log_stream: IO[str] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.fd = fd
        self.model = model or CarModel()
        self.model.on_event = self._on_event
        self.log_stream = log_stream
        self.events: list[dict[str, Any]] = []
        self.outputs: list[OutputChange] = [OutputChange(time.monotonic(), 0.0, 0.0, self.model.state)]
        self.tx_dropped = 0
        self._on_close = on_close
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._stalled_until = 0.0
        self._thread = threading.Thread(target=self._run, name="car-sim", daemon=True)
        os.set_blocking(fd, False)

    # -- control -------------------------------------------------------------------------------
    def start(self) -> CarSimulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and close the port (the host sees the device vanish)."""
        if self._stop.is_set():
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        for fd in (self._wake_r, self._wake_w, self.fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._on_close is not None:
            self._on_close()

    def __enter__(self) -> CarSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_manual(self, on: bool) -> None:
        """Flip the RC transmitter's override switch."""
        with self._lock:
            self._send(self.model.set_manual(on, time.monotonic()))
            self._record(time.monotonic())

    def stall(self, seconds: float) -> None:
        """Stop reading and sending for ``seconds`` (a hung USB-serial board): what the host writes
        meanwhile waits in the port's buffers and arrives at once afterwards. The car's timers keep
        running (the failsafe fires as on the real car)."""
        self._stalled_until = time.monotonic() + seconds
        os.write(self._wake_w, b"s")

    def set_rc(self, steering: float, throttle: float) -> None:
        with self._lock:
            self.model.set_rc(round(steering * 1000), round(throttle * 1000))
            self._record(time.monotonic())

    # -- observation ---------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self.model.state

    @property
    def output(self) -> OutputChange:
        return self.outputs[-1]

    def commands(self) -> list[dict[str, Any]]:
        """Accepted drive commands, in order."""
        return [e for e in list(self.events) if e["event"] == "drive"]

    def wait_for(self, predicate: Callable[[CarSimulator], bool], timeout: float = 2.0) -> bool:
        """Block until ``predicate(self)`` holds after some event or output change, or time out."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.05))
        return True

    # -- thread --------------------------------------------------------------------------------
    def _run(self) -> None:
        model = self.model
        while not self._stop.is_set():
            now = time.monotonic()
            deadline = model.next_deadline()
            timeout = 0.05 if deadline is None else min(max(deadline - now, 0.0), 0.05)
            if model.decoder.pending:
                timeout = min(timeout, 0.005)  # let the gap rule run on time
            stalled = now < self._stalled_until
            watch = [self._wake_r] if stalled else [self.fd, self._wake_r]
            try:
                ready, _, _ = select.select(watch, [], [], timeout)
            except (OSError, ValueError):
                break
            if self._wake_r in ready:
                os.read(self._wake_r, 64)
            data: bytes | None = b""
            if self.fd in ready:
                data = self._read()
                if data is None:
                    break
            with self._lock:
                now = time.monotonic()
                frames = model.receive(data, now) if data else model.tick(now)
                if now < self._stalled_until:
                    self.tx_dropped += len(frames)  # the hung board passes nothing either way
                else:
                    self._send(frames)
                self._record(now)

    def _read(self) -> bytes | None:
        try:
            return os.read(self.fd, 4096)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno == errno.EIO:  # pty with no slave open: wait for the host to come
                time.sleep(0.01)
                return b""
            log.warning("car simulator: port read failed: %s", exc)
            return None

    def _send(self, frames: list[bytes]) -> None:
        for frame in frames:
            try:
                os.write(self.fd, frame)
            except (BlockingIOError, OSError):
                self.tx_dropped += 1  # nobody reading: a real UART drops too

    def _record(self, now: float) -> None:
        m = self.model
        last = self.outputs[-1]
        steering, throttle = m.steering / 1000, m.throttle / 1000
        if (steering, throttle, m.state) != (last.steering, last.throttle, last.state):
            self.outputs.append(OutputChange(now, steering, throttle, m.state))
            self._changed.notify_all()

    def _on_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        if self.log_stream is not None:
            self.log_stream.write(json.dumps(event) + "\n")
            self.log_stream.flush()
        self._changed.notify_all()


def open_pty() -> tuple[int, int, str]:
    """A raw pseudo-terminal pair: (master fd, slave fd, slave path)."""
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no CR/LF translation: the line carries binary frames
    return master, slave, os.ttyname(slave)


def start_pty_simulator(
    *,
    link_path: str | Path | None = None,
    log_path: str | Path | None = None,
    log_stream: IO[str] | None = None,
    **model_kwargs: Any,
) -> tuple[CarSimulator, str]:
    """Start a simulator on a fresh pty; returns (simulator, path the host opens).

    ``link_path`` makes a symlink to the slave (like udev's /dev/rc-car); it is removed on stop().
    The simulator keeps the slave open itself, so a host may close and reopen it at will.
    """
    master, slave, slave_path = open_pty()
    stream = log_stream
    owned: IO[str] | None = None
    if log_path is not None:
        owned = stream = open(log_path, "a", buffering=1)  # noqa: SIM115 - closed in on_close
    link = Path(link_path) if link_path is not None else None
    if link is not None:
        link.unlink(missing_ok=True)
        link.symlink_to(slave_path)

    def on_close() -> None:
        with contextlib.suppress(OSError):
            os.close(slave)
        if link is not None and link.is_symlink() and os.readlink(link) == slave_path:
            link.unlink()
        if owned is not None:
            owned.close()

    sim = CarSimulator(master, model=CarModel(**model_kwargs), log_stream=stream, on_close=on_close)
    return sim.start(), str(link) if link is not None else slave_path
