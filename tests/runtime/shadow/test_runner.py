"""The shadow's plumbing: the one-frame mailbox, the telemetry the loop publishes, the thread's
lower priority, and the ``[shadow]`` section."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from runtime.camera import CameraFrame
from runtime.cli_args import build_parser, config_from_args
from runtime.config import ConfigError, load_config
from runtime.mailbox import NewestOnly
from runtime.shadow import lower_priority
from runtime.telemetry import FrameReport, Telemetry


def report(frame_id: int) -> FrameReport:
    return FrameReport(frame_id, frame_id, 0.0, True, 0.1, 0.2, 0.1, 0.2, True, None, 5.0)


def test_the_mailbox_keeps_the_newest_and_counts_what_it_skipped() -> None:
    box: NewestOnly[int] = NewestOnly()
    stop = threading.Event()
    box.put(1)
    box.put(2)
    assert box.take(stop) == 2 and box.submitted == 2 and box.skipped == 1
    box.put(3)
    assert box.drop() == 1 and box.drop() == 0
    stop.set()
    assert box.take(stop, poll_s=0.01) is None


def test_telemetry_hands_listeners_a_frame_without_the_recycled_buffer_and_keeps_their_errors() -> None:
    t = Telemetry()
    got: list[CameraFrame] = []

    def broken(frame: CameraFrame, r: FrameReport) -> None:
        raise RuntimeError("a reader's bug")

    t.subscribe(broken)
    t.subscribe(lambda frame, r: got.append(frame))
    frame = CameraFrame(7, 1.0, np.zeros((2, 2, 3), np.uint8), 6, input=np.zeros((1, 2, 2, 3), np.float32))
    t.publish(frame, report(7))  # does not raise
    assert t.listener_errors == 1 and t.latest() == report(7) and t.published == 1
    assert got[0].input is None and got[0].image is frame.image and got[0].id == 7


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="Linux thread priorities")
def test_the_shadow_thread_runs_nicer_and_the_loop_thread_does_not() -> None:
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: dict[str, object] = {}

    def body() -> None:
        seen["said"] = lower_priority(before + 3)
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    th = threading.Thread(target=body)
    th.start()
    th.join()
    assert seen == {"said": f"nice {before + 3}", "nice": before + 3}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before


def test_shadow_flag_and_section(tmp_path: Path) -> None:
    cfg = config_from_args(build_parser().parse_args(["--shadow", "builds/candidate/v4"]))
    assert cfg.shadow.bundle == "builds/candidate/v4" and cfg.shadow.threads == 1 and cfg.shadow.nice == 10
    p = tmp_path / "r.toml"
    p.write_text('[shadow]\nbundle = "b"\nlarge_steer = 0.2\n')
    with pytest.raises(ConfigError, match=r"\[shadow\] unknown key 'large_steer'; did you mean 'large_steering'"):
        load_config(p)
    p.write_text('[shadow]\nnice = 25\n')
    with pytest.raises(ConfigError, match=r"shadow.nice = 25 must be in \[0, 19\]"):
        load_config(p)
