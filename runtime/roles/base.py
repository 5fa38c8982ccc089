"""What one input role declares (:class:`RoleSpec`), read by every layer that handles inputs.

The manifest checks an input's shape with :attr:`RoleSpec.shape`, the converter turns
``--inputs NAME=ROLE[:key=value...]`` into manifest fields with :attr:`RoleSpec.parse`, the
reference samples and the benchmark take values from :attr:`RoleSpec.sample` and
:attr:`RoleSpec.rest`, and the runtime builds the provider named by :attr:`RoleSpec.provider`.
This package imports neither :mod:`runtime.manifest` nor :mod:`runtime.inputs` (both read it), so
its errors are :class:`RoleError`, which each layer turns into its own (BundleError,
ConverterError).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class RoleError(ValueError):
    """An input whose fields do not fit its role; the message names the input and the fix."""


class Fields(Protocol):
    """The manifest fields of one input a role's rules read (an InputSpec, or a test's stand-in)."""

    @property
    def name(self) -> str:
        """The input's name."""

    @property
    def layout(self) -> str:
        """One of the role's layouts."""

    @property
    def preprocess(self) -> Any:
        """The camera roles' PreprocessSpec (``input_hw``, ``channels``), else None."""

    @property
    def length(self) -> int | None:
        """Frames (``image_sequence``) or commands (``memory``) remembered, else None."""

    @property
    def order(self) -> Any:
        """IMU channel names in model order (``imu``), else None."""

    @property
    def labels(self) -> Any:
        """Behaviour names, one per one-hot slot (``behavior``), else None."""


@dataclass(frozen=True)
class Drive:
    """A drive the reference samples describe, one row per frame: the commands (steering, throttle
    in [-1, 1]), the car's speed in m/s and its yaw rate in rad/s (bicycle model), and the random
    generator every role draws its noise from."""

    steering: np.ndarray
    throttle: np.ndarray
    speed: np.ndarray
    yaw_rate: np.ndarray
    rng: np.random.Generator

    @property
    def n(self) -> int:
        """Rows (frames)."""
        return len(self.steering)


# (input name, the model's own shape (batch first, None where open), the --inputs args) -> manifest
# fields: shape (batch 1) and the role's own fields (length / order / labels).
Parse = Callable[[str, tuple[int | None, ...], dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class RoleSpec:
    """One input role.

    ``name``: the manifest's ``inputs[].role``. ``layouts``: the layouts it may take (the first is
    the default). ``fields``: the manifest fields it uses beyond name/shape/dtype/layout.
    ``shape``: the shape rule (the shape the fields imply, batch 1 first; :class:`RoleError` when
    they are incomplete). ``parse``: the converter's parse of ``--inputs`` args for a vector role
    (``None`` for the camera roles, whose parse resolves the camera preprocessing and lives in
    :mod:`converter.model_inputs`). ``fixed_shape``: the shape the role fixes from its args alone,
    for a source whose model does not say (a PyTorch state dict); ``None`` where the model must.
    ``sample``: reference values like the car's, (N, K) for a :class:`Drive` (vector roles).
    ``rest``: the (K,) value of a car at rest (the benchmark's feed without reference values).
    ``provider``: ``module:Class`` of the runtime's provider (imported when a model needs it).
    ``donkeycar_names``: donkeycar's input layer names for this role (recognised without a flag).
    """

    name: str
    layouts: tuple[str, ...]
    fields: tuple[str, ...]
    shape: Callable[[Fields], tuple[int, ...]]
    provider: str
    parse: Parse | None = None
    fixed_shape: Callable[[dict[str, Any]], tuple[int, ...] | None] | None = None
    sample: Callable[[Fields, Drive], np.ndarray] | None = None
    rest: Callable[[Fields, str], np.ndarray] | None = None
    donkeycar_names: tuple[str, ...] = ()

    @property
    def is_image(self) -> bool:
        """True for the camera roles (they have a ``preprocess``)."""
        return self.parse is None


def vector_width(name: str, role: str, shape: tuple[int | None, ...]) -> int:
    """K of a (N, K) model input; :class:`RoleError` naming the input when it is not a fixed vector."""
    if len(shape) != 2 or shape[1] is None:
        raise RoleError(f"input {name!r} (role {role}): a {role} input must be a fixed-size vector (N, K), "
                        f"this one is {_show(shape)}")
    return int(shape[1])


def no_unknown(name: str, role: str, entry: dict[str, Any], known: tuple[str, ...]) -> None:
    """:class:`RoleError` for ``--inputs`` keys the role does not take."""
    extra = set(entry) - set(known)
    if extra:
        allowed = ", ".join(known) or "none"
        raise RoleError(f"input {name!r} (role {role}): unknown keys {sorted(extra)} (it takes: {allowed})")


def _show(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"
