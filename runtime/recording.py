"""``--record DIR``: frames as JPEG, one JSON line per inferred frame, a header and a summary.

The format is documented in ``docs/recording-format.md`` (calibration and retraining read it;
:func:`read_recording` is the reference reader). A writer thread does the JPEG encoding and the
file I/O, so recording never slows the drive loop: when the writer falls behind, frames are
recorded without their image (``"image": null``) and the ``record.backlog`` event is raised.
With ``overlay`` the same thread also draws one frame in ``overlay_every`` (:mod:`runtime.overlay`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from runtime.atomic import atomic_write_json
from runtime.events import Events
from runtime.overlay import OverlayWriter

log = logging.getLogger(__name__)

FORMAT_NAME = "rc-car-recording"
FORMAT_VERSION = 1
HEADER, RECORDS, SUMMARY, FRAMES_DIR = "header.json", "records.jsonl", "summary.json", "frames"


class RecordingError(RuntimeError):
    """A recording that cannot be made or read (the message names the path)."""


def choose_directory(root: str | Path) -> Path:
    """``root`` itself if it is missing or empty, else a new ``root/<UTC time>`` subdirectory."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise RecordingError(f"record path {root} is a file; give a directory")
    if not root.exists() or not any(root.iterdir()):
        return root
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path, n = root / stamp, 1
    while path.exists():
        path, n = root / f"{stamp}-{n}", n + 1
    return path


# one queued record: its JSON, the JPEG to save (or None) and the (frame, overlay data) to draw (or None)
_Item = tuple[dict[str, Any], "np.ndarray | None", "tuple[np.ndarray, dict[str, Any]] | None"]


