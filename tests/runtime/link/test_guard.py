"""The deadline guard process (runtime/link/guard.py) against a car simulator in another process:
NEUTRAL reaches the car on time while the runtime's interpreter cannot run Python at all, and at
once when the runtime is killed. Both failed on the v1 runtime (no guard): the first waited for
the GIL, the second for the car's own 250 ms failsafe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.events import Events
from runtime.link import SerialDriveLink
from runtime.link.protocol import FAILSAFE_MS
from runtime.policy import Command
from runtime.sim import CarSimulator, start_pty_simulator
from runtime.watchdog import Watchdog

REPO = Path(__file__).resolve().parents[3]
DEADLINE_S = 0.1
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture
def car_process(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """rc-car-sim in its own process (this test blocks this interpreter), logging JSON lines."""
    dev, log = tmp_path / "rc-car", tmp_path / "car.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "runtime.sim.cli", "--pty-link", str(dev), "--log", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV)
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("rc-car-sim: listening on")
        yield str(dev), log
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def events(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def hold_the_gil(seconds: float) -> None:
    """Keep this interpreter's GIL for about ``seconds`` without a bytecode boundary (one C call):
    no other Python thread of this process, the watchdog thread included, can run meanwhile."""
    n = 1_000_000
    t0 = time.perf_counter()
    sum(range(n))
    per = max(time.perf_counter() - t0, 1e-4) / n
    sum(range(int(seconds / per)))


@pytest.mark.parametrize("guard", [True, False], ids=["guard", "no-guard"])
def test_neutral_reaches_the_car_on_time_while_the_interpreter_is_stuck(
    car_process: tuple[str, Path], guard: bool
) -> None:
    port, log = car_process
    link = SerialDriveLink(port, guard=guard)
    link.open()
    wd = Watchdog(link, Events(), deadline_s=DEADLINE_S).start()
    try:
        t_end = time.monotonic() + 3
        i = 0
        while time.monotonic() < t_end and not any(e["event"] == "drive" and e["applied"] for e in events(log)):
            i += 1
            wd.drive(Command(0.0, 0.3, True, 0.0, 0.3), time.monotonic(), i)
            time.sleep(0.02)
        t_last = time.monotonic()
        wd.drive(Command(0.0, 0.3, True, 0.0, 0.3), t_last, 9999)
        hold_the_gil(0.6)  # an inference call that never releases the GIL, a stuck C extension
        time.sleep(0.1)
    finally:
        wd.stop()
        link.close()
    evs = events(log)
    assert any(e["event"] == "drive" and e["tag"] == 9999 for e in evs)
    stop = next((e["t"] for e in evs if e["t"] > t_last and e["event"] in ("neutral", "failsafe")), None)
    assert stop is not None
    if guard:
        assert stop - t_last < DEADLINE_S + 0.1, f"neutral {1000 * (stop - t_last):.0f} ms after the last command"
        assert link.stats.guard_neutrals >= 1
    else:  # the v1 situation: only the car's own failsafe (250 ms) stops it
        assert stop - t_last >= FAILSAFE_MS / 1000 - 0.01


DRIVER = textwrap.dedent(
    """
    import sys, time
    from runtime.events import Events
    from runtime.link import SerialDriveLink
    from runtime.policy import Command
    from runtime.watchdog import Watchdog
    link = SerialDriveLink(sys.argv[1])
    link.open()
    wd = Watchdog(link, Events(), deadline_s=0.1).start()
    i = 0
    while True:
        i += 1
        wd.drive(Command(0.0, 0.4, True, 0.0, 0.4), time.monotonic(), i)
        if i == 20:
            print("driving", flush=True)
        time.sleep(0.02)
    """
)


def test_a_killed_runtime_leaves_the_car_neutral_and_disarmed_at_once() -> None:
    sim: CarSimulator
    sim, path = start_pty_simulator()
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, path], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "driving"
        assert sim.wait_for(lambda s: s.output.throttle == 0.4, timeout=5)
        t_kill = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        assert sim.wait_for(lambda s: s.state == "disarmed", timeout=2)
        t_stop = sim.output.t
    finally:
        proc.kill()
        proc.wait()
        sim.stop()
    neutral = [e for e in sim.events if e["event"] == "neutral" and e["t"] >= t_kill]
    assert neutral and neutral[0]["disarm"], "the guard's last word is NEUTRAL with disarm"
    assert t_stop - t_kill < 0.1, f"stopped {1000 * (t_stop - t_kill):.0f} ms after the kill (failsafe: 250 ms)"
