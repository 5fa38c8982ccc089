"""Hardware in the loop: the reference firmware's own .elf (avr-gcc) on a simulated ATmega328P at
16 MHz (simavr 1.6, jetson/firmware/sim), its UART on a pty, its servo/ESC pulses measured.

Every time here is simulated time from the chip (``t_us``), so the figures hold even when this
machine runs the simulator slower than real time. Measured figures are printed (run with -s).
"""

from __future__ import annotations

import binascii
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.link.protocol import (
    BURST_MS,
    PROTOCOL_VERSION,
    Arm,
    Drive,
    Heartbeat,
    MsgType,
    Neutral,
    encode,
    encode_frame,
)
from tests.jetson.hil import Board, HostPort, Mapping, build, missing_tools
from tests.runtime.link.test_fuzz import flip_bits
from tests.runtime.link.vectors import load_vectors

pytestmark = pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))

NEUTRAL_US = 1500
NEUTRAL_OCR = 2 * NEUTRAL_US - 1  # fast PWM: a pulse lasts OCR1x + 1 ticks of 0.5 µs
TOL_US = 1.0  # the spec's mapping, measured on the pin
PERIOD_US = 20000
LOOP_US = 2000  # the firmware's main loop sees a byte or a timer within this (measured: well under 1 ms)
RC_JITTER_US = 10  # receiver pulses are timed in INT0/INT1/PCINT0 handlers: interrupt latency shows
BURST_US = BURST_MS * 1000
TICK_MS = 1  # the firmware's clock (Timer0) counts whole milliseconds: its timeouts are +-1 tick

# Per-car settings other than main.c's, built in with CAR_FLAGS (the firmware reads them at build time).
OTHER_CAR = "-DTHROTTLE_LIMIT=400 -DSTEER_REVERSED=1 -DSTEER_RANGE_US=300 -DTHROTTLE_REVERSE_US=250"


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build(tmp_path_factory.mktemp("hil-build"))


BoardFactory = Callable[..., tuple[Board, HostPort]]


@pytest.fixture
def board(firmware: tuple[Path, Path], tmp_path: Path) -> Iterator[BoardFactory]:
    """Start a board (fresh power-up) and open the host's end of its serial port."""
    started: list[tuple[Board, HostPort]] = []

    def start(*args: str, elf: Path | None = None) -> tuple[Board, HostPort]:
        b = Board(firmware[0], elf or firmware[1], tmp_path, *args)
        host = HostPort(b.pty)
        started.append((b, host))
        return b, host

    yield start
    for b, host in started:
        host.close()
        exit_line = b.stop()
        print(f"\n[hil] simulator exit: {exit_line}")


def arm_and_drive(b: Board, host: HostPort, steering: int, throttle: int, tag: int = 1) -> int:
    """ARM then DRIVE; returns the simulated time the DRIVE's last byte was taken."""
    host.send(Arm())
    return b.delivered(host.send(Drive(steering, throttle, tag)))


