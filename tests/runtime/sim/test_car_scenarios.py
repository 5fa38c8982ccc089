"""The simulator's car logic against the spec's timed scenarios and frame vectors."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.link.protocol import CAR_TO_HOST, FrameDecoder, Status, decode_message
from runtime.sim.car import CarModel
from tests.runtime.link.vectors import hexbytes, load_vectors

V = load_vectors()


def run_scenario(model: CarModel, steps: list[dict[str, Any]]) -> None:
    for step in steps:
        now = step["t_ms"] / 1000
        if "rx" in step:
            model.receive(hexbytes(step["rx"]), now)
        elif "rc" in step:
            model.set_rc(*step["rc"])
        elif "manual" in step:
            model.set_manual(step["manual"], now)
        elif "expect" in step:
            model.tick(now)
            got = {
                "state": model.state,
                "steering": model.steering,
                "throttle": model.throttle,
                "last_seq": model.last_seq,
                "last_tag": model.last_tag,
                "rx_errors": model.rx_errors,
            }
            want = step["expect"]
            assert {k: got[k] for k in want} == want, f"at t={step['t_ms']} ms"


@pytest.mark.parametrize("scenario", V["scenarios"], ids=lambda s: s["name"])
def test_scenario(scenario: dict[str, Any]) -> None:
    run_scenario(CarModel(), scenario["steps"])


@pytest.mark.parametrize("vec", [v for v in V["frames"] if v["type"] == "STATUS"], ids=lambda v: v["name"])
def test_status_vector_matches_car_encoding(vec: dict[str, Any]) -> None:
    from runtime.link.protocol import encode

    assert encode(Status(**vec["fields"]), vec["seq"]).hex(" ").upper() == vec["hex"]


def test_status_replies_reflect_state() -> None:
    model = CarModel(battery_mv=7400)
    arm = next(v for v in V["frames"] if v["name"] == "arm")
    replies = model.receive(hexbytes(arm["hex"]), 0.0)
    host = FrameDecoder(accept=CAR_TO_HOST)
    statuses = [decode_message(f) for f in host.feed(b"".join(replies))]
    assert isinstance(statuses[-1], Status)
    assert statuses[-1].armed and not statuses[-1].failsafe and statuses[-1].battery_mv == 7400


def test_periodic_status_every_50ms() -> None:
    model = CarModel()
    sent = sum(len(model.tick(t / 1000)) for t in range(0, 1001))
    assert sent == 21  # t = 0, 50, ..., 1000
