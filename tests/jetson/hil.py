"""Hardware-in-the-loop helpers: the reference firmware's .elf on a simulated ATmega328P
(jetson/firmware/sim, simavr 1.6), its pins read back as JSON lines, its UART on a pty.

``Board`` runs ``rc-firmware-sim`` and collects its lines; ``HostPort`` is the host's end of the
board's serial port. All times are simulated microseconds (``t_us``) from the chip's power-up.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from runtime.link.protocol import (
    CAR_TO_HOST,
    HOST_TO_CAR,
    FrameDecoder,
    Message,
    Status,
    decode_message,
    encode,
)

FIRMWARE = Path(__file__).resolve().parents[2] / "jetson" / "firmware"
SIMAVR_HEADER = Path("/usr/include/simavr/sim_avr.h")
Event = dict[str, Any]


def missing_tools() -> str | None:
    """Why the HIL suite cannot run here, or None."""
    needs = {"gcc": "gcc", "make": "make", "avr-gcc": "gcc-avr avr-libc binutils-avr"}
    for tool, pkg in needs.items():
        if shutil.which(tool) is None:
            return f"{tool} missing: apt-get install {pkg}"
    if not SIMAVR_HEADER.is_file():
        return "simavr missing: apt-get install simavr libsimavr-dev libsimavrparts1 (simavr 1.6)"
    return None


def build(out: Path, car_flags: str = "") -> tuple[Path, Path]:
    """``make sim`` into ``out``: (rc-firmware-sim, rc_car.elf)."""
    subprocess.run(["make", "-s", "-C", str(FIRMWARE), f"BUILD={out}", f"CAR_FLAGS={car_flags}", "sim"],
                   check=True, capture_output=True, text=True)
    return out / "rc-firmware-sim", out / "rc_car.elf"


@dataclass(frozen=True)
class Mapping:
    """The firmware's per-car output mapping (main.c's constants, or CAR_FLAGS overrides)."""

    steer_center: int = 1500
    steer_range: int = 400
    steer_reversed: int = 0
    throttle_neutral: int = 1500
    throttle_forward: int = 500
    throttle_reverse: int = 500
    throttle_limit: int = 1000

    @classmethod
    def of_firmware(cls, car_flags: str = "") -> Mapping:
        text = (FIRMWARE / "main.c").read_text()
        names = {"STEER_CENTER_US": "steer_center", "STEER_RANGE_US": "steer_range", "STEER_REVERSED": "steer_reversed",
                 "THROTTLE_NEUTRAL_US": "throttle_neutral", "THROTTLE_FORWARD_US": "throttle_forward",
                 "THROTTLE_REVERSE_US": "throttle_reverse", "THROTTLE_LIMIT": "throttle_limit"}
        values = {}
        for macro, field in names.items():
            m = re.search(rf"^#define {macro} (-?\d+)", text, re.M)
            assert m, f"{macro} not found in main.c"
            values[field] = int(m.group(1))
        for macro, value in re.findall(r"-D(\w+)=(-?\d+)", car_flags):
            values[names[macro]] = int(value)
        return cls(**values)

    def steering_us(self, steering: int) -> float:
        """The spec's linear mapping of a wire value (-1000..1000) to a pulse width (µs)."""
        s = -steering if self.steer_reversed else steering
        return self.steer_center + s * self.steer_range / 1000

    def throttle_us(self, throttle: int) -> float:
        t = max(-self.throttle_limit, min(self.throttle_limit, throttle))
        return self.throttle_neutral + t * (self.throttle_forward if t > 0 else self.throttle_reverse) / 1000