def test_power_up_is_neutral_and_noise_before_arm_moves_nothing(board: BoardFactory) -> None:
    b, host = board()
    for pin in ("servo", "esc"):
        t, width = b.next_pulse(pin, 0)
        assert t < PERIOD_US, f"{pin}: the first pulse came at {t} µs, not in the first period"
        assert abs(width - NEUTRAL_US) <= TOL_US, f"{pin}: first pulse {width} µs"
    rng = random.Random(14)
    noise = b"U-Boot 2020.04 (Jetson)\r\nDRAM: 3.8 GiB\r\n" + bytes(rng.randrange(256) for _ in range(1500))
    noise += bytes([0xA5]) * 40 + rng.randbytes(500)
    b.delivered(host.send(noise))
    burst = max(b.of("rx"), key=lambda e: e["n"])
    per_byte_us = (burst["t_us"] - burst["t0_us"]) / burst["n"]
    assert 85 <= per_byte_us <= 90, f"{per_byte_us} µs per byte: 115200 8N1 with U2X0 takes 85 on the wire"
    for i in range(5):  # valid DRIVEs before any ARM: reported, never applied
        host.send(Drive(900, 800, 100 + i))
    t_end = b.delivered(host.sent)
    b.run_until_us(t_end + 200_000)
    for pin in ("servo", "esc"):
        widths = [w for _, w in b.pulses(pin)]
        assert all(abs(w - NEUTRAL_US) <= TOL_US for w in widths), f"{pin} moved: {widths}"
    assert b.led() == [], "the LED (armed) came on"
    statuses = host.statuses()
    assert statuses and not statuses[-1].armed and statuses[-1].last_tag == 104
    assert statuses[-1].battery_mv == pytest.approx(7400, abs=40)  # ADC0 through the divider
    # paced: simulated time never runs ahead of the wall clock by more than its 100 µs slice (it may
    # fall behind on a busy machine)
    t_sim, wall = b.now_us(), time.monotonic() - b.launched
    assert t_sim <= wall * 1e6 + 1000, f"{t_sim} µs simulated in {wall:.4f} s"
    b.control("battery 6100")
    b.sleep_sim_ms(300)
    low = host.statuses()[-1].battery_mv
    assert low == pytest.approx(6100, abs=40)
    print(f"\n[hil] power-up: first pulses {b.pulses('servo')[:1]} servo, {b.pulses('esc')[:1]} esc; "
          f"{len(noise)} noise bytes ({per_byte_us:.1f} µs per byte) + 5 DRIVEs before ARM: no change; "
          f"rx_errors {statuses[-1].rx_errors}; battery 7400 / 6100 mV read {statuses[-1].battery_mv} / {low} mV")


COMMANDS = [(0, 0), (1000, 1000), (-1000, -1000), (333, -500), (-777, 250), (250, 999), (-1, -400)]


@pytest.mark.parametrize("car_flags", ["", OTHER_CAR], ids=["main.c", "other-car"])
def test_arm_and_drive_pulses_follow_the_mapping(
    board: BoardFactory, firmware: tuple[Path, Path], tmp_path: Path, car_flags: str,
) -> None:
    elf = build(tmp_path / "build", car_flags)[1] if car_flags else firmware[1]
    mapping = Mapping.of_firmware(car_flags)
    b, host = board(elf=elf)
    host.send(Arm())
    led = b.wait_for(lambda e: e.get("pin") == "led" and e["on"])
    assert led is not None, "ARM did not light the LED"
    latencies: list[float] = []
    applied: list[int] = []
    rows = []
    for i, (steering, throttle) in enumerate(COMMANDS):
        before = {pin: b.pulse_at(pin, b.now_us()) for pin in ("servo", "esc")}
        t_rx = b.delivered(host.send(Drive(steering, throttle, i + 1)))
        want = {"servo": mapping.steering_us(steering), "esc": mapping.throttle_us(throttle)}
        for pin, expected in want.items():
            if abs(before[pin] - expected) <= TOL_US:
                continue  # no change to see on this pin
            t, width = b.next_pulse(pin, t_rx)
            assert abs(width - expected) <= TOL_US, f"DRIVE({steering}, {throttle}) -> {pin} {width} µs, spec {expected}"
            latency_ms = (t - t_rx) / 1000
            assert 0 < latency_ms <= (PERIOD_US + BURST_US + LOOP_US) / 1000, f"{pin} latency {latency_ms} ms"
            ocr = b.of("ocr", t_rx, pin=pin)[0]
            # the burst rule: a DRIVE takes effect BURST_MS after it arrived (a 1 ms clock: -1 tick)
            assert BURST_US - TICK_MS * 1000 <= ocr["t_us"] - t_rx <= BURST_US + LOOP_US and ocr["t_us"] <= t
            latencies.append(latency_ms)
            applied.append(ocr["t_us"] - t_rx)
            rows.append(f"DRIVE({steering:5d},{throttle:5d}) {pin:5s} spec {expected:7.1f} µs measured {width:7.1f} µs "
                        f"latency {latency_ms:5.2f} ms (OCR written after {ocr['t_us'] - t_rx} µs)")
    print(f"\n[hil] mapping {mapping}\n[hil] " + "\n[hil] ".join(rows))
    print(f"[hil] DRIVE last byte -> new pulse width: min {min(latencies):.2f} ms, max {max(latencies):.2f} ms "
          f"(the next 20 ms servo frame), n={len(latencies)}; the firmware wrote OCR1x {min(applied)}-{max(applied)} µs "
          "after the last byte")


