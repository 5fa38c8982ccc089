"""The pilot interface: one frame's backend outputs -> the raw (steering, throttle) the policy limits."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from runtime.camera import CameraFrame
from runtime.manifest import BundleError, Manifest


class PilotError(BundleError):
    """A bundle that this pilot cannot drive, or a pilot that does not exist; the message names the fix."""


@dataclass(frozen=True)
class PilotResult:
    """One frame's decision before limits.

    ``steering`` (raw, > 0 right) and ``throttle`` (raw; None: the model gives none, the policy's
    ``constant_throttle`` applies) go to :meth:`runtime.policy.Policy.limit`. ``hold`` (a one-line
    reason) means the car must be in neutral for this frame: the loop raises the pilot's ``event``
    and commands neutral; it is None while the pilot can drive. ``record`` is what the recording
    keeps of this decision (small, JSON-ready); ``overlay`` what the overlay video draws (it may hold
    arrays: the recorder's thread reads them later, so they must not be reused).
    """

    steering: float
    throttle: float | None
    hold: str | None = None
    record: dict[str, Any] | None = None
    overlay: dict[str, Any] | None = None


class Pilot(ABC):
    """Decodes the outputs of one kind of bundle into a :class:`PilotResult` per frame.

    Subclasses set ``kind`` (the table's key), ``tasks`` (the :attr:`Manifest.task` values they
    drive) and ``event`` (the declared event raised while they hold the car in neutral, or None), and
    build from a manifest with :meth:`for_bundle`. ``gives_throttle``: the pilot supplies a throttle
    (else the policy needs ``constant_throttle``).
    """

    kind: ClassVar[str]
    tasks: ClassVar[tuple[str, ...]]
    event: ClassVar[str | None] = None
    gives_throttle: bool = True

    @classmethod
    @abstractmethod
    def for_bundle(cls, manifest: Manifest, options: Any) -> Pilot:
        """The pilot for ``manifest`` (of one of :attr:`tasks`), configured by ``options`` (its section
        of the config, or None); :class:`PilotError` when the bundle does not fit."""

    @abstractmethod
    def __call__(self, outputs: Mapping[str, np.ndarray], frame: CameraFrame) -> PilotResult:
        """Decide for one frame: ``outputs`` by logical name (batch 1), ``frame`` the camera frame
        they were inferred from (its ``image`` gives the frame size in pixels)."""

    def describe(self) -> str:
        """The pilot's kind, for logs and stats."""
        return self.kind
