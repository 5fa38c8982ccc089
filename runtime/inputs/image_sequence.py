"""Role ``image_sequence``: the last T preprocessed frames, oldest first (donkeycar KerasLSTM /
Keras3D_CNN), in the model's layout: NTHWC (1, T, H, W, C) or NTCHW (1, T, C, H, W).

Not ready (``input.not_ready``, the car stays in neutral) until T frames are in the window. A
window never spans a gap: when a frame was captured more than the watchdog deadline after the
previous one (a camera stall or reconnect), the window starts again from that frame. The frames are
the ones the loop handled (the camera drops frames the loop had no time for, as donkeycar's own
loop does).

No copy of the window per frame: the frames live in a ring stored twice over (2T slots), so the
newest T frames are always one contiguous slice, and each new frame is written into two slots.
"""

from __future__ import annotations

import numpy as np

from runtime.camera.base import CameraFrame
from runtime.inputs.base import InputContext, InputError, InputProvider, InputSpecLike, Prepare

LAYOUTS = {"NTHWC": "NHWC", "NTCHW": "NCHW"}  # sequence layout -> the layout of one frame


class ImageSequenceProvider(InputProvider):
    """``shape``: (1, T, ...); ``prepare``: BGR frame -> (1, *shape[2:]) float32 (one frame in
    the per-frame layout). ``gap_s``: a longer gap between consecutive frames restarts the window."""

    role = "image_sequence"

    def __init__(
        self, name: str, shape: tuple[int, ...], prepare: Prepare, gap_s: float, use_frame_input: bool = False,
    ) -> None:
        super().__init__(name, shape)
        if len(self.shape) < 3:
            raise InputError(f"input {name!r} (image_sequence): shape {list(shape)} has no (1, T, ...) form")
        self.length = self.shape[1]
        self.prepare, self.gap_s, self.use_frame_input = prepare, gap_s, use_frame_input
        self._ring = np.zeros((2 * self.length, *self.shape[2:]), np.float32)
        # window k = ring[k : k + T], as a (1, T, ...) view made once
        self._windows = [self._ring[k : k + self.length][np.newaxis] for k in range(self.length + 1)]
        self.out = self._windows[0]
        self._next = 0  # ring slot for the next frame
        self._count = 0  # frames in the window since the last restart
        self._t_last: float | None = None
        self._ids = [0] * self.length  # frame id per ring slot (for recordings)
        self.restarts = 0

    @classmethod
    def from_spec(cls, spec: InputSpecLike, ctx: InputContext) -> ImageSequenceProvider:
        """The provider for an ``image_sequence`` input, restarting its window after a gap longer than the
        watchdog deadline. :class:`InputError` for a layout other than NTHWC/NTCHW, no ``preprocess``, or a
        ``length`` that disagrees with the shape.
        """
        frame_layout = LAYOUTS.get(spec.layout)
        if frame_layout is None:
            raise InputError(f"input {spec.name!r} (image_sequence): layout {spec.layout!r}; the runtime "
                             f"feeds {' or '.join(LAYOUTS)}; re-convert the model")
        if ctx.prepare is None or spec.preprocess is None:
            raise InputError(f"input {spec.name!r} (image_sequence) has no preprocess in the manifest; re-convert")
        if spec.length is not None and len(spec.shape) > 1 and int(spec.length) != int(spec.shape[1]):
            raise InputError(f"input {spec.name!r}: length {spec.length} disagrees with shape {list(spec.shape)}; re-convert")
        same = spec.preprocess == ctx.camera_spec and frame_layout == ctx.camera_layout
        return cls(spec.name, tuple(spec.shape), ctx.prepare(spec.preprocess, frame_layout), ctx.deadline_s, same)

    def reset(self) -> None:
        """Empty the window: the input is not ready again until T new frames came in."""
        self._count, self._t_last = 0, None
        self.out = self._windows[0]

    def fill(self, frame: CameraFrame) -> np.ndarray | None:
        """Add the frame; the window (1, T, ...) float32, oldest frame first, once T frames are in it, else
        None with ``input.not_ready``. ``ValueError`` when preprocessing gives the wrong per-frame shape.
        """
        x = frame.input if self.use_frame_input and frame.input is not None else self.prepare(frame.image)
        if x.shape[1:] != self._ring.shape[1:]:
            raise ValueError(f"input {self.name!r}: preprocessing gave {x.shape}, one frame of the sequence "
                             f"is {(1, *self._ring.shape[1:])}")
        if self._t_last is not None and frame.t_capture - self._t_last > self.gap_s:
            self.restarts += 1
            self._count = 0
        self._t_last = frame.t_capture
        t, p = self.length, self._next
        self._ring[p] = x[0]
        self._ring[p + t] = x[0]
        self._ids[p] = frame.id
        self._next = (p + 1) % t
        self._count = min(self._count + 1, t)
        self.out = self._windows[p + 1]  # slots p+1 .. p+T: the oldest first, this frame last
        if self._count < t:
            self.not_ready("input.not_ready", f"{self.name}: {self._count} of {t} frames in the sequence")
            return None
        return self.out

    def recorded(self) -> dict[str, list[int]]:
        """The frame ids in the window, oldest first: the recording holds those frames' images."""
        t = self.length
        return {"frame_ids": [self._ids[(self._next + i) % t] for i in range(t)]}
