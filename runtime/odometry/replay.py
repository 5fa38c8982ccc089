"""``file://speed.csv`` / ``file://speed.jsonl``: replay a recorded wheel speed, aligned with the frames.

CSV: a header naming at least ``t,speed`` (extra columns ignored). JSONL: one object per line with
``t`` and ``speed``. ``t`` in seconds, strictly increasing; ``speed`` in m/s. The replay clock is the
IMU replay's (:mod:`runtime.imu.replay`): the first row is aligned with the first frame the loop
asks about and the replay runs in real time from there (use a camera with ``realtime=1``); after
the last row no newer sample comes, so the input goes stale (neutral) one watchdog deadline later.
"""

from __future__ import annotations

import csv
import json
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np

from runtime.odometry.base import OdometryError, SpeedSample, SpeedSource

COLUMNS = ("t", "speed")


def read_speed_log(path: str | Path, uri: str = "") -> tuple[np.ndarray, np.ndarray]:
    """``(t (N,) float64 s, speed (N,) float64 m/s)`` from a CSV or JSONL log; :class:`OdometryError`
    naming the file, the line and the fix for a missing file or column, a bad value, unsorted ``t``
    or no rows."""
    path = Path(path)
    where = uri or str(path)
    if not path.is_file():
        raise OdometryError(f"wheel-speed source {where}: {path} not found; record one (CSV with header t,speed, or "
                            "JSONL {\"t\": ..., \"speed\": ...}) or fix --wheel-speed / [wheel_speed] uri")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(_jsonl_rows(f, where) if path.suffix.lower() in (".jsonl", ".json") else _csv_rows(f, where))
    except UnicodeDecodeError:
        raise OdometryError(f"wheel-speed source {where}: {path} is not text; give a CSV (t,speed) or JSONL") from None
    except OSError as e:
        raise OdometryError(f"wheel-speed source {where}: cannot read {path}: {e.strerror}; check the path") from None
    times: list[float] = []
    speeds: list[float] = []
    for lineno, t, v in rows:
        if not (math.isfinite(t) and math.isfinite(v)):
            raise OdometryError(f"wheel-speed source {where}: line {lineno} has a non-finite value; fix or drop it")
        if times and t <= times[-1]:
            raise OdometryError(f"wheel-speed source {where}: line {lineno}: t={t} is not after the previous "
                                f"t={times[-1]}; sort the rows by t and drop duplicates")
        times.append(t)
        speeds.append(v)
    if not times:
        raise OdometryError(f"wheel-speed source {where}: {path} has no samples; record some first")
    return np.asarray(times, np.float64), np.asarray(speeds, np.float64)


def _csv_rows(f: Any, where: str) -> Any:
    reader = csv.reader(f)
    header = [h.strip() for h in next(reader, [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise OdometryError(f"wheel-speed source {where}: header {','.join(header) or '(empty)'} lacks "
                            f"{','.join(missing)}; the first line must name t,speed")
    it, iv = header.index("t"), header.index("speed")
    for lineno, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        try:
            yield lineno, float(row[it]), float(row[iv])
        except (ValueError, IndexError):
            raise OdometryError(f"wheel-speed source {where}: line {lineno} ({','.join(row)}) has no numeric t and "
                                "speed; fix or drop that line") from None


def _jsonl_rows(f: Any, where: str) -> Any:
    for lineno, line in enumerate(f, start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            yield lineno, float(d["t"]), float(d["speed"])
        except (ValueError, KeyError, TypeError):
            raise OdometryError(f"wheel-speed source {where}: line {lineno} is not a JSON object with numeric "
                                "t and speed; fix or drop that line") from None


class ReplaySpeedSource(SpeedSource):
    """Replays :func:`read_speed_log`'s samples on the replay clock described in the module doc."""

    def __init__(self, uri: str, path: str | Path) -> None:
        super().__init__(uri)
        self.path = Path(path)
        self._t = np.empty(0, np.float64)
        self._v = np.empty(0, np.float64)
        self._offset: float | None = None  # monotonic time minus log time, fixed at the first frame
        self._lock = threading.Lock()
        self.lookups = 0

    def start(self) -> ReplaySpeedSource:
        """Read the log (:func:`read_speed_log`'s errors)."""
        if not len(self._t):
            self._t, self._v = read_speed_log(self.path, self.uri)
        return self

    def nearest(self, t: float) -> SpeedSample | None:
        """The row nearest ``t`` on the replay clock (the first call anchors row 0 at ``t``)."""
        with self._lock:
            if self._offset is None:
                self._offset = t - float(self._t[0])
            offset = self._offset
        self.lookups += 1
        x = t - offset
        i = int(np.searchsorted(self._t, x))
        if i == len(self._t) or (i > 0 and x - self._t[i - 1] <= self._t[i] - x):
            i -= 1
        return SpeedSample(float(self._t[i]) + offset, float(self._v[i]))

    def newest(self, now: float) -> SpeedSample | None:
        """The last row at or before ``now`` on the replay clock; None before the first lookup."""
        if self._offset is None:
            return None
        i = int(np.searchsorted(self._t, now - self._offset, side="right")) - 1
        return SpeedSample(float(self._t[i]) + self._offset, float(self._v[i])) if i >= 0 else None

    def stats(self) -> dict[str, Any]:
        """URI, samples, span and lookups, for the run summary."""
        span = float(self._t[-1] - self._t[0]) if len(self._t) else 0.0
        return {"uri": self.uri, "samples": len(self._t), "span_s": round(span, 3), "lookups": self.lookups}