@pytest.mark.parametrize("heartbeats", [False, True], ids=["silence", "heartbeats"])
def test_failsafes_in_simulated_time(board: BoardFactory, heartbeats: bool) -> None:
    """No valid DRIVE for 250 ms -> neutral (HEARTBEATs do not extend it); no frame for 1 s -> disarmed."""
    b, host = board()
    t_drive = arm_and_drive(b, host, 400, 300)
    b.next_pulse("esc", t_drive)
    t_last = t_drive
    if heartbeats:  # keep the link alive: the car must still stop driving, but stay armed
        for _ in range(12):
            b.run_until_us(t_last + 100_000)
            t_last = b.delivered(host.send(Heartbeat()))
    ocr = b.wait_for(lambda e: e.get("event") == "ocr" and e["pin"] == "esc" and e["ocr"] == NEUTRAL_OCR
                     and e["t_us"] > t_drive)
    assert ocr is not None
    failsafe_ms = (ocr["t_us"] - t_drive) / 1000
    t_pulse, width = b.next_pulse("esc", ocr["t_us"])
    assert abs(width - NEUTRAL_US) <= TOL_US
    b.pulse_where("servo", ocr["t_us"], lambda w: abs(w - NEUTRAL_US) <= TOL_US)
    assert 250 - TICK_MS <= failsafe_ms <= 250 + TICK_MS + LOOP_US / 1000, f"neutral {failsafe_ms} ms after the last DRIVE"
    assert t_pulse - ocr["t_us"] <= PERIOD_US
    off = b.wait_for(lambda e: e.get("pin") == "led" and not e["on"])
    assert off is not None
    disarm_ms = (off["t_us"] - t_last) / 1000
    assert 1000 - TICK_MS <= disarm_ms <= 1000 + TICK_MS + LOOP_US / 1000, f"disarmed {disarm_ms} ms after the last frame"
    if heartbeats:
        assert off["t_us"] > t_drive + 1_100_000, "heartbeats must keep the car armed"
    print(f"\n[hil] failsafe ({'heartbeats' if heartbeats else 'silence'}): neutral commanded {failsafe_ms:.2f} ms "
          f"after the last DRIVE, on the pins {(t_pulse - t_drive) / 1000:.2f} ms; disarmed (LED off) "
          f"{disarm_ms:.2f} ms after the last frame")


