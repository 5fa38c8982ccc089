"""The host link tells the truth about the car (issue 12): a fake car written from the spec holds
the other end of a real pseudo-terminal and answers (or not) byte by byte. Each test here failed on
the v1 link; the comment on each says how."""

from __future__ import annotations

import itertools
import os
import select
import time
from collections.abc import Callable, Iterator

import pytest

from runtime.link import LinkError, SerialDriveLink
from runtime.link.protocol import (
    _STATUS,
    CAR_TO_HOST,
    HOST_TO_CAR,
    PROTOCOL_VERSION,
    STATUS_FLAG_ARMED,
    FrameDecoder,
    MsgType,
    Status,
    WireFrame,
    encode,
    encode_frame,
)
from runtime.link.serial_link import ARM_RETRY_S, BURST_BYTES, LINE_SHARE, PENDING_MAX_AGE_S, lock_holder
from runtime.sim import open_pty


class FakeCar:
    """The car's end of a pty: reads host frames, writes STATUS frames we choose."""

    def __init__(self) -> None:
        self.master, self.slave, self.path = open_pty()
        os.set_blocking(self.master, False)
        self.decoder = FrameDecoder(accept=HOST_TO_CAR)
        self.frames: list[tuple[float, WireFrame]] = []
        self.bytes = 0
        self.seq = 0

    def read(self) -> list[WireFrame]:
        new: list[WireFrame] = []
        while select.select([self.master], [], [], 0)[0]:
            try:
                data = os.read(self.master, 65536)
            except BlockingIOError:
                break
            self.bytes += len(data)
            new += self.decoder.feed(data)
        now = time.monotonic()
        self.frames += [(now, f) for f in new]
        return new

    def types(self) -> list[int]:
        self.read()
        return [f.type for _, f in self.frames]

    def status(self, *, armed: bool, last_seq: int | None = None, version: int = PROTOCOL_VERSION, mode: int = 0,
               flags: int | None = None) -> None:
        if last_seq is None:
            self.read()
            last_seq = self.frames[-1][1].seq if self.frames else 0
        f = (STATUS_FLAG_ARMED if armed else 0) if flags is None else flags
        raw = encode_frame(MsgType.STATUS, self.seq, _STATUS.pack(version, mode, f, last_seq, 0, 0, 0, 7400, 0))
        self.seq += 1
        os.write(self.master, raw)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            os.close(fd)


@pytest.fixture
def fake() -> Iterator[FakeCar]:
    car = FakeCar()
    yield car
    car.close()


