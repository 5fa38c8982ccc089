"""Fault tests over real pseudo-terminals: a killed driver, arming, the rc-car-sim process."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from runtime.link import SerialDriveLink
from runtime.link.protocol import FAILSAFE_MS, Drive, encode
from runtime.sim import start_pty_simulator
from tests.conftest import checkout_env, python_module

# A minimal "runtime": arms, then drives at 50 Hz until killed.
DRIVER = textwrap.dedent(
    """
    import sys, time
    from runtime.link import SerialDriveLink
    link = SerialDriveLink(sys.argv[1])
    link.open()
    link.arm()
    i = 0
    while True:
        link.drive(0.1, 0.4, tag=i)
        link.poll()
        if i == 5:
            print("driving", flush=True)
        i += 1
        time.sleep(0.02)
    """
)


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, env=checkout_env())


def test_killed_driver_leaves_car_neutral_within_failsafe(record_property: Callable[[str, object], None]) -> None:
    sim, path = start_pty_simulator()
    proc = _spawn(DRIVER, path)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "driving"
        assert sim.wait_for(lambda s: s.output.throttle == 0.4 and len(s.commands()) >= 10, timeout=5)
        time.sleep(random.uniform(0, 0.02))  # die at a random point of the 20 ms send cycle
        t_kill = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        assert sim.wait_for(lambda s: s.output.neutral, timeout=2)
        stop = sim.output
        last_cmd = sim.commands()[-1]
    finally:
        proc.kill()
        proc.wait()
        sim.stop()
    kill_to_neutral_ms = (stop.t - t_kill) * 1000
    last_frame_to_neutral_ms = (stop.t - last_cmd["t"]) * 1000
    record_property("kill_to_neutral_ms", round(kill_to_neutral_ms, 1))
    print(f"\nkill -> neutral {kill_to_neutral_ms:.1f} ms; last drive frame -> neutral {last_frame_to_neutral_ms:.1f} ms")
    assert stop.state == "failsafe"
    # The car acts on the last frame it got, at exactly FAILSAFE_MS (+ scheduling slack on a busy CI box).
    assert FAILSAFE_MS <= last_frame_to_neutral_ms <= FAILSAFE_MS + 30
    assert kill_to_neutral_ms <= FAILSAFE_MS + 30


def test_never_moves_before_arm() -> None:
    sim, path = start_pty_simulator()
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        for seq in range(30):
            os.write(fd, encode(Drive(800, 900, seq), seq))
            time.sleep(0.002)
        assert sim.wait_for(lambda s: len(s.commands()) == 30)
        assert [o.neutral for o in sim.outputs] == [True]  # never changed once
        assert not any(c["applied"] for c in sim.commands())
        assert sim.state == "disarmed"
        os.close(fd)
    finally:
        sim.stop()


def test_close_disarms_so_a_new_host_must_arm() -> None:
    sim, path = start_pty_simulator()
    try:
        link = SerialDriveLink(path)
        link.open()
        link.arm()
        deadline = time.monotonic() + 3
        while not link.car_armed and time.monotonic() < deadline:  # DRIVE waits for the car's armed STATUS
            link.poll()
            time.sleep(0.005)
        link.drive(0.0, 0.5)
        assert sim.wait_for(lambda s: s.output.throttle == 0.5)
        link.close()
        assert sim.wait_for(lambda s: s.state == "disarmed" and s.output.neutral)
        second = SerialDriveLink(path)
        second.open()
        assert second.drive(0.0, 0.5, tag=9) is None  # never sent to a car that has not confirmed ARM
        second.heartbeat()
        assert sim.wait_for(lambda s: any(e["event"] == "heartbeat" for e in s.events))
        assert second.stats.withheld_unarmed == 1 and sim.commands()[-1]["tag"] != 9
        assert sim.state == "disarmed" and sim.output.neutral
        second.close()
    finally:
        sim.stop()


def test_rc_car_sim_process(tmp_path: Path) -> None:
    dev, log = tmp_path / "rc-car", tmp_path / "cmds.jsonl"
    proc = subprocess.Popen(
        [*python_module("runtime.sim.cli"), "--pty-link", str(dev), "--log", str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=checkout_env(),
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("rc-car-sim: listening on")
        link = SerialDriveLink(str(dev))
        link.open()
        link.arm()
        deadline = time.monotonic() + 3
        while not link.car_armed and time.monotonic() < deadline:  # DRIVE waits for the car's armed STATUS
            link.poll()
            time.sleep(0.005)
        for i in range(5):
            link.drive(-0.3, 0.6, tag=70 + i)
            time.sleep(0.01)
        proc.send_signal(signal.SIGUSR1)  # the RC transmitter takes over

        def manual_seen() -> bool:
            link.poll()
            return link.last_status is not None and link.last_status.manual

        deadline = time.monotonic() + 3
        while not manual_seen() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert manual_seen()
        link.close()
        time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
        proc.wait()
    events = [json.loads(line) for line in log.read_text().splitlines()]
    drives = [e for e in events if e["event"] == "drive"]
    assert [d["tag"] for d in drives] == [70, 71, 72, 73, 74]
    assert {"t", "seq", "tag", "steering", "throttle", "state"} <= set(drives[0])
    assert (drives[0]["steering"], drives[0]["throttle"], drives[0]["state"]) == (-0.3, 0.6, "armed")
    names = [e["event"] for e in events if e["event"] != "drive"]
    assert names[0] == "arm" and next(n for n in names if n != "arm") == "manual_on"  # ARM may be retried
    assert not dev.exists()
