"""Model inputs, one provider per role, chosen from the manifest by :data:`PROVIDERS`.

Adding a role means one module here (an :class:`InputProvider` subclass with a ``from_spec``
builder), one line in :data:`PROVIDERS`, and one test file in ``tests/runtime/inputs/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from runtime.inputs.base import InputContext, InputError, InputProvider, InputSpecLike, Prepare
from runtime.inputs.behavior import BehaviorProvider
from runtime.inputs.image import ImageProvider
from runtime.inputs.image_sequence import ImageSequenceProvider
from runtime.inputs.imu import ImuProvider
from runtime.inputs.memory import MemoryProvider

# role (the manifest's inputs[].role) -> builder
PROVIDERS: dict[str, Callable[[InputSpecLike, InputContext], InputProvider]] = {
    "image": ImageProvider.from_spec,
    "image_sequence": ImageSequenceProvider.from_spec,
    "memory": MemoryProvider.from_spec,
    "imu": ImuProvider.from_spec,
    "behavior": BehaviorProvider.from_spec,
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
