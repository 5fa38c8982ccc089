"""Helpers for the perception drive tests: frames on disk, the wire, and frames matched by id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from runtime.recording import read_recording
from runtime.sim import CarSimulator


def frame_folder(path: Path, frames: np.ndarray) -> str:
    """``frames`` as a PNG folder; its camera URI paced like a 30 fps camera."""
    from converter.demo.track import write_image_folder

    write_image_folder(path, frames, ext=".png")
    return f"file://{path}?realtime=1&fps=30"


def wire_drives(car: CarSimulator) -> list[dict[str, Any]]:
    """Every DRIVE the car got, once the run has disarmed it (in order, tags increasing)."""
    car.wait_for(lambda s: s.state == "disarmed", 3.0)
    cmds = car.commands()
    tags = [c["tag"] for c in cmds]
    assert tags == sorted(set(tags)), tags
    return cmds


def neutrals(car: CarSimulator) -> list[float]:
    """Times (monotonic s) at which the car got a NEUTRAL from the host."""
    return [e["t"] for e in list(car.events) if e["event"] == "neutral"]


def records_by_id(summary: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The recording's frame records by frame id (the camera may drop frames on a loaded machine)."""
    _, records = read_recording(summary["recording"]["dir"])
    return {r["frame_id"]: r for r in records}
