"""Role ``memory``: the last L commands the car was really given (donkeycar KerasMemory ``mem_in``),
shape (1, 2L), oldest first, steering and throttle interleaved: (s0, t0, s1, t1, ...).

"Really given" means what went out on the link, not what the model asked for:
:class:`runtime.link.sent_commands.SentCommands`
sits between the watchdog and the link and remembers the last command written (a drive, or zeros
for a neutral, however it came: a stale frame, the watchdog's deadline, a fault). Once per frame,
before the model runs, the provider appends the command the car is under at that moment, which is
the previous frame's command if it went out and nothing has neutralled the car since. The history
starts as zeros (the car starts in neutral), so the input is always ready.
"""

from __future__ import annotations

import numpy as np

from runtime.camera.base import CameraFrame
from runtime.inputs.base import InputContext, InputError, InputProvider, InputSpecLike
from runtime.link.sent_commands import SentCommands


class MemoryProvider(InputProvider):
    """``length``: L commands; ``commands``: where the sent commands are read."""

    role = "memory"

    def __init__(self, name: str, shape: tuple[int, ...], length: int, commands: SentCommands) -> None:
        super().__init__(name, shape)
        if length < 1 or self.shape != (1, 2 * length):
            raise InputError(f"input {name!r} (memory): shape {list(shape)} must be (1, 2 x length={length}); re-convert")
        self.length, self.commands = length, commands
        self._scratch = np.zeros(2 * length - 2, np.float32)

    @classmethod
    def from_spec(cls, spec: InputSpecLike, ctx: InputContext) -> MemoryProvider:
        """The provider for a ``memory`` input; L from ``length``, else half the last dimension."""
        if ctx.commands is None:
            raise InputError(f"input {spec.name!r} (memory): the runtime has no record of sent commands")
        shape = tuple(spec.shape)
        length = int(spec.length) if spec.length is not None else int(shape[-1]) // 2
        return cls(spec.name, shape, length, ctx.commands)

    def reset(self) -> None:
        """Back to all zeros (the car starts in neutral)."""
        self.out.fill(0.0)

    def fill(self, frame: CameraFrame) -> np.ndarray | None:
        """Shift in the command the car is under now; (1, 2L) float32, oldest first (always ready)."""
        row = self.out[0]
        if self.length > 1:  # shift left by one command, through a scratch buffer (no overlap, no allocation)
            np.copyto(self._scratch, row[2:])
            np.copyto(row[:-2], self._scratch)
        row[-2], row[-1] = self.commands.last
        return self.out
