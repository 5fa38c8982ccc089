"""Role ``behavior``: a one-hot naming the behaviour to drive (donkeycar KerasBehavioral
``behavior_in``), shape (1, len(labels)), chosen by ``[model] behavior = "NAME"`` or
``--behavior NAME``. Fixed for the run, always ready. A name the model does not know, or none
given, is an :class:`InputError` listing the model's labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from runtime.camera.base import CameraFrame
from runtime.inputs.base import InputContext, InputError, InputProvider, InputSpecLike


class BehaviorProvider(InputProvider):
    """The fixed one-hot of ``behavior`` over ``labels``, (1, len(labels)) float32. Raises
    :class:`InputError` listing the labels when ``behavior`` is empty or not one of them.
    """

    role = "behavior"

    def __init__(self, name: str, shape: tuple[int, ...], labels: Sequence[str], behavior: str) -> None:
        super().__init__(name, shape)
        labels = [str(x) for x in labels]
        if not labels or self.shape != (1, len(labels)):
            raise InputError(f"input {name!r} (behavior): shape {list(shape)} does not match its labels {labels}; re-convert")
        choices = ", ".join(labels)
        if not behavior:
            raise InputError(f"the model has a behavior input {name!r}; choose one of {choices} with "
                             "--behavior NAME or [model] behavior")
        if behavior not in labels:
            raise InputError(f"behavior {behavior!r} is not one of the model's labels ({choices}); fix --behavior "
                             "or [model] behavior")
        self.labels, self.behavior = labels, behavior
        self.out[0, labels.index(behavior)] = 1.0

    @classmethod
    def from_spec(cls, spec: InputSpecLike, ctx: InputContext) -> BehaviorProvider:
        """The provider for a ``behavior`` input, with the configured behaviour name from ``ctx``."""
        return cls(spec.name, tuple(spec.shape), list(spec.labels or []), ctx.behavior)

    def fill(self, frame: CameraFrame) -> np.ndarray | None:
        """The one-hot (always ready; the same array every frame)."""
        return self.out
