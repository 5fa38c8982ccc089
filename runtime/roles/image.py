"""Role ``image``: the camera frame, preprocessed (crop, resize, colour, scale); shape (1, H, W, C)
for NHWC (Keras) or (1, C, H, W) for NCHW (PyTorch), C = ``preprocess.channels``."""

from __future__ import annotations

from runtime.roles.base import Fields, RoleError, RoleSpec


def frame_shape(f: Fields, role: str) -> tuple[int, int, int]:
    """One preprocessed frame in the input's layout: (H, W, C) or (C, H, W)."""
    if f.preprocess is None:
        raise RoleError(f"input {f.name!r}: role {role} needs a preprocess section")
    (h, w), c = f.preprocess.input_hw, f.preprocess.channels
    return (h, w, c) if f.layout.endswith("HWC") else (c, h, w)


def _shape(f: Fields) -> tuple[int, ...]:
    return (1, *frame_shape(f, "image"))


SPEC = RoleSpec(
    name="image",
    layouts=("NHWC", "NCHW"),
    fields=("preprocess",),
    shape=_shape,
    provider="runtime.inputs.image:ImageProvider",
    donkeycar_names=("img_in",),
)