class Board:
    """A running ``rc-firmware-sim``: its JSON lines (``events``) and its control input."""

    def __init__(self, exe: Path, elf: Path, workdir: Path, *args: str) -> None:
        self.pty = workdir / "rc-car"
        self.stderr_path = workdir / "sim.stderr"
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - lives as long as the process
        self.launched = time.monotonic()  # the simulator's clock starts after this
        self.proc = subprocess.Popen(
            [str(exe), "--pty", str(self.pty), "--elf", str(elf), "--control", "-", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1,
        )
        self.events: list[Event] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()
        assert self.wait_for(lambda e: e.get("event") == "start", 20), self.describe_failure()
        # setup() has run once Timer1 drives the servo pin; bytes before that are lost, as on a board
        assert self.wait_for(lambda e: e.get("pin") == "servo" and "pulse_us" in e, 20), self.describe_failure()

    def _read(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            event = json.loads(line)
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def describe_failure(self) -> str:
        return f"rc-firmware-sim exit={self.proc.poll()} stderr={self.stderr_path.read_text()[-2000:]!r}"

    def wait_for(self, pred: Callable[[Event], bool], timeout: float = 30.0, after: int = 0) -> Event | None:
        """The first event (from index ``after``) for which ``pred`` holds, waiting up to ``timeout``
        wall seconds (the simulator may run slower than real time on a loaded machine)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            i = after
            while True:
                while i < len(self.events):
                    if pred(self.events[i]):
                        return self.events[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and i >= len(self.events)):
                    return None
                self._cond.wait(min(left, 0.2))

    def control(self, line: str) -> Event:
        """Send a control line; return its echo (with the simulated time it took effect)."""
        assert self.proc.stdin is not None
        n = len(self.events)
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        echo = self.wait_for(lambda e: e.get("event") in ("control", "error"), after=n)
        assert echo is not None and echo["event"] == "control", f"{line!r}: {echo} {self.describe_failure()}"
        return echo

    def now_us(self) -> int:
        return int(self.control("mark")["t_us"])

    def run_until_us(self, t_us: float, timeout: float = 60.0, poll_s: float = 0.02) -> None:
        """Wait (wall clock) until the board's simulated time has passed ``t_us``."""
        deadline = time.monotonic() + timeout
        while self.now_us() < t_us:
            assert time.monotonic() < deadline, f"simulated time did not reach {t_us} µs"
            time.sleep(poll_s)

    def sleep_sim_ms(self, ms: float) -> int:
        """Let ``ms`` of simulated time pass; return the simulated time then."""
        target = self.now_us() + ms * 1000
        self.run_until_us(target)
        return self.now_us()

    def pulses(self, pin: str, since_us: float = 0) -> list[tuple[int, float]]:
        """(t_us, pulse_us) of each pulse-width change on ``servo`` or ``esc``."""
        with self._cond:
            return [(e["t_us"], e["pulse_us"]) for e in self.events
                    if e.get("pin") == pin and "pulse_us" in e and e["t_us"] >= since_us]

    def pulse_at(self, pin: str, t_us: float) -> float:
        """The pulse width the pin carried at ``t_us`` (the last change at or before it)."""
        before = [width for t, width in self.pulses(pin) if t <= t_us]
        assert before, f"{pin}: no pulse yet at {t_us} µs"
        return before[-1]

    def of(self, kind: str, since_us: float = 0, **match: Any) -> list[Event]:
        with self._cond:
            return [e for e in self.events if e.get("event") == kind and e["t_us"] >= since_us
                    and all(e.get(k) == v for k, v in match.items())]

    def led(self) -> list[tuple[int, bool]]:
        with self._cond:
            return [(e["t_us"], e["on"]) for e in self.events if e.get("pin") == "led"]

    def rx_frames(self, since_us: float = 0) -> Iterator[tuple[float, Message]]:
        """Host frames the board received, decoded from the rx bursts: (t_us at which the frame's last
        byte was taken, message). Only complete, CRC-valid frames of the host's direction come out.
        Within a burst, bytes are taken at an even pace from ``t0_us`` to ``t_us``."""
        dec = FrameDecoder(accept=HOST_TO_CAR)
        for e in self.of("rx"):
            data = bytes.fromhex(e["hex"])
            per_byte = (e["t_us"] - e["t0_us"]) / max(len(data), 1)
            for k in range(len(data)):
                for f in dec.feed(data[k:k + 1]):
                    t_end = e["t0_us"] + (k + 1) * per_byte
                    if t_end < since_us:
                        continue
                    try:
                        yield t_end, decode_message(f)
                    except ValueError:
                        continue  # a payload error: the car ignores it too

    def delivered(self, sent: int, timeout: float = 30.0) -> int:
        """Simulated time at which the board had taken the first ``sent`` bytes the host wrote."""
        e = self.wait_for(lambda e: e.get("event") == "rx" and e["bytes"] >= sent, timeout)
        assert e is not None, f"the board never took {sent} bytes: {self.describe_failure()}"
        return int(e["t_us"])

    def next_pulse(self, pin: str, since_us: float, timeout: float = 30.0) -> tuple[int, float]:
        """The first pulse-width change on ``pin`` at or after ``since_us``."""
        e = self.wait_for(lambda e: e.get("pin") == pin and "pulse_us" in e and e["t_us"] >= since_us, timeout)
        assert e is not None, f"no {pin} pulse change after {since_us} µs: {self.describe_failure()}"
        return int(e["t_us"]), float(e["pulse_us"])

    def pulse_where(self, pin: str, since_us: float, ok: Callable[[float], bool], timeout: float = 30.0) -> tuple[int, float]:
        """The first pulse-width change on ``pin`` at or after ``since_us`` whose width is ``ok``."""
        e = self.wait_for(lambda e: e.get("pin") == pin and "pulse_us" in e and e["t_us"] >= since_us
                          and ok(e["pulse_us"]), timeout)
        assert e is not None, f"{pin}: no such pulse after {since_us} µs; seen {self.pulses(pin, since_us)}"
        return int(e["t_us"]), float(e["pulse_us"])

    def stop(self) -> Event | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        self._stderr.close()
        exits = self.of("exit")
        return exits[-1] if exits else None


class HostPort:
    """The host's end of the board's serial port (raw, like pyserial on /dev/rc-car)."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self.seq = 0
        self.sent = 0  # bytes written, to match the board's cumulative rx "bytes"
        self.decoder = FrameDecoder(accept=CAR_TO_HOST)

    def send(self, msg: Message | bytes) -> int:
        """Write one frame (or raw bytes); return the total bytes written so far."""
        data = msg if isinstance(msg, bytes) else encode(msg, self.seq)
        if not isinstance(msg, bytes):
            self.seq = (self.seq + 1) & 0xFFFF
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view):]
            except BlockingIOError:
                time.sleep(0.002)  # the pty is full: the board reads at its baud rate
        self.sent += len(data)
        return self.sent

    def statuses(self) -> list[Status]:
        out = []
        while True:
            try:
                data = os.read(self.fd, 4096)
            except BlockingIOError:
                break
            for f in self.decoder.feed(data):
                msg = decode_message(f)
                if isinstance(msg, Status):
                    out.append(msg)
        return out

    def close(self) -> None:
        os.close(self.fd)
