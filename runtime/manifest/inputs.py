"""The model's inputs: the roles the car can feed (image, image_sequence, memory, imu, behavior, wheel_speed),
their layouts, and :class:`InputSpec`, which checks an input's shape against its role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.manifest.errors import BundleError
from runtime.manifest.preprocess_spec import PreprocessSpec
from runtime.roles import IMAGE_ROLES, ROLES, RoleError
from runtime.roles import imu as imu_role

# Input roles (contract): what the runtime feeds each model input. Each role is one RoleSpec in
# runtime/roles (shape rule, layouts, converter parse, sample values, provider); these names are
# what the manifest reads from that table.
IMAGE, IMAGE_SEQUENCE, MEMORY, IMU, BEHAVIOR = "image", "image_sequence", "memory", "imu", "behavior"
ROLE_NAMES = tuple(ROLES)
# Layouts each role may take: images NHWC (Keras) or NCHW (PyTorch); sequences add T after N.
LAYOUTS = {name: spec.layouts for name, spec in ROLES.items()}
# The optional fields any role reads (preprocess, length, order, labels): what an input may carry.
ROLE_FIELDS = tuple(dict.fromkeys(f for spec in ROLES.values() for f in spec.fields))
IMU_CHANNELS = imu_role.CHANNELS  # m/s^2 then rad/s, as donkeycar's KerasIMU


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
    - ``wheel_speed``: the car's speed in m/s; shape (1, 1).

    Each rule is its role's :attr:`runtime.roles.RoleSpec.shape`.

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
        """The shape the role's fields imply (what ``shape`` must equal): the role's rule in
        :data:`runtime.roles.ROLES`."""
        try:
            return ROLES[self.role].shape(self)
        except RoleError as e:
            raise BundleError(str(e)) from None

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
        known = {"name", "role", "shape", "dtype", "layout", *ROLE_FIELDS}
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
