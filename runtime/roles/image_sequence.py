"""Role ``image_sequence``: the last ``length`` preprocessed frames, oldest first; (1, T, H, W, C)
for NTHWC or (1, T, C, H, W) for NTCHW (donkeycar's KerasLSTM / Keras3D_CNN, whose ``img_in`` has
rank 5)."""

from __future__ import annotations

from runtime.roles.base import Fields, RoleError, RoleSpec
from runtime.roles.image import frame_shape


def _shape(f: Fields) -> tuple[int, ...]:
    hwc = frame_shape(f, "image_sequence")
    if not f.length or f.length < 1:
        raise RoleError(f"input {f.name!r}: role image_sequence needs a fixed length >= 1")
    return (1, f.length, *hwc)


SPEC = RoleSpec(
    name="image_sequence",
    layouts=("NTHWC", "NTCHW"),
    fields=("preprocess", "length"),
    shape=_shape,
    provider="runtime.inputs.image_sequence:ImageSequenceProvider",
)