def until(cond: Callable[[], bool], link: SerialDriveLink | None = None, timeout: float = 2.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if link is not None:
            link.poll()
        if cond():
            return True
        time.sleep(0.002)
    return False


def armed_link(fake: FakeCar) -> SerialDriveLink:
    link = SerialDriveLink(fake.path)
    link.open()
    link.arm()
    fake.status(armed=True)
    assert until(lambda: link.car_armed, link)
    return link


def test_status_of_another_version_or_with_unknown_fields_is_counted_and_never_acted_on(fake: FakeCar) -> None:
    # v1: a STATUS with version 1 saying "disarmed" was accepted and the host re-armed on it;
    # unknown modes / reserved flags were dropped without a count.
    link = armed_link(fake)
    good = link.last_status
    arms = fake.types().count(MsgType.ARM)
    fake.status(armed=False, version=1)
    fake.status(armed=False, mode=2)
    fake.status(armed=False, flags=0x08)
    assert until(lambda: link.stats.status_invalid == 3, link)
    assert link.car_armed and link.last_status == good  # nothing acted on
    time.sleep(2 * ARM_RETRY_S)
    link.poll()
    assert fake.types().count(MsgType.ARM) == arms  # and no re-ARM
    link.close()


def test_drive_waits_for_an_armed_status_and_arm_is_retried_at_a_short_interval(fake: FakeCar) -> None:
    # v1: DRIVE frames went out straight after ARM whatever the car said; ARM was repeated at most
    # every 0.5 s, and only when a STATUS said disarmed.
    link = SerialDriveLink(fake.path)
    link.open()
    link.arm()  # the car does not answer
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        assert link.drive(0.1, 0.5, tag=1) is None
        time.sleep(0.01)
    types = fake.types()
    assert MsgType.DRIVE not in types
    arm_times = [t for t, f in fake.frames if f.type == MsgType.ARM]
    assert len(arm_times) >= 4, "ARM must be repeated about every 50 ms until the car confirms"
    assert max(b - a for a, b in itertools.pairwise(arm_times)) < 0.15
    assert link.stats.withheld_unarmed >= 5
    # a STATUS that predates the latest ARM does not confirm it
    last_arm = [f.seq for _, f in fake.frames if f.type == MsgType.ARM][-1]
    fake.status(armed=True, last_seq=(last_arm - 1) & 0xFFFF)
    assert not until(lambda: link.car_armed, link, timeout=0.02)
    fake.status(armed=True)
    assert until(lambda: link.car_armed, link)
    assert link.drive(0.1, 0.5, tag=2) is not None
    assert until(lambda: MsgType.DRIVE in fake.types())
    link.close()


def test_a_car_that_disarms_gets_no_drive_until_it_confirms_a_new_arm(fake: FakeCar) -> None:
    # v1: after a write stall the car disarmed itself, re-arming was rate-limited to 0.5 s, and 15
    # DRIVEs went to a disarmed car.
    link = armed_link(fake)
    link.drive(0.0, 0.3, tag=1)
    fake.read()
    n0 = len(fake.frames)
    t0 = time.monotonic()
    fake.status(armed=False)  # silence, a reset board, a stall: the car says it is disarmed
    arm_at = None
    while time.monotonic() - t0 < 0.3:
        assert link.drive(0.0, 0.3, tag=10) is None  # reads the STATUS first: never sent
        fake.read()
        if arm_at is None and any(f.type == MsgType.ARM for _, f in fake.frames[n0:]):
            arm_at = time.monotonic()
        time.sleep(0.005)
    assert MsgType.DRIVE not in [f.type for _, f in fake.frames[n0:]]
    assert arm_at is not None and arm_at - t0 < 2 * ARM_RETRY_S
    fake.status(armed=True)
    assert until(lambda: link.car_armed, link)
    assert link.drive(0.0, 0.3, tag=99) is not None
    link.close()


def test_seq_counts_written_frames_only_in_write_order(fake: FakeCar, tmp_path: os.PathLike[str]) -> None:
    # v1: dropped frames used up numbers (43 -> 106) and an ARM written on reconnect carried a
    # higher number than the DRIVE written after it.
    missing = os.path.join(str(tmp_path), "rc-car")
    link = SerialDriveLink(missing, reconnect_s=0.01)
    link.open()
    for i in range(20):
        link.drive(0.0, 0.2, tag=i)  # no port: dropped, no number used
    os.symlink(fake.path, missing)
    time.sleep(0.02)
    link.arm()  # connects (ARM on connect) and asks again
    fake.status(armed=True)
    assert until(lambda: link.car_armed, link)
    for i in range(5):
        link.drive(0.0, 0.2, tag=100 + i)
    link.neutral()
    assert until(lambda: fake.types().count(MsgType.NEUTRAL) == 1)
    seqs = [f.seq for _, f in fake.frames]
    assert seqs == list(range(len(seqs))), seqs  # 0, 1, 2, ... in the order they arrived
    link.close()


def test_drive_is_paced_to_the_line_and_the_newest_command_wins(fake: FakeCar) -> None:
    # v1: an unpaced caller got 628 DRIVE/s (25 kB/s) onto a 115200-baud line (11.5 kB/s).
    link = armed_link(fake)
    fake.read()
    start_bytes = fake.bytes
    t0 = time.monotonic()
    tag = 0
    t_status = t0
    while time.monotonic() - t0 < 0.5:
        tag += 1
        link.drive(0.0, 0.2, tag=tag)
        t_last = time.monotonic()
        fake.read()
        if t_last - t_status >= 0.05:  # a car that answers (no STATUS for 250 ms: DRIVE is withheld)
            fake.status(armed=True)
            t_status = t_last
    time.sleep(0.004)
    link.poll()  # a waiting command goes out at the next call
    late = time.monotonic() - t_last > PENDING_MAX_AGE_S  # a loaded machine: then it was dropped, as it should be
    elapsed = time.monotonic() - t0
    fake.read()
    budget = link.baud / 10 * LINE_SHARE * elapsed + BURST_BYTES + 2 * 24  # + a STATUS-triggered ARM/HB
    assert fake.bytes - start_bytes <= budget
    drives = [f for _, f in fake.frames if f.type == MsgType.DRIVE]
    assert link.stats.paced > 0 and tag > len(drives)
    tags = [int.from_bytes(f.payload[4:8], "little") for f in drives]
    assert tags == sorted(set(tags))  # never a backlog, never out of order
    assert tags[-1] == tag or late  # the newest command wins
    link.close()


def test_heartbeat_keeps_an_idle_link_visible(fake: FakeCar) -> None:
    # v1: HEARTBEAT was never sent.
    link = SerialDriveLink(fake.path)
    link.open()
    assert until(lambda: fake.types().count(MsgType.HEARTBEAT) >= 2, link, timeout=1.0)
    link.close()


def test_a_second_user_of_the_port_is_refused_naming_the_holder(fake: FakeCar) -> None:
    # v1: the second runtime logged one warning and "drove" a car it never reached.
    first = SerialDriveLink(fake.path)
    first.open()
    with pytest.raises(LinkError, match=rf"in use by pid {os.getpid()} \(.*python"):
        SerialDriveLink(fake.path).open()
    assert lock_holder(fake.path).startswith(f"pid {os.getpid()}")
    first.close()
    second = SerialDriveLink(fake.path)
    second.open()  # released: fine now
    second.close()


def test_a_device_that_is_not_a_serial_port_is_refused() -> None:
    # v1: /dev/null passed the character-device check, then the open failed forever, quietly.
    with pytest.raises(LinkError, match="not a serial port"):
        SerialDriveLink("/dev/null").open()


def test_health_says_whether_the_car_is_there(fake: FakeCar, tmp_path: os.PathLike[str]) -> None:
    # v1: no such state; a car that never answered looked like a working link.
    missing = SerialDriveLink(os.path.join(str(tmp_path), "nothing"))
    missing.open()
    assert missing.health == "no_port" and "does not exist" in missing.describe_health()
    assert missing.stats.health == "no_port" and not missing.reached_car
    link = SerialDriveLink(fake.path)
    link.open()
    assert until(lambda: link.health == "no_status", link, timeout=1.5) and not link.reached_car
    link.arm()
    fake.status(armed=True)
    assert until(lambda: link.health == "ok", link) and link.reached_car
    fake.status(armed=True, mode=1)
    assert until(lambda: link.health == "manual", link)
    fake.status(armed=False)
    assert until(lambda: link.health == "disarmed", link)
    link.close()


def test_status_decoder_sees_what_the_fake_car_sends() -> None:
    """The fake car's frames are real protocol frames (a fake that speaks nonsense proves nothing)."""
    raw = encode(Status(PROTOCOL_VERSION, 0, STATUS_FLAG_ARMED, 3, 0, 0, 0, 7400, 0), 0)
    assert [f.type for f in FrameDecoder(accept=CAR_TO_HOST).feed(raw)] == [MsgType.STATUS]


def test_a_car_that_stops_answering_gets_a_neutral_and_no_drive_until_it_answers(fake: FakeCar) -> None:
    # Issue 21: the host kept writing DRIVEs to a car that had stopped reading (a hung USB board);
    # they were queued and replayed when it read again.
    link = armed_link(fake)
    assert link.drive(0.0, 0.2, tag=1) is not None
    time.sleep(0.3)  # no STATUS for longer than the car's failsafe time
    assert link.drive(0.0, 0.2, tag=2) is None
    assert link.drive(0.0, 0.2, tag=3) is None
    assert link.stats.withheld_stale == 2 and link.stats.stale_flushes == 1
    frames = fake.read()
    assert [f.type for f in frames if f.type in (MsgType.DRIVE, MsgType.NEUTRAL)][-1] == MsgType.NEUTRAL
    assert not [f for f in frames if f.type == MsgType.DRIVE and int.from_bytes(f.payload[4:8], "little") > 1]
    fake.status(armed=True)  # the car answers again
    assert until(lambda: link.drive(0.0, 0.2, tag=4) is not None, link, timeout=1.0)
    link.close()