@pytest.mark.parametrize("how", ["hang", "hang cli"], ids=["main-loop", "interrupts-off"])
def test_hung_main_loop_is_reset_by_the_watchdog_and_comes_back_disarmed(board: BoardFactory, how: str) -> None:
    """The main loop stops at its watchdog kick (interrupts still running, or off too: then nothing
    but the timers and the watchdog run); the last command stays on the pins until the reset."""
    mapping = Mapping.of_firmware()
    b, host = board()
    t_drive = arm_and_drive(b, host, -600, 350)
    b.next_pulse("esc", t_drive)
    b.control(how)
    hung = b.wait_for(lambda e: e.get("event") == "hang")
    assert hung is not None
    for i in range(8):  # the host keeps driving: only the watchdog can stop this car now
        host.send(Drive(-600, 350, 10 + i))
        time.sleep(0.03)
    reset = b.wait_for(lambda e: e.get("event") == "reset" and e["t_us"] > 0)
    assert reset is not None and reset["cause"] == "watchdog", reset
    hang_ms = (reset["t_us"] - hung["t_us"]) / 1000
    # WDTO_120MS: 16K cycles of the 128 kHz watchdog oscillator (simavr: exactly 128 ms)
    assert 100 <= hang_ms <= 140, f"watchdog reset {hang_ms} ms after the loop hung"
    for pin in ("servo", "esc"):  # hung: the last command stays on the pins until the reset
        driving = mapping.steering_us(-600) if pin == "servo" else mapping.throttle_us(350)
        assert abs(b.pulse_at(pin, reset["t_us"] - 1) - driving) <= TOL_US
        t, width = b.next_pulse(pin, reset["t_us"] + 1)
        if width == 0:  # the reset itself: pins are inputs until setup() runs
            t, width = b.next_pulse(pin, t + 1)
        assert abs(width - NEUTRAL_US) <= TOL_US, f"{pin} came back at {width} µs"
        assert t - reset["t_us"] <= 1000, f"{pin}: neutral pulses {t - reset['t_us']} µs after the reset"
    assert b.led()[-1] == (reset["t_us"], False)
    t_after = b.delivered(host.send(Drive(-600, 350, 99)))  # without a new ARM nothing moves
    b.run_until_us(t_after + 100_000)
    assert all(abs(w - NEUTRAL_US) <= TOL_US for _, w in b.pulses("servo", reset["t_us"] + 1) if w)
    statuses = host.statuses()
    assert statuses and not statuses[-1].armed and statuses[-1].last_tag == 99
    t_again = arm_and_drive(b, host, 500, 0, 100)
    _, width = b.next_pulse("servo", t_again)
    assert abs(width - 1700) <= TOL_US
    back = {pin: b.pulse_where(pin, reset["t_us"] + 1, lambda w: abs(w - NEUTRAL_US) <= TOL_US)[0] - reset["t_us"]
            for pin in ("servo", "esc")}
    print(f"\n[hil] {how}: main loop stuck at {hung['t_us']} µs (interrupts {hung['interrupts']}): watchdog reset "
          f"{hang_ms:.2f} ms later; neutral pulses {back} µs after the reset, LED off at the reset; "
          "disarmed until a new ARM")


