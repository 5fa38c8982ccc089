"""The reference firmware's C (jetson/firmware/rc_link.c) against the protocol's test vectors,
compiled for this PC with gcc; and the whole firmware compiled for the ATmega328P with avr-gcc."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.link.vectors import canonical, load_vectors

FIRMWARE = Path(__file__).resolve().parents[2] / "jetson" / "firmware"
V = load_vectors()

needs_gcc = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("make") is None, reason="gcc and make are needed (apt-get install gcc make)"
)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("gcc and make are needed (apt-get install gcc make)")
    build = tmp_path_factory.mktemp("fw-host")
    subprocess.run(["make", "-s", "-C", str(FIRMWARE), f"BUILD={build}", "CC=gcc", "host"], check=True)
    return build / "host_harness"


def run(harness: Path, *lines: str) -> list[str]:
    out = subprocess.run([str(harness)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def frames_of(output: list[str]) -> list[str]:
    return [line for line in output if not line.startswith(("counters", "end"))]


def counters_of(output: list[str]) -> dict[str, int]:
    line = next(line for line in output if line.startswith("counters"))
    return {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}


def test_crc_check_value(harness: Path) -> None:
    check = V["crc"]["check"][0]
    assert run(harness, f"crc {check['ascii']}") == [check["crc"]]


@pytest.mark.parametrize("vec", V["frames"], ids=lambda v: v["name"])
def test_frame_vectors(harness: Path, vec: dict[str, Any]) -> None:
    assert frames_of(run(harness, f"decode {vec['hex']}")) == [canonical(vec["type"], vec["seq"], vec["fields"])]


@pytest.mark.parametrize("vec", [v for v in V["frames"] if v["type"] == "STATUS"], ids=lambda v: v["name"])
def test_status_encoding(harness: Path, vec: dict[str, Any]) -> None:
    f = vec["fields"]
    args = [vec["seq"], f["version"], f["mode"], f["flags"], f["last_seq"], f["last_tag"], f["steering"],
            f["throttle"], f["battery_mv"], f["rx_errors"]]
    assert run(harness, "status " + " ".join(map(str, args))) == [vec["hex"]]


@pytest.mark.parametrize("vec", V["invalid"], ids=lambda v: v["name"])
def test_invalid_vectors(harness: Path, vec: dict[str, Any]) -> None:
    out = run(harness, f"decode {vec['hex']}")
    if vec["reject"] == "payload":
        assert frames_of(out) == ["PAYLOAD_ERROR"]
    else:
        assert frames_of(out) == []
        key = {"crc": "crc_errors", "header": "bad_header"}[vec["reject"]]
        assert counters_of(out)[key] >= 1


@pytest.mark.parametrize("vec", V["streams"], ids=lambda v: v["name"])
def test_stream_vectors(harness: Path, vec: dict[str, Any]) -> None:
    assert frames_of(run(harness, f"stream {vec['hex']}")) == vec["expect"]


@pytest.mark.parametrize("scenario", V["scenarios"], ids=lambda s: s["name"])
def test_scenarios(harness: Path, scenario: dict[str, Any]) -> None:
    lines, expects = [], []
    for step in scenario["steps"]:
        t = step["t_ms"]
        if "rx" in step:
            lines.append(f"rx {t} {step['rx']}")
        elif "rc" in step:
            lines.append(f"rc {step['rc'][0]} {step['rc'][1]}")
        elif "manual" in step:
            lines.append(f"manual {t} {int(step['manual'])}")
        elif "expect" in step:
            lines.append(f"state {t}")
            expects.append(step)
    states = run(harness, *lines)
    assert len(states) == len(expects)
    for step, line in zip(expects, states, strict=True):
        got = dict(kv.split("=") for kv in line.split())
        want = {k: str(v) for k, v in step["expect"].items()}
        assert {k: got[k] for k in want} == want, f"at t={step['t_ms']} ms"


@pytest.mark.skipif(shutil.which("avr-gcc") is None, reason="avr-gcc missing: apt-get install gcc-avr avr-libc binutils-avr")
def test_firmware_compiles_for_atmega328p(tmp_path: Path) -> None:
    out = subprocess.run(["make", "-C", str(FIRMWARE), f"BUILD={tmp_path}"], capture_output=True, text=True, check=True)
    assert (tmp_path / "rc_car.hex").stat().st_size > 0
    text, data, bss = (int(x) for x in out.stdout.split("filename")[1].split()[:3])
    assert text + data <= 32256  # flash less the Optiboot bootloader
    assert data + bss <= 1536  # leave a quarter of the 2 KiB RAM to the stack


def _python_view(data: bytes) -> tuple[list[str], dict[str, int]]:
    from runtime.link.protocol import HOST_TO_CAR, FrameDecoder, ProtocolError, decode_message
    from tests.runtime.link.vectors import describe

    dec = FrameDecoder(accept=HOST_TO_CAR)
    frames = dec.feed(data, now=0.0) + dec.expire(1.0)
    lines = []
    for f in frames:
        try:
            lines.append(describe(f, decode_message(f)))
        except ProtocolError:
            lines.append("PAYLOAD_ERROR")
    c = dec.counters
    return lines, {"bad_header": c.bad_header, "crc_errors": c.crc_errors, "wrong_direction": c.wrong_direction}


def test_c_and_python_parsers_agree_on_corrupted_streams(harness: Path) -> None:
    """Differential fuzz: 300 random streams (frames, garbage, 1-3 bit flips) through both parsers
    in one harness run; frames found and error counters must be identical."""
    import random

    from runtime.link.protocol import (
        PROTOCOL_VERSION,
        Arm,
        Drive,
        Heartbeat,
        Message,
        Neutral,
        Status,
        encode,
    )

    rng = random.Random(4)
    streams = []
    for _ in range(300):
        parts = []
        for seq in range(rng.randint(1, 8)):
            choices: list[Message] = [
                Drive(rng.randint(-1000, 1000), rng.randint(-1000, 1000), rng.getrandbits(32)),
                Arm(), Neutral(rng.random() < 0.5), Heartbeat(),
                Status(rng.choice((PROTOCOL_VERSION, PROTOCOL_VERSION, 1)), 0, 1, seq, 0, 0, 0, 7400, 0),
            ]
            msg = rng.choice(choices)
            frame = bytearray(encode(msg, rng.getrandbits(16)))
            if rng.random() < 0.4:
                for bit in rng.sample(range(len(frame) * 8), rng.randint(1, 3)):
                    frame[bit // 8] ^= 1 << (bit % 8)
            parts.append(bytes(frame) + bytes([0xA5]) * rng.randint(0, 1) + rng.randbytes(rng.randint(0, 6)))
        streams.append(b"".join(parts))
    out = run(harness, *(f"stream {s.hex(' ')}" for s in streams))
    results, current = [], []
    for line in out:
        current.append(line)
        if line == "end":
            results.append(current)
            current = []
    assert len(results) == len(streams)
    for data, c_out in zip(streams, results, strict=True):
        lines, counters = _python_view(data)
        assert frames_of(c_out) == lines
        assert counters_of(c_out) == counters
