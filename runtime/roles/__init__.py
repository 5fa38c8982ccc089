"""Input roles, one :class:`RoleSpec` per module, gathered in :data:`ROLES` (name -> spec).

The manifest (shape rules, layouts), the converter (``--inputs`` parse, donkeycar names), the
reference samples, the benchmark's feeds and the runtime's providers all loop over this table.
Adding a role: one module here with its ``SPEC``, one line below, its provider in
:mod:`runtime.inputs` (and its sensor source, if it reads one), one test.
"""

from __future__ import annotations

from runtime.roles import behavior, image, image_sequence, imu, memory, wheel_speed
from runtime.roles.base import Drive, Fields, RoleError, RoleSpec

ROLES: dict[str, RoleSpec] = {m.SPEC.name: m.SPEC for m in (image, image_sequence, memory, imu, behavior, wheel_speed)}
IMAGE_ROLES = tuple(name for name, spec in ROLES.items() if spec.is_image)
# donkeycar's input layer names -> role
DONKEYCAR_NAMES = {n: spec.name for spec in ROLES.values() for n in spec.donkeycar_names}

__all__ = ["DONKEYCAR_NAMES", "IMAGE_ROLES", "ROLES", "Drive", "Fields", "RoleError", "RoleSpec"]