def test_manual_override_from_the_receiver_and_back(board: BoardFactory) -> None:
    mapping = Mapping.of_firmware()
    b, host = board("--rc-steering-us", "1800", "--rc-throttle-us", "1600", "--rc-aux-us", "1000")
    t_drive = arm_and_drive(b, host, 200, 100)
    b.pulse_where("servo", t_drive, lambda w: abs(w - mapping.steering_us(200)) <= TOL_US)
    on = b.control("rc aux 2000")["t_us"]
    rc_servo, rc_esc = mapping.steering_us(600), mapping.throttle_us(200)  # 1800 / 1600 µs from the receiver
    t_servo, _ = b.pulse_where("servo", on, lambda w: abs(w - rc_servo) <= RC_JITTER_US)
    t_esc, _ = b.pulse_where("esc", on, lambda w: abs(w - rc_esc) <= RC_JITTER_US)
    t_manual = max(t_servo, t_esc)
    t_ignored = b.delivered(host.send(Drive(-500, -300, 7)))  # reported, not applied, in manual mode
    b.run_until_us(t_ignored + 100_000)
    statuses = host.statuses()
    assert statuses[-1].manual and statuses[-1].last_tag == 7
    in_manual = [w for _, w in b.pulses("servo", t_manual)] + [w for _, w in b.pulses("esc", t_manual)]
    assert all(abs(w - rc_servo) <= RC_JITTER_US or abs(w - rc_esc) <= RC_JITTER_US for w in in_manual), in_manual
    silent = b.control("rc aux 0")["t_us"]  # AUX stays latched: the transmitter is simply gone
    b.control("rc steering 0")
    b.control("rc throttle 0")
    ocr = b.wait_for(lambda e: e.get("event") == "ocr" and e["pin"] == "servo" and e["t_us"] >= silent)
    assert ocr is not None and ocr["ocr"] == NEUTRAL_OCR
    t_n, _ = b.pulse_where("servo", silent, lambda w: abs(w - NEUTRAL_US) <= TOL_US)
    b.pulse_where("esc", silent, lambda w: abs(w - NEUTRAL_US) <= TOL_US)
    silent_ms = (ocr["t_us"] - silent) / 1000
    # RC_TIMEOUT_MS = 100 after the last pulse, which came up to one receiver frame before the command
    assert 100 - PERIOD_US / 1000 - TICK_MS <= silent_ms <= 100 + TICK_MS + LOOP_US / 1000, f"neutral {silent_ms} ms after the receiver went silent"
    back = b.control("rc aux 1000")["t_us"]
    b.control("rc steering 1500")
    b.control("rc throttle 1500")
    b.run_until_us(back + 150_000)
    assert not host.statuses()[-1].manual, "AUX < 1300 µs gives control back"
    assert all(abs(w - NEUTRAL_US) <= TOL_US for _, w in b.pulses("servo", t_n)), "left manual with a jump"
    t_auto = b.delivered(host.send(Drive(-250, 0, 8)))
    _, width = b.next_pulse("servo", t_auto)
    assert abs(width - mapping.steering_us(-250)) <= TOL_US
    print(f"\n[hil] manual override: AUX 2000 µs -> outputs follow the receiver after {(t_manual - on) / 1000:.2f} ms "
          f"(servo {sorted(set(w for _, w in b.pulses('servo', t_manual, ) if w and w > 1600))} µs for 1800 µs in: "
          f"software capture jitter); receiver silent -> neutral commanded {silent_ms:.2f} ms after the command (timeout 100 ms after the last pulse); AUX 1000 µs -> auto, "
          "neutral until the next DRIVE")


def corrupted_frames(n: int) -> list[bytes]:
    """The fuzz suite's corruptions (tests/runtime/link/test_fuzz.py: 1-3 bit flips or one burst of
    up to 16 bits in a DRIVE, same seed), the protocol's invalid vectors, and every truncation."""
    rng = random.Random(20261123)
    out = [bytes.fromhex(v["hex"]) for v in load_vectors()["invalid"]]
    for i in range(n):
        frame = encode(Drive(rng.randint(-1000, 1000), rng.randint(1, 1000), 5000 + i), 5000 + i)
        nbits = len(frame) * 8
        if i % 2:
            bits = rng.sample(range(nbits), rng.randint(1, 3))
        else:
            start = rng.randrange(nbits - 1)
            length = rng.randint(2, min(16, nbits - start))
            bits = [start, start + length - 1] + [b for b in range(start + 1, start + length - 1) if rng.random() < 0.5]
        out.append(flip_bits(frame, bits))
    return out


