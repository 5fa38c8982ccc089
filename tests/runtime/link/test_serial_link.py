"""SerialDriveLink against the car simulator over real pseudo-terminals."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.link import DriveLink, LinkError, NullDriveLink, SerialDriveLink, open_link
from runtime.sim import CarSimulator, open_pty, start_pty_simulator


@pytest.fixture
def car() -> Iterator[tuple[CarSimulator, str]]:
    sim, path = start_pty_simulator(battery_mv=7400)
    yield sim, path
    sim.stop()


def wait_until(cond: Callable[[], bool], timeout: float = 2.0, link: DriveLink | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if link is not None:
            link.poll()
        if cond():
            return True
        time.sleep(0.005)
    return False


def test_commands_reach_the_car_with_seq_and_tag(car: tuple[CarSimulator, str]) -> None:
    sim, path = car
    link = SerialDriveLink(path)
    link.open()
    assert link.connected
    link.arm()
    assert wait_until(lambda: link.car_armed, link=link)  # DRIVE waits for the car's armed STATUS
    seqs = [link.drive(0.25, -0.5, tag=1000 + i) for i in range(5)]
    seqs.append(link.drive(2.0, -3.0, tag=(1 << 32) + 7))  # clamped; tag wraps to u32
    written = [s for s in seqs if s is not None]
    assert written == sorted(written) and len(set(written)) == 6
    assert sim.wait_for(lambda s: len(s.commands()) == 6)
    cmds = sim.commands()
    assert [c["seq"] for c in cmds] == seqs
    assert [c["tag"] for c in cmds] == [1000, 1001, 1002, 1003, 1004, 7]
    assert (cmds[0]["steering"], cmds[0]["throttle"]) == (0.25, -0.5)
    assert (cmds[-1]["steering"], cmds[-1]["throttle"]) == (1.0, -1.0)
    # written back to back, they reach the car as one burst: only the newest takes effect
    assert [c["applied"] for c in cmds] == [False] * 5 + [True]
    assert all(c.get("superseded") for c in cmds[:5])
    assert wait_until(lambda: link.last_status is not None and link.last_status.last_tag == 7, link=link)
    status = link.last_status
    assert status is not None and status.armed and status.battery_mv == 7400 and status.mode == "auto"
    link.close()
    assert sim.wait_for(lambda s: s.state == "disarmed")
    assert sim.output.neutral


def test_manual_override_is_visible(car: tuple[CarSimulator, str]) -> None:
    sim, path = car
    link = SerialDriveLink(path)
    link.open()
    link.arm()
    assert wait_until(lambda: link.car_armed, link=link)  # DRIVE waits for the car's armed STATUS
    link.drive(0.0, 0.3)
    sim.set_rc(-0.2, 0.1)
    sim.set_manual(True)
    assert wait_until(lambda: link.last_status is not None and link.last_status.manual, link=link)
    link.drive(0.0, 0.8, tag=5)
    assert sim.wait_for(lambda s: any(c["tag"] == 5 for c in s.commands()))
    assert (sim.output.steering, sim.output.throttle) == (-0.2, 0.1)  # the transmitter wins
    assert link.stats.manual_frames >= 1
    link.close()


def test_nonfinite_command_sends_neutral(car: tuple[CarSimulator, str]) -> None:
    sim, path = car
    link = SerialDriveLink(path)
    link.open()
    link.arm()
    assert wait_until(lambda: link.car_armed, link=link)  # DRIVE waits for the car's armed STATUS
    link.drive(0.1, 0.4)
    assert sim.wait_for(lambda s: s.output.throttle == 0.4)
    link.drive(float("nan"), 0.4)
    assert sim.wait_for(lambda s: s.output.neutral and any(e["event"] == "neutral" for e in s.events))
    assert link.stats.nonfinite == 1
    link.close()


def test_port_vanishes_and_comes_back(tmp_path: Path) -> None:
    dev = tmp_path / "rc-car"
    sim1, path = start_pty_simulator(link_path=dev)
    link = SerialDriveLink(path, reconnect_s=0.05)
    link.open()
    link.arm()
    assert wait_until(lambda: link.car_armed, link=link)  # DRIVE waits for the car's armed STATUS
    link.drive(0.0, 0.2, tag=1)
    assert sim1.wait_for(lambda s: s.output.throttle == 0.2)
    sim1.stop()  # USB unplugged: the pty and the /dev link are gone
    assert not dev.exists()
    for i in range(20):  # the loop keeps running; nothing raises
        link.drive(0.0, 0.2, tag=100 + i)
        link.poll()
        time.sleep(0.005)
    assert not link.connected
    assert link.stats.dropped >= 1
    sim2, _ = start_pty_simulator(link_path=dev)  # plugged back in (a fresh, disarmed board)
    try:
        def driving() -> bool:
            link.drive(0.0, 0.3, tag=500)
            return sim2.output.throttle == 0.3

        assert wait_until(driving, timeout=3.0, link=link)
        assert link.connected and link.stats.reconnects == 1
        assert sim2.commands()[-1]["tag"] == 500
        link.close()
    finally:
        sim2.stop()


def test_missing_port_is_waited_for(tmp_path: Path) -> None:
    dev = tmp_path / "rc-car"
    link = SerialDriveLink(str(dev), reconnect_s=0.05)
    link.open()  # no raise: USB may enumerate after the service starts
    assert not link.connected
    link.drive(0.0, 0.5)
    assert link.stats.dropped == 1
    sim, _ = start_pty_simulator(link_path=dev)
    try:
        link.arm()
        assert wait_until(lambda: link.connected, link=link)
        assert wait_until(lambda: link.car_armed, link=link)  # ARM went out on connect, the car confirmed
        link.drive(0.0, 0.5)
        assert sim.wait_for(lambda s: s.output.throttle == 0.5)
        link.close()
    finally:
        sim.stop()


def test_stuck_port_never_blocks_long() -> None:
    master, slave, path = open_pty()  # nobody reads the master: the kernel buffer fills up
    try:
        link = SerialDriveLink(path, write_timeout_s=0.02, reconnect_s=10)
        link.open()
        worst = 0.0
        for _ in range(3000):
            t0 = time.perf_counter()
            link.neutral()  # never paced, never withheld: the safety frame must not block either
            worst = max(worst, time.perf_counter() - t0)
            if not link.connected:
                break
        assert worst < 0.1
        assert link.stats.dropped >= 1
        link.close()
    finally:
        os.close(master)
        os.close(slave)


def test_bad_ports_and_urls(tmp_path: Path) -> None:
    regular = tmp_path / "not-a-tty"
    regular.write_text("x")
    with pytest.raises(LinkError, match="not a serial device"):
        SerialDriveLink(str(regular)).open()
    with pytest.raises(LinkError, match="unsupported link URL"):
        open_link("tcp://car:1234")
    with pytest.raises(LinkError, match="unknown option"):
        open_link("serial:///dev/ttyACM0?speed=9600")
    link = open_link("serial:///dev/ttyACM0?baud=57600&reconnect_s=0.2")
    assert isinstance(link, SerialDriveLink) and link.baud == 57600 and link.reconnect_s == 0.2
    assert isinstance(open_link("/dev/rc-car"), SerialDriveLink)


def test_null_link_counts_and_logs() -> None:
    link = open_link("null://")
    assert isinstance(link, NullDriveLink)
    link.open()
    link.arm()
    assert link.drive(0.5, 0.5, tag=3) == 1
    assert link.poll() is None and link.connected
    link.close()
    assert link.stats.sent == 3 and not link.connected


def test_sim_url_drives_an_in_process_car(tmp_path: Path) -> None:
    log = tmp_path / "cmds.jsonl"
    link = open_link(f"sim://?log={log}")
    assert isinstance(link, SerialDriveLink)
    link.open()
    link.arm()
    assert wait_until(lambda: link.car_armed, link=link)  # DRIVE waits for the car's armed STATUS
    link.drive(0.1, 0.2, tag=42)
    assert wait_until(lambda: link.last_status is not None and link.last_status.last_tag == 42, link=link)
    link.close()
    assert '"tag": 42' in log.read_text()
