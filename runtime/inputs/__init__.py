"""Model inputs, one provider per role, chosen from the manifest by :data:`PROVIDERS`.

Each role's spec (:data:`runtime.roles.ROLES`) names its provider (``module:Class``): adding a role
means its spec module, one provider module here (an :class:`InputProvider` subclass with a
``from_spec`` builder) and one test file in ``tests/runtime/inputs/``; :data:`PROVIDERS` follows.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable

from runtime.inputs.base import InputContext, InputError, InputProvider, InputSpecLike, Prepare
from runtime.inputs.behavior import BehaviorProvider
from runtime.inputs.image import ImageProvider
from runtime.inputs.image_sequence import ImageSequenceProvider
from runtime.inputs.imu import ImuProvider
from runtime.inputs.memory import MemoryProvider
from runtime.inputs.wheel_speed import WheelSpeedProvider
from runtime.roles import ROLES


def _provider_builder(path: str) -> Callable[[InputSpecLike, InputContext], InputProvider]:
    """``module:Class`` -> the class's ``from_spec``."""
    module, _, name = path.partition(":")
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, InputProvider)):
        raise TypeError(f"role provider {path} is not an InputProvider")
    build: Callable[[InputSpecLike, InputContext], InputProvider] = cls.from_spec  # type: ignore[attr-defined]
    return build


# role (the manifest's inputs[].role) -> builder, from each role's spec
PROVIDERS: dict[str, Callable[[InputSpecLike, InputContext], InputProvider]] = {
    name: _provider_builder(spec.provider) for name, spec in ROLES.items()
}

__all__ = [
    "PROVIDERS",
    "BehaviorProvider",
    "ImageProvider",
    "ImageSequenceProvider",
    "ImuProvider",
    "InputContext",
    "InputError",
    "InputProvider",
    "MemoryProvider",
    "Prepare",
    "WheelSpeedProvider",
    "make_providers",
]


def make_providers(specs: Iterable[InputSpecLike], ctx: InputContext) -> list[InputProvider]:
    """One provider per model input, in the manifest's order; :class:`InputError` naming the input
    and the fix for a role the runtime cannot feed or a configuration it lacks."""
    providers = []
    for spec in specs:
        build = PROVIDERS.get(spec.role)
        if build is None:
            raise InputError(f"input {spec.name!r} has role {spec.role!r}, which this runtime cannot feed "
                             f"(it feeds {', '.join(PROVIDERS)}); upgrade the runtime or re-convert the model")
        providers.append(build(spec, ctx))
    return providers