class Recorder:
    """Records a drive into ``root`` (see the module): ``header`` goes into ``header.json``; the image
    of one frame in ``every`` is saved as JPEG (``jpeg_quality``); with ``overlay`` one frame in
    ``overlay_every`` is drawn into the overlay video. ``RecordingError`` for bad settings or a
    directory that cannot be made."""

    def __init__(
        self, root: str | Path, header: dict[str, Any], events: Events | None = None,
        every: int = 1, jpeg_quality: int = 90, queue_size: int = 64, overlay: bool = False,
        overlay_every: int = 3,
    ) -> None:
        if overlay_every < 1:
            raise RecordingError(f"record overlay_every must be >= 1, got {overlay_every}")
        if every < 1:
            raise RecordingError(f"record every must be >= 1, got {every}")
        if not 1 <= jpeg_quality <= 100:
            raise RecordingError(f"record jpeg_quality must be in [1, 100], got {jpeg_quality}")
        self.dir = choose_directory(root)
        self.events = events or Events()
        self.every, self.jpeg_quality = every, jpeg_quality
        self.overlay, self.overlay_every = overlay, overlay_every
        try:
            (self.dir / FRAMES_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RecordingError(f"cannot create record directory {self.dir}: {e.strerror}") from None
        full_header = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
            "frames_dir": FRAMES_DIR,
            "records": RECORDS,
            "jpeg_quality": jpeg_quality,
            "every": every,
            "overlay": overlay,
            **header,
        }
        atomic_write_json(self.dir / HEADER, full_header)
        self._records = open(self.dir / RECORDS, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._queue: queue.Queue[_Item | None] = queue.Queue(queue_size)
        self._overlay_writer = OverlayWriter(self.dir, jpeg_quality) if overlay else None
        self.overlay_file: str | None = None
        self._n = 0
        self.lines = 0
        self.images = 0
        self.skipped_images = 0  # frames recorded without their image because the writer lagged
        self.lost_lines = 0
        self._failed = False
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()
        log.info("recording to %s", self.dir)

    def add(self, record: dict[str, Any], image: np.ndarray | None, overlay: dict[str, Any] | None = None) -> None:
        """Queue one record (and its frame every ``every`` frames). Never blocks the loop.

        ``image`` must not be modified afterwards (camera frames are fresh arrays: fine); nor may
        ``overlay`` (what :func:`runtime.overlay.draw_overlay` draws, every ``overlay_every`` frames)."""
        if self._failed:
            return
        self._n += 1
        draw = (overlay if self._overlay_writer is not None and image is not None
                and (self._n - 1) % self.overlay_every == 0 else None)
        if draw is not None and self._queue.qsize() >= self._queue.maxsize // 2:
            draw = None  # drawing is the first thing shed when the writer lags
        img = image if image is not None and (self._n - 1) % self.every == 0 else None
        if img is not None and self._queue.qsize() >= self._queue.maxsize // 2:
            # Half full: keep the command lines flowing, shed the expensive part.
            img = None
            self.skipped_images += 1
            self.events.raise_("record.backlog", f"{self.skipped_images} images skipped so far")
        elif img is not None:
            self.events.clear("record.backlog")
        try:
            self._queue.put_nowait((record, img, (image, draw) if draw is not None and image is not None else None))
        except queue.Full:
            self.lost_lines += 1
            self.events.raise_("record.backlog", "records dropped")

    def close(self, summary: dict[str, Any] | None = None) -> None:
        """Finish writing (records, images, the overlay video) and write ``summary.json``."""
        self._queue.put(None)
        self._thread.join(10.0)
        self._records.close()
        if self._overlay_writer is not None:
            try:
                self.overlay_file = self._overlay_writer.close()
            except OSError as e:
                self.events.raise_("record.error", f"overlay: {e}")
        out = dict(summary or {})
        out["recording"] = self.stats()
        atomic_write_json(self.dir / SUMMARY, out)

    def stats(self) -> dict[str, Any]:
        """What was written: directory, lines, images, images and lines shed, the overlay and its frames."""
        return {
            "dir": str(self.dir), "lines": self.lines, "images": self.images,
            "skipped_images": self.skipped_images, "lost_lines": self.lost_lines,
            **({"overlay": self.overlay_file, "overlay_frames": self._overlay_writer.frames}
               if self._overlay_writer is not None else {}),
        }

    def _run(self) -> None:
        params = [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality]
        while True:
            item = self._queue.get()
            if item is None:
                break
            record, img, draw = item
            try:
                if draw is not None and self._overlay_writer is not None:
                    self._overlay_writer.write(draw[0], draw[1], int(record["frame_id"]))
                record["image"] = None
                if img is not None:
                    name = f"{FRAMES_DIR}/{int(record['frame_id']):08d}.jpg"
                    ok, buf = cv2.imencode(".jpg", img, params)
                    if not ok:
                        raise RecordingError("JPEG encoding failed")
                    tmp = self.dir / f"{name}.tmp"
                    tmp.write_bytes(buf.tobytes())
                    os.replace(tmp, self.dir / name)  # a reader never sees half a JPEG
                    record["image"] = name
                    self.images += 1
                self._records.write(json.dumps(record, separators=(",", ":")) + "\n")
                self.lines += 1
                if self._queue.empty():
                    self._records.flush()
            except (OSError, RecordingError, ValueError) as e:
                self._failed = True
                self.events.raise_("record.error", str(e))
                break


def read_recording(path: str | Path) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """The header and an iterator over the frame records of a recording (reference reader).

    A truncated last line (the runtime was killed mid-write) is skipped."""
    path = Path(path)
    header_path = path / HEADER
    if not header_path.is_file():
        raise RecordingError(f"{path} is not a recording ({HEADER} missing)")
    header = json.loads(header_path.read_text())
    if header.get("format") != FORMAT_NAME or int(header.get("version", 0)) > FORMAT_VERSION:
        raise RecordingError(f"{path}: unsupported recording format {header.get('format')} v{header.get('version')}")

    def records() -> Iterator[dict[str, Any]]:
        with open(path / RECORDS, encoding="utf-8") as f:
            for line in f:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    if line.endswith("\n"):
                        raise
                    log.warning("%s: skipping a truncated last record", path / RECORDS)

    return header, records()


def write_imu_csv(path: str | Path, out: str | Path) -> Path:
    """The IMU values a recording fed its model, as a ``file://`` replay CSV (``t,ax,ay,az,gx,gy,gz``,
    ``t`` in seconds from the first frame that had one, one row per frame that had a fresh sample).

    Channels the model did not take are written as 0. Raises :class:`RecordingError` when the
    recording has no imu input or no IMU values."""
    from runtime.imu.base import CHANNELS

    header, records = read_recording(path)
    spec = next((i for i in header.get("inputs") or [] if i.get("role") == "imu"), None)
    if spec is None:
        raise RecordingError(f"{path}: the recorded model has no imu input")
    order = list(spec.get("order") or CHANNELS)
    cols = [order.index(c) if c in order else None for c in CHANNELS]
    lines, t0, last = ["t," + ",".join(CHANNELS)], None, None
    for r in records:
        values = (r.get("inputs") or {}).get(spec["name"])
        t = r.get("t_capture")
        if values is None or t is None or (last is not None and t <= last):
            continue
        t0 = t if t0 is None else t0
        last = t
        row = [float(values[i]) if i is not None else 0.0 for i in cols]
        lines.append(",".join(repr(x) for x in (round(t - t0, 6), *row)))
    if len(lines) == 1:
        raise RecordingError(f"{path}: no frame recorded an IMU value for {spec['name']!r}")
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, out)
    return out
