"""The model's inputs: the roles the car can feed (image, image_sequence, memory, imu, behavior),
their layouts, and :class:`InputSpec`, which checks an input's shape against its role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.manifest.errors import BundleError
from runtime.manifest.preprocess_spec import PreprocessSpec

# Input roles (contract): what the runtime feeds each model input. The runtime's providers
# (runtime/inputs) implement them; adding a role means one entry here and one provider module.
IMAGE, IMAGE_SEQUENCE, MEMORY, IMU, BEHAVIOR = "image", "image_sequence", "memory", "imu", "behavior"
ROLE_NAMES = (IMAGE, IMAGE_SEQUENCE, MEMORY, IMU, BEHAVIOR)
IMAGE_ROLES = (IMAGE, IMAGE_SEQUENCE)
# Layouts each role may take: images NHWC (Keras) or NCHW (PyTorch); sequences add T after N.
LAYOUTS = {IMAGE: ("NHWC", "NCHW"), IMAGE_SEQUENCE: ("NTHWC", "NTCHW"), MEMORY: ("NC",), IMU: ("NC",), BEHAVIOR: ("NC",)}
IMU_CHANNELS = ("ax", "ay", "az", "gx", "gy", "gz")  # m/s^2 then rad/s, as donkeycar's KerasIMU


@dataclass(frozen=True)
class InputSpec:
    """One model input and how the car produces it (contract, see DESIGN.md "Model I/O").

    ``shape`` has batch 1 first. By role:

    - ``image``: ``preprocess`` required; shape (1, H, W, C) for NHWC or (1, C, H, W) for NCHW,
      C = ``preprocess.channels``.
    - ``image_sequence``: the last ``length`` preprocessed frames, oldest first; (1, T, H, W, C)
      for NTHWC or (1, T, C, H, W) for NTCHW (donkeycar's KerasLSTM / Keras3D_CNN).
    - ``memory``: the last ``length`` commands sent, oldest first, steering and throttle
      interleaved; shape (1, 2 * length) (donkeycar's KerasMemory ``mem_in``).
    - ``imu``: channels in ``order`` (default ax, ay, az in m/s^2, gx, gy, gz in rad/s); shape
      (1, len(order)) (donkeycar's KerasIMU ``imu_in``).
    - ``behavior``: a one-hot over ``labels``; shape (1, len(labels)).

    Raises :class:`BundleError` when the fields do not agree with each other.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    layout: str
    preprocess: PreprocessSpec | None = None
    role: str = IMAGE
    length: int | None = None
    order: tuple[str, ...] | None = None
    labels: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        where = f"input {self.name!r}"
        if self.role not in ROLE_NAMES:
            raise BundleError(f"{where}: unknown role {self.role!r}; roles are {', '.join(ROLE_NAMES)}")
        if self.layout not in LAYOUTS[self.role]:
            raise BundleError(f"{where}: layout {self.layout!r} is not one of {LAYOUTS[self.role]} for role {self.role}")
        # Batch 1 first; -1 (a dynamic batch) is accepted for engines built from such ONNX.
        if not self.shape or self.shape[0] not in (1, -1) or any(d <= 0 for d in self.shape[1:]):
            raise BundleError(f"{where}: shape {list(self.shape)} must be fixed and positive, with batch 1 first")
        want = self.expected_shape()
        if tuple(self.shape[1:]) != want[1:]:
            raise BundleError(f"{where}: shape {list(self.shape)} does not match its role {self.role} ({list(want)})")

    def expected_shape(self) -> tuple[int, ...]:
        """The shape the role's fields imply (what ``shape`` must equal)."""
        where = f"input {self.name!r}"
        if self.role in IMAGE_ROLES:
            if self.preprocess is None:
                raise BundleError(f"{where}: role {self.role} needs a preprocess section")
            (h, w), c = self.preprocess.input_hw, self.preprocess.channels
            hwc = (h, w, c) if self.layout.endswith("HWC") else (c, h, w)
            if self.role == IMAGE:
                return (1, *hwc)
            if not self.length or self.length < 1:
                raise BundleError(f"{where}: role image_sequence needs a fixed length >= 1")
            return (1, self.length, *hwc)
        if self.role == MEMORY:
            if not self.length or self.length < 1:
                raise BundleError(f"{where}: role memory needs length >= 1 (commands remembered)")
            return (1, 2 * self.length)
        if self.role == IMU:
            return (1, len(self.order or IMU_CHANNELS))
        if not self.labels:
            raise BundleError(f"{where}: role behavior needs labels (one per one-hot slot)")
        return (1, len(self.labels))

    @property
    def is_image(self) -> bool:
        """True for the camera roles (``image``, ``image_sequence``), which have a ``preprocess``."""
        return self.role in IMAGE_ROLES

    def to_dict(self) -> dict[str, Any]:
        """The input as ``manifest.json`` stores it; optional fields are written only when set."""
        d: dict[str, Any] = {"name": self.name, "role": self.role, "shape": list(self.shape), "dtype": self.dtype,
                             "layout": self.layout}
        if self.preprocess is not None:
            d["preprocess"] = self.preprocess.to_dict()
        if self.length is not None:
            d["length"] = self.length
        if self.order is not None:
            d["order"] = list(self.order)
        if self.labels is not None:
            d["labels"] = list(self.labels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputSpec:
        """Parse one entry of ``inputs`` (role defaults to ``image``, dtype ``float32``, layout ``NHWC``).

        Raises :class:`BundleError` for unknown keys or fields that disagree; a missing ``name`` or
        ``shape`` is a ``KeyError`` that :meth:`Manifest.from_dict` turns into a :class:`BundleError`.
        """
        known = {"name", "role", "shape", "dtype", "layout", "preprocess", "length", "order", "labels"}
        unknown = set(d) - known
        if unknown:
            raise BundleError(f"input {d.get('name', '?')!r}: unknown keys {sorted(unknown)}")
        pre = d.get("preprocess")
        return cls(
            name=str(d["name"]),
            role=str(d.get("role", IMAGE)),
            shape=tuple(int(s) for s in d["shape"]),
            dtype=str(d.get("dtype", "float32")),
            layout=str(d.get("layout", "NHWC")),
            preprocess=PreprocessSpec.from_dict(pre) if pre is not None else None,
            length=int(d["length"]) if d.get("length") is not None else None,
            order=tuple(str(x) for x in d["order"]) if d.get("order") is not None else None,
            labels=tuple(str(x) for x in d["labels"]) if d.get("labels") is not None else None,
        )
