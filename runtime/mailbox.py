"""A one-item mailbox between the drive loop and a helper thread (the safety layer, the shadow).

The loop puts the newest item and never waits; the helper takes it when it is ready. An item not
taken yet is replaced by a newer one and counted as skipped: a slow helper skips frames rather
than falling behind, and the loop never blocks on it.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class NewestOnly(Generic[T]):
    """Holds at most one item. ``put`` (never blocks) replaces an unread item; ``take`` waits for one.
    ``submitted``: items put; ``skipped``: items replaced before they were taken."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self.submitted = self.skipped = 0

    def put(self, item: T) -> None:
        """Hand over ``item``; an older item not yet taken is dropped (counted in ``skipped``)."""
        with self._cond:
            if self._item is not None:
                self.skipped += 1
            self._item = item
            self.submitted += 1
            self._cond.notify()

    def take(self, stop: threading.Event, poll_s: float = 0.1) -> T | None:
        """The newest item, waiting for one; None once ``stop`` is set (checked every ``poll_s`` s)."""
        with self._cond:
            while self._item is None and not stop.is_set():
                self._cond.wait(poll_s)
            item, self._item = self._item, None
        return item

    def drop(self) -> int:
        """Discard an item not taken yet (at the end of a run); 1 if there was one, else 0."""
        with self._cond:
            had, self._item = self._item is not None, None
        return int(had)

    def wake(self) -> None:
        """Wake a waiting ``take`` (after setting its ``stop``)."""
        with self._cond:
            self._cond.notify_all()