def test_corrupted_and_truncated_frames_never_change_a_pulse(board: BoardFactory) -> None:
    b, host = board()
    t0 = arm_and_drive(b, host, 300, 200, tag=1)
    for pin in ("esc", "servo"):  # the DRIVE's widths (they come BURST_MS later: not just any change)
        b.pulse_where(pin, t0, lambda w: abs(w - NEUTRAL_US) > TOL_US)
    expect = {pin: b.pulse_at(pin, b.now_us()) for pin in ("servo", "esc")}
    tag = 1

    def valid() -> bytes:
        nonlocal tag
        tag += 1
        return encode(Drive(300, 200, tag), tag)

    # one write, so its timing on the wire is the simulator's own: a valid DRIVE after every 10
    # corrupted frames (~13 ms) and after every truncation (the receiver resynchronises)
    bad = corrupted_frames(200)
    truncated = encode(Drive(-900, 900, 7777), 7777)
    stream = b"".join(frame + (valid() if i % 10 == 9 else b"") for i, frame in enumerate(bad))
    stream += b"".join(truncated[:cut] + valid() for cut in range(1, len(truncated)))
    b.delivered(host.send(stream))
    # truncations left alone: > GAP_MS of silence, then the receiver drops the partial frame
    for cut in range(1, len(truncated), 3):
        b.run_until_us(b.delivered(host.send(truncated[:cut])) + 25_000, poll_s=0.005)
        b.delivered(host.send(valid()))
    t_end = b.delivered(host.send(valid()))
    b.run_until_us(t_end + 60_000)
    # The failsafe is not a pulse change caused by a frame: only if this machine held the test
    # back for 250 ms between two valid DRIVEs may the outputs have gone neutral, exactly then.
    drives_at = [t for t, m in b.rx_frames(t0) if isinstance(m, Drive)]
    failsafes = [e for e in b.of("ocr", t0 + LOOP_US) if e["ocr"] == NEUTRAL_OCR]
    for e in failsafes:
        before = max(t for t in drives_at if t < e["t_us"])
        assert 250 - TICK_MS <= (e["t_us"] - before) / 1000 <= 250 + TICK_MS + LOOP_US / 1000, f"neutral at {e}"
    ocrs = {e["ocr"] for e in b.of("ocr", t0 + LOOP_US)} - {NEUTRAL_OCR}
    assert ocrs <= {round(2 * expect["servo"]) - 1, round(2 * expect["esc"]) - 1}, ocrs
    for pin, width in expect.items():
        changes = [w for _, w in b.pulses(pin, t0 + PERIOD_US + LOOP_US)]
        if not failsafes:
            assert all(w == width for w in changes), f"{pin} changed: {changes}"
        assert all(w in (width, NEUTRAL_US) for w in changes), f"{pin} changed: {changes}"
        assert b.pulse_at(pin, b.now_us()) == width
    status = host.statuses()[-1]
    assert status.last_tag == tag and status.armed
    n_cut = len(truncated) - 1 + len(range(1, len(truncated), 3))
    print(f"\n[hil] {len(bad)} corrupted frames + {n_cut} truncations: no pulse changed "
          f"({len(failsafes)} failsafe stops from a slow host); rx_errors {status.rx_errors}; last_tag "
          f"{status.last_tag} (the last valid DRIVE)")


def test_neutral_with_disarm_stops_at_once(board: BoardFactory) -> None:
    b, host = board()
    t_drive = arm_and_drive(b, host, 700, 600)
    b.next_pulse("esc", t_drive)
    t_neutral = b.delivered(host.send(Neutral(disarm=True)))
    off = b.wait_for(lambda e: e.get("pin") == "led" and not e["on"])
    ocr = b.wait_for(lambda e: e.get("event") == "ocr" and e["pin"] == "esc" and e["t_us"] >= t_neutral)
    assert off is not None and ocr is not None and ocr["ocr"] == NEUTRAL_OCR
    assert off["t_us"] - t_neutral <= LOOP_US and ocr["t_us"] - t_neutral <= LOOP_US
    t_p, width = b.next_pulse("esc", t_neutral)
    assert abs(width - NEUTRAL_US) <= TOL_US and t_p - t_neutral <= PERIOD_US + LOOP_US


def v1_frame(msg_type: int, seq: int, payload: bytes) -> bytes:
    """A frame as protocol version 1 made it: CRC-16/CCITT-FALSE over LEN..PAYLOAD, little-endian."""
    body = bytes([len(payload), msg_type]) + seq.to_bytes(2, "little") + payload
    return bytes([0xA5]) + body + binascii.crc_hqx(body, 0xFFFF).to_bytes(2, "little")


