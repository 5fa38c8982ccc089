"""The interface every input provider implements: one model input, filled once per frame.

A provider owns a preallocated float32 array of its input's shape (batch 1 first) and refills it
for each frame the loop handles (no allocation per frame). :meth:`InputProvider.fill` returns the
array to feed, or ``None`` when the input cannot be given for this frame (a sequence still filling,
a stale IMU): the loop then commands neutral and raises the provider's declared event
(:attr:`InputProvider.event`, a name in :data:`runtime.events.DECLARED`) with its detail.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from runtime.camera.base import CameraFrame

if TYPE_CHECKING:
    from runtime.imu.base import ImuSource
    from runtime.link.sent_commands import SentCommands

Prepare = Callable[[np.ndarray], np.ndarray]


class InputSpecLike(Protocol):
    """The fields of :class:`runtime.manifest.InputSpec` the providers read (bundle schema 2)."""

    @property
    def name(self) -> str:
        """The logical input name (the feeds key)."""

    @property
    def role(self) -> str:
        """One of :data:`runtime.manifest.ROLE_NAMES`."""

    @property
    def shape(self) -> tuple[int, ...]:
        """The input's shape, batch 1 (or -1) first."""

    @property
    def layout(self) -> str:
        """``NHWC``/``NCHW`` for images, ``NTHWC``/``NTCHW`` for sequences, ``NC`` otherwise."""

    @property
    def preprocess(self) -> Any:
        """The :class:`runtime.manifest.PreprocessSpec` of an image role, else None."""

    @property
    def length(self) -> int | None:
        """Frames (``image_sequence``) or commands (``memory``) remembered, else None."""

    @property
    def order(self) -> Any:
        """IMU channel names in model order (``imu``), else None."""

    @property
    def labels(self) -> Any:
        """Behaviour names, one per one-hot slot (``behavior``), else None."""


class InputError(ValueError):
    """A model input the runtime cannot feed as configured (no IMU source for an ``imu`` input, a
    behaviour name the model does not know, an unknown role); the message names the fix. The
    runtime exits with status 2 and the car in neutral."""


@dataclass
class InputContext:
    """What the providers may draw on, assembled once by the runtime.

    ``prepare``: makes a fresh per-frame preprocessing function for an image spec and layout
    (``(spec, layout) -> callable(bgr) -> (1, ...) float32``). ``camera_spec``/``camera_layout``:
    what the capture thread already prepares into ``CameraFrame.input`` (reused when an input matches).
    ``deadline_s``: the watchdog deadline (stale rules). ``behavior``: the configured behaviour
    name. ``imu``: a started IMU source. ``commands``: what the link was really sent. ``sources``:
    role -> the started sensor source of a role that reads one (``wheel_speed``)."""

    deadline_s: float = 0.1
    prepare: Callable[[Any, str], Prepare] | None = None
    camera_spec: Any = None
    camera_layout: str = ""
    behavior: str = ""
    imu: ImuSource | None = None
    commands: SentCommands | None = None
    sources: dict[str, Any] = field(default_factory=dict)  # role -> its started sensor source (wheel_speed)


class InputProvider(ABC):
    """One model input. ``name``: the logical input name (the feeds key); ``out``: its (1, ...)
    float32 array; ``event``/``detail``: why the last :meth:`fill` returned ``None``."""

    role: ClassVar[str]

    def __init__(self, name: str, shape: tuple[int, ...]) -> None:
        if not shape or shape[0] not in (1, -1) or any(int(s) <= 0 for s in shape[1:]):
            raise InputError(f"input {name!r}: shape {list(shape)} must be static with batch 1 first; re-convert the model")
        self.name, self.shape = name, (1, *(int(s) for s in shape[1:]))  # a dynamic batch (-1) is fed 1
        self.out = np.zeros(self.shape, np.float32)
        self.event, self.detail = "", ""

    @abstractmethod
    def fill(self, frame: CameraFrame) -> np.ndarray | None:
        """This frame's value of the input: a (1, ...) float32 array owned by the provider (valid
        until the next call), or ``None`` with :attr:`event` and :attr:`detail` set."""

    def not_ready(self, event: str, detail: str) -> None:
        """Say why :meth:`fill` returns ``None`` for this frame (``event`` must be declared)."""
        self.event, self.detail = event, detail

    def reset(self) -> None:  # noqa: B027 - optional hook
        """Forget history (a new run)."""

    def recorded(self) -> Any:
        """The last filled value for a recording (JSON-able), or ``None`` when the frame image
        already holds it (``image``)."""
        return [float(v) for v in self.out.reshape(-1)]

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the provider opened."""
