"""A drive link that remembers the last command it really wrote: what the car is under.

The ``memory`` input role (:mod:`runtime.inputs.memory`) reads it; the watchdog drives through it
in place of the link, so every path to the wire (a drive, a stale frame's neutral, a deadline, a
fault) updates it.
"""

from __future__ import annotations

from typing import Any


class SentCommands:
    """A drive link wrapper that remembers the last (steering, throttle) the link wrote; neutral = (0, 0).

    Forwards ``arm``, ``drive``, ``neutral``, ``poll`` and ``close`` to ``link``; a call that raises
    changes nothing (the car did not get it). Give this to the watchdog in place of the link."""

    def __init__(self, link: Any) -> None:
        self.link = link
        self._last: tuple[float, float] = (0.0, 0.0)  # replaced whole, so a reader never sees half

    @property
    def last(self) -> tuple[float, float]:
        """The (steering, throttle) the car is under: the link's own record of what it wrote when it
        keeps one (a paced DRIVE goes out later, from the link's service, after drive() returned
        None), else what this wrapper saw written."""
        written = getattr(self.link, "last_written", None)
        return written if isinstance(written, tuple) else self._last

    @last.setter
    def last(self, value: tuple[float, float]) -> None:
        self._last = value

    def arm(self) -> Any:
        """Forward to the link."""
        return self.link.arm()

    def drive(self, steering: float, throttle: float, tag: int = 0) -> Any:
        """Forward to the link; remember (steering, throttle) only when the link wrote it (returned a SEQ)."""
        r = self.link.drive(steering, throttle, tag)
        # The link returns the frame's SEQ, or None when it did not write it (no port, the car has
        # not confirmed ARM, or paced to the line rate): only what went out is remembered.
        if r is not None:
            self.last = (float(steering), float(throttle))
        return r

    def neutral(self) -> Any:
        """Forward to the link; remember (0, 0)."""
        r = self.link.neutral()
        self.last = (0.0, 0.0)
        return r

    def disarm(self) -> Any:
        """Forward to the link (NEUTRAL with the disarm bit; a link without one: its neutral); remember (0, 0)."""
        send = getattr(self.link, "disarm", None)
        r = send() if callable(send) else self.link.neutral()
        self.last = (0.0, 0.0)
        return r

    def poll(self) -> Any:
        """Forward to the link."""
        return self.link.poll()

    def close(self) -> Any:
        """Forward to the link (it sends neutral); remember (0, 0)."""
        r = self.link.close()
        self.last = (0.0, 0.0)
        return r

    def __getattr__(self, name: str) -> Any:  # stats, describe, ...: the link's own
        if name == "link":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.link, name)