def test_the_chip_speaks_the_current_protocol_version_only(board: BoardFactory) -> None:
    """The protocol version on the wire is the firmware's, as built: its STATUS decodes with the
    host's rules (which check the version), an ARM for another version or with another version's
    CRC never arms it, and the current ARM does."""
    b, host = board()
    b.sleep_sim_ms(60)
    statuses = host.statuses()
    assert statuses and all(s.version == PROTOCOL_VERSION for s in statuses)
    host.send(encode_frame(MsgType.ARM, 1, bytes([PROTOCOL_VERSION - 1])))  # a valid frame, older version
    if PROTOCOL_VERSION >= 2:  # version 1's CRC variant: not a frame at all for this firmware
        host.send(v1_frame(MsgType.ARM, 2, bytes([1])))
        host.send(v1_frame(MsgType.ARM, 3, bytes([PROTOCOL_VERSION])))
    t = b.delivered(host.sent)
    b.run_until_us(t + 100_000)
    status = host.statuses()[-1]
    assert b.led() == [] and not status.armed, "an ARM of another protocol version armed the car"
    assert status.rx_errors >= (3 if PROTOCOL_VERSION >= 2 else 1)
    b.delivered(host.send(Arm()))
    assert b.wait_for(lambda e: e.get("pin") == "led" and e["on"]) is not None
    print(f"\n[hil] protocol v{PROTOCOL_VERSION} on the chip: STATUS decodes, other versions' ARMs rejected "
          f"(rx_errors {status.rx_errors}), the current ARM arms")


def test_bad_arguments_are_one_line_errors(firmware: tuple[Path, Path], tmp_path: Path) -> None:
    exe, elf = firmware
    cases = [
        ([], "--pty PATH is needed"),
        (["--pty", str(tmp_path / "p"), "--elf", str(tmp_path / "missing.elf")], "cannot read the firmware"),
        (["--pty", str(tmp_path / "p"), "--rc-aux-us", "200"], "0 (silent) or 500..2500"),
        (["--pty", str(tmp_path / "p"), "--battery-mv", "lots"], "--battery-mv needs a number"),
        (["--pty", str(tmp_path), "--elf", str(elf)], "exists and is not a symlink"),
    ]
    for args, message in cases:
        out = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=30)
        assert out.returncode == 2, (args, out)
        assert message in out.stderr.splitlines()[0], (args, out.stderr)
        assert out.stdout == ""


def test_a_burst_of_queued_drives_is_never_replayed(board: BoardFactory) -> None:
    """A backlog written at once (a stalled USB board releasing it): only its newest DRIVE reaches
    OCR1x, and none of a burst that ends with NEUTRAL (docs/protocol.md, burst rule)."""
    mapping = Mapping.of_firmware()
    b, host = board()
    t0 = arm_and_drive(b, host, 300, 200, tag=1)
    b.next_pulse("esc", t0)
    queued = [Drive(-100 * k, 50 * k, 10 + k) for k in range(1, 9)]
    t_burst = b.delivered(host.send(b"".join(encode(m, 10 + k) for k, m in enumerate(queued))))
    b.run_until_us(t_burst + 3 * PERIOD_US)
    newest = queued[-1]
    ocrs = {(e["pin"], e["ocr"]) for e in b.of("ocr", t0 + BURST_US + LOOP_US)}
    assert ocrs == {("servo", round(2 * mapping.steering_us(newest.steering)) - 1),
                    ("esc", round(2 * mapping.throttle_us(newest.throttle)) - 1)}, ocrs
    t1 = b.now_us()
    ending = b"".join(encode(Drive(900, 900, 30 + k), 30 + k) for k in range(5)) + encode(Neutral(), 40)
    t_end = b.delivered(host.send(ending))
    b.run_until_us(t_end + 3 * PERIOD_US)
    assert {e["ocr"] for e in b.of("ocr", t1)} <= {NEUTRAL_OCR}, b.of("ocr", t1)
    assert host.statuses()[-1].last_seq == 40
    print(f"\n[hil] burst of {len(queued)} DRIVEs: only the newest reached OCR1x; a burst ending in NEUTRAL: none")
