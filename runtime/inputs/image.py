"""Role ``image``: the current camera frame, preprocessed as the manifest says.

The capture thread normally prepares it already (``CameraFrame.input``, overlapping the previous
inference); the provider then hands that buffer on without a copy. Otherwise it preprocesses the
frame itself into its own preallocated buffer. Always ready.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from runtime.camera.base import CameraFrame
from runtime.inputs.base import InputContext, InputError, InputProvider, InputSpecLike, Prepare


class ImageProvider(InputProvider):
    """``prepare``: BGR uint8 frame -> (1, ...) float32 in this input's shape and layout.
    ``use_frame_input``: ``CameraFrame.input`` was made for exactly this spec and layout."""

    role = "image"

    def __init__(self, name: str, shape: tuple[int, ...], prepare: Prepare, use_frame_input: bool = False) -> None:
        super().__init__(name, shape)
        self.prepare, self.use_frame_input = prepare, use_frame_input

    @classmethod
    def from_spec(cls, spec: InputSpecLike, ctx: InputContext) -> ImageProvider:
        """The provider for an ``image`` input; reuses ``Frame.input`` when the capture thread prepares the
        same spec and layout. :class:`InputError` when the spec has no ``preprocess``.
        """
        if ctx.prepare is None or spec.preprocess is None:
            raise InputError(f"input {spec.name!r} (image) has no preprocess in the manifest; re-convert the model")
        same = spec.preprocess == ctx.camera_spec and spec.layout == ctx.camera_layout
        return cls(spec.name, tuple(spec.shape), ctx.prepare(spec.preprocess, spec.layout), same)

    def fill(self, frame: CameraFrame) -> np.ndarray | None:
        """The frame's model input, (1, H, W, C) or (1, C, H, W) float32 (always ready). ``ValueError`` when
        preprocessing gives another shape than the manifest (a bug, not a bad frame).
        """
        x = frame.input if self.use_frame_input and frame.input is not None else self.prepare(frame.image)
        if x.shape != self.shape:  # a preprocessing that disagrees with the manifest: a bug, not a frame
            raise ValueError(f"input {self.name!r}: preprocessing gave {x.shape}, the model takes {self.shape}")
        return x

    def recorded(self) -> Any:
        """None: the recording holds the frame image, from which this input is made again."""
        return None  # the frame image is recorded; preprocessing it again gives this input
