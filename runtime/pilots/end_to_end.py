"""``end_to_end``: the model's own steering (and throttle) outputs, each decoded by its decoder
(:mod:`runtime.decode`: scalar, bins, component) - what the runtime always did."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from runtime.camera import CameraFrame
from runtime.decode import Decoder, decoder_for
from runtime.manifest import Manifest
from runtime.pilots.base import Pilot, PilotError, PilotResult


class EndToEndPilot(Pilot):
    """Steering (and throttle, when the model has one) decoded from the outputs of those meanings.

    Only outputs of meaning ``steering`` / ``throttle`` are read, through decoders that accept only
    (1, N) vectors (N <= 32): a map or a detection head can never become a command.
    """

    kind = "end_to_end"
    tasks = ("driving",)

    def __init__(self, steering: tuple[str, Decoder], throttle: tuple[str, Decoder] | None) -> None:
        self._steering, self._throttle = steering, throttle
        self.gives_throttle = throttle is not None

    @classmethod
    def for_bundle(cls, manifest: Manifest, options: Any = None) -> EndToEndPilot:
        """The steering/throttle outputs and their decoders; :class:`PilotError` without a steering output."""
        steering = manifest.output_by_meaning("steering")
        if steering is None:
            have = ", ".join(f"{o.name}={o.meaning}" for o in manifest.outputs)
            raise PilotError(f"the bundle's model has no output with meaning 'steering' (outputs: {have})")
        throttle = manifest.output_by_meaning("throttle")
        return cls((steering.name, decoder_for(steering.decode, steering.shape, steering.name)),
                   (throttle.name, decoder_for(throttle.decode, throttle.shape, throttle.name)) if throttle else None)

    def __call__(self, outputs: Mapping[str, np.ndarray], frame: CameraFrame) -> PilotResult:
        """The decoded values (NaN stays NaN: the policy then commands neutral)."""
        name, dec = self._steering
        throttle = self._throttle[1](outputs[self._throttle[0]]) if self._throttle else None
        return PilotResult(dec(outputs[name]), throttle)
