"""Model outputs -> steering and throttle in [-1, 1], within the configured limits.

Each output is first decoded by the manifest's decoder (``runtime.decode``: scalar, bins,
component, each with an optional gain/bias); the policy only ever sees decoded values. A pilot
(:mod:`runtime.pilots`: end to end, lane following) hands its raw values to :meth:`Policy.limit`.

Order for steering: ``clip(raw * steering_scale + steering_trim, -max_steering, max_steering)``.
Throttle: ``constant_throttle`` if set (models without a throttle output), else the model's
value; then clipped to ``[-max_reverse, max_throttle]``; then slew-limited: the magnitude may grow
by at most ``throttle_slew_rate`` per second (0 = unlimited) while a move towards zero is applied
at once (braking is never delayed). The time one step may ramp over is capped at ``max_gap_s``, the
watchdog's deadline: after a longer gap the car was in neutral, so it gets no more than one frame's
ramp (not the whole gap's worth at once). A NaN or inf anywhere gives an invalid command: the caller
sends neutral instead, and the slew state restarts from zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from runtime.decode import Decoder, decoder_for
from runtime.decode.scalar import ScalarDecoder
from runtime.manifest import BundleError, Manifest

DEFAULT_MAX_GAP_S = 0.1  # the watchdog's default deadline (``[watchdog] deadline_ms = 100``)

@dataclass(frozen=True)
class PolicyConfig:
    """The ``[policy]`` limits, all in normalised command units ([-1, 1] = full lock / full throttle).

    ``max_throttle``, ``max_reverse``, ``max_steering`` in [0, 1]; ``steering_trim`` in [-1, 1];
    ``steering_scale`` in [-4, 4] (negative flips the direction); ``throttle_slew_rate`` in units per
    second, >= 0 (0 = no limit); ``constant_throttle`` in [-1, 1] replaces the model's throttle
    (required when the model has none). Raises ``ValueError`` naming the field when out of range.
    """

    max_throttle: float = 0.5
    max_reverse: float = 0.0
    max_steering: float = 1.0
    steering_scale: float = 1.0
    steering_trim: float = 0.0
    throttle_slew_rate: float = 2.0  # per second; 0 disables the limit
    constant_throttle: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_throttle", "max_reverse", "max_steering"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"policy.{name} = {v} must be in [0, 1]")
        if not -1.0 <= self.steering_trim <= 1.0:
            raise ValueError(f"policy.steering_trim = {self.steering_trim} must be in [-1, 1]")
        if not -4.0 <= self.steering_scale <= 4.0:
            raise ValueError(f"policy.steering_scale = {self.steering_scale} must be in [-4, 4]")
        if self.throttle_slew_rate < 0:
            raise ValueError(f"policy.throttle_slew_rate = {self.throttle_slew_rate} must be >= 0")
        if self.constant_throttle is not None and not -1.0 <= self.constant_throttle <= 1.0:
            raise ValueError(f"policy.constant_throttle = {self.constant_throttle} must be in [-1, 1]")


@dataclass(frozen=True, slots=True)
class Command:
    """One decision: the ``steering`` and ``throttle`` to send (in [-1, 1], after limits), whether it is
    ``valid`` (False after a NaN/inf: the caller sends neutral instead) and the decoded values
    before limits (``raw_steering``, ``raw_throttle``) for logs and recordings.
    """

    steering: float
    throttle: float
    valid: bool
    raw_steering: float
    raw_throttle: float


class Policy:
    """Decoded outputs -> a :class:`Command`, with limits, trim and the throttle slew limit.

    ``steering_output`` / ``throttle_output`` are logical output names; ``decoders`` maps
    ``"steering"`` / ``"throttle"`` to their :class:`~runtime.decode.Decoder` (default: scalar).
    ``max_gap_s`` (seconds, > 0) is the watchdog's deadline: the slew step never ramps over a longer
    gap than that. ``throttle_given``: a pilot supplies the throttle (lane following), so no
    throttle output is needed. Raises :class:`BundleError` when there is no throttle output, no
    pilot throttle and no ``constant_throttle``, ``ValueError`` when ``max_gap_s`` is not positive.
    """

    def __init__(
        self, config: PolicyConfig, steering_output: str = "", throttle_output: str | None = None,
        decoders: dict[str, Decoder] | None = None, max_gap_s: float = DEFAULT_MAX_GAP_S,
        *, throttle_given: bool = False,
    ) -> None:
        if not max_gap_s > 0:
            raise ValueError(f"the policy's max_gap_s (the watchdog deadline) must be positive, got {max_gap_s}")
        if throttle_output is None and not throttle_given and config.constant_throttle is None:
            raise BundleError(
                "the model has no output with meaning 'throttle'; set policy.constant_throttle in the config"
            )
        self.config = config
        self.steering_output = steering_output
        self.throttle_output = throttle_output
        self.max_gap_s = max_gap_s
        decoders = decoders or {}
        self._decode_steering = decoders.get("steering") or ScalarDecoder()
        self._decode_throttle = decoders.get("throttle") or ScalarDecoder()
        self._throttle = 0.0
        self._t_last: float | None = None

    @classmethod
    def for_manifest(cls, config: PolicyConfig, manifest: Manifest, max_gap_s: float = DEFAULT_MAX_GAP_S) -> Policy:
        """The policy for a bundle's steering/throttle outputs and decoders (see the class)."""
        steering = manifest.output_by_meaning("steering")
        if steering is None:
            have = ", ".join(f"{o.name}={o.meaning}" for o in manifest.outputs)
            raise BundleError(f"the bundle's model has no output with meaning 'steering' (outputs: {have})")
        throttle = manifest.output_by_meaning("throttle")
        decoders = {o.meaning: decoder_for(o.decode, o.shape, o.name) for o in (steering, throttle) if o is not None}
        return cls(config, steering.name, throttle.name if throttle else None, decoders, max_gap_s)

    def reset(self) -> None:
        """After any neutral: the next throttle ramps up from zero again."""
        self._throttle, self._t_last = 0.0, None

    def __call__(self, outputs: Mapping[str, np.ndarray], now: float) -> Command:
        """Decode ``outputs`` (logical output name -> the build's array) and apply the limits.

        ``now`` is a ``time.monotonic()`` timestamp in seconds (it drives the slew limit; with a slew
        limit the first call after :meth:`reset` gives throttle 0). A NaN or inf gives ``Command(0, 0, valid=False)`` and resets
        the slew state. ``KeyError`` when an output the policy reads is missing from ``outputs``.
        """
        return self.limit(*self.decode(outputs), now)

    def decode(self, outputs: Mapping[str, np.ndarray]) -> tuple[float, float | None]:
        """The steering and throttle outputs through their decoders: (steering, throttle or None when
        the model has no throttle output). ``KeyError`` when one is missing from ``outputs``."""
        raw_s = self._decode_steering(outputs[self.steering_output])
        raw_t = self._decode_throttle(outputs[self.throttle_output]) if self.throttle_output else None
        return raw_s, raw_t

    def limit(self, raw_steering: float, raw_throttle: float | None, now: float) -> Command:
        """Apply the limits to one frame's raw (decoded) values: see the module for the order.

        ``raw_throttle`` None: the model gives none (``constant_throttle`` is used). ``now``: a
        ``time.monotonic()`` timestamp (s) for the slew limit. NaN or inf -> ``Command(0, 0, valid=False)``.
        """
        c = self.config
        raw_s = float(raw_steering)
        raw_t = float(raw_throttle) if raw_throttle is not None else float(c.constant_throttle or 0.0)
        if not (math.isfinite(raw_s) and math.isfinite(raw_t)):
            self.reset()
            return Command(0.0, 0.0, False, raw_s, raw_t)
        steering = min(max(raw_s * c.steering_scale + c.steering_trim, -c.max_steering), c.max_steering)
        target = c.constant_throttle if c.constant_throttle is not None else raw_t
        target = min(max(target, -c.max_reverse), c.max_throttle)
        throttle = self._slew(target, now) + 0.0  # + 0.0: no -0.0 in logs and recordings
        return Command(steering, throttle, True, raw_s, raw_t)

    def _slew(self, target: float, now: float) -> float:
        rate, prev = self.config.throttle_slew_rate, self._throttle
        if rate > 0 and abs(target) > abs(prev) and (prev == 0 or (target > 0) == (prev > 0)):
            # A long gap (the car was stopped meanwhile) grants no more than one frame's ramp.
            dt = 0.0 if self._t_last is None else min(max(0.0, now - self._t_last), self.max_gap_s)
            step = rate * dt
            target = min(target, prev + step) if target > 0 else max(target, prev - step)
        elif rate > 0 and prev != 0 and (target > 0) != (prev > 0) and target != 0:
            target = 0.0  # reversing direction: stop at zero first, ramp the other way next time
        self._throttle, self._t_last = target, now
        return target

