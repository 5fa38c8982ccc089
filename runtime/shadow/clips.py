"""Episodes of large disagreement: runs of frames where the shadow and the driving model differ a
lot, as frame ids and source indexes (where to cut a clip from the drive's recording or video)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_EPISODES = 200  # kept per run; more are only counted
GAP_S = 0.5  # a quieter stretch shorter than this (capture time) continues the episode


@dataclass
class Episode:
    """Frames ``first_frame``..``last_frame`` (ids; ``first_index``..``last_index`` in the source),
    captured from ``t_first`` to ``t_last`` (monotonic s); ``frames`` large pairs; the largest
    steering and throttle |diff| in it."""

    first_frame: int
    last_frame: int
    first_index: int
    last_index: int
    t_first: float
    t_last: float
    frames: int = 1
    max_steering_diff: float = 0.0
    max_throttle_diff: float = 0.0

    def to_dict(self, t0: float) -> dict[str, Any]:
        """For the stats JSON: times as seconds since ``t0`` (the first compared frame)."""
        return {"frames": [self.first_frame, self.last_frame], "source_index": [self.first_index, self.last_index],
                "t_s": [round(self.t_first - t0, 3), round(self.t_last - t0, 3)], "pairs": self.frames,
                "max_steering_diff": round(self.max_steering_diff, 4),
                "max_throttle_diff": round(self.max_throttle_diff, 4)}


class Episodes:
    """Large disagreements grouped into episodes (bounded: the first :data:`MAX_EPISODES`)."""

    def __init__(self) -> None:
        self.kept: list[Episode] = []
        self.count = 0  # episodes, kept or not
        self._open: Episode | None = None  # the episode being extended (None when it is not kept)
        self._t_last: float | None = None  # the newest large pair's capture time

    def add(self, frame_id: int, index: int, t: float, steering_diff: float, throttle_diff: float) -> None:
        """One large pair (frames arrive in capture order)."""
        if self._t_last is not None and t - self._t_last <= GAP_S:
            if self._open is not None:
                self._open.last_frame, self._open.last_index, self._open.t_last = frame_id, index, t
                self._open.frames += 1
        else:
            self.count += 1
            self._open = Episode(frame_id, frame_id, index, index, t, t) if len(self.kept) < MAX_EPISODES else None
            if self._open is not None:
                self.kept.append(self._open)
        self._t_last = t
        if self._open is not None:
            self._open.max_steering_diff = max(self._open.max_steering_diff, steering_diff)
            self._open.max_throttle_diff = max(self._open.max_throttle_diff, throttle_diff)
