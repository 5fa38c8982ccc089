"""Recording: header, JSON lines, JPEG frames; read back by the reference reader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from runtime.events import Events
from runtime.recording import Recorder, RecordingError, choose_directory, read_recording


def frame(i: int) -> np.ndarray:
    img = np.zeros((120, 160, 3), np.uint8)
    img[:, : 10 + i] = (0, 128, 255)
    return img


def record(tmp_path: Path, n: int, **kw: Any) -> Recorder:
    rec = Recorder(tmp_path / "rec", {"model": {"name": "pilot", "version": "3"}}, Events(), **kw)
    for i in range(n):
        rec.add({"frame_id": i + 1, "source_index": i, "steering": 0.1 * i, "throttle": 0.2, "sent": True}, frame(i))
    rec.close({"frames": n})
    return rec


def test_round_trip(tmp_path: Path) -> None:
    rec = record(tmp_path, 6, every=2)
    header, records = read_recording(rec.dir)
    assert header["format"] == "rc-car-recording" and header["version"] == 1
    assert header["model"] == {"name": "pilot", "version": "3"} and header["every"] == 2
    rows = list(records)
    assert [r["frame_id"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r["image"] for r in rows] == ["frames/00000001.jpg", None, "frames/00000003.jpg", None, "frames/00000005.jpg", None]
    img = cv2.imread(str(rec.dir / rows[2]["image"]))
    assert img is not None and img.shape == (120, 160, 3) and np.abs(img.astype(int) - frame(2)).mean() < 3
    summary = json.loads((rec.dir / "summary.json").read_text())
    assert summary["frames"] == 6 and summary["recording"]["images"] == 3
    assert not list(rec.dir.rglob("*.tmp"))


def test_a_truncated_last_line_is_skipped(tmp_path: Path) -> None:
    rec = record(tmp_path, 3)
    with open(rec.dir / "records.jsonl", "a") as f:
        f.write('{"frame_id": 4, "steer')  # killed mid-write
    _, records = read_recording(rec.dir)
    assert [r["frame_id"] for r in records] == [1, 2, 3]


def test_a_used_directory_gets_a_new_subdirectory(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("x")
    assert choose_directory(tmp_path).parent == tmp_path
    assert choose_directory(tmp_path / "new") == tmp_path / "new"
    with pytest.raises(RecordingError, match="is a file"):
        choose_directory(tmp_path / "old.txt")


def test_not_a_recording(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="not a recording"):
        read_recording(tmp_path)
