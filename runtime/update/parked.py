"""May the agent swap now? The runtime's state file (runtime/state_file.py) says.

No state file, one that says the runtime stopped, or one not written for ``STALE_S`` (the runtime
writes every 0.5 s) by a process that is gone, means no runtime is running: nothing drives, so the
car is parked. A stale file whose writer still runs is a stalled runtime: not parked (it may
recover and drive). A running runtime must say ``parked``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from runtime.state_file import read_state

STALE_S = 3.0


def parked_now(state_file: str | Path | None) -> tuple[bool, str]:
    """(parked, why) from the state file at ``state_file`` (None: none configured)."""
    if state_file is None:
        return True, "no state file configured: the runtime is taken as not running"
    doc = read_state(state_file)
    if doc is None:
        return True, f"no state in {state_file}: the runtime is not running"
    if is_stale(doc):
        pid = doc.get("pid")
        if isinstance(pid, int) and pid_alive(pid):
            return False, f"the runtime (pid {pid}) has not written {state_file} for over {STALE_S:g} s: stalled"
        return True, f"state in {state_file} is stale and its runtime is gone: not running"
    if not doc.get("running", True):
        return True, "the runtime has stopped"
    if doc.get("parked") is True:
        return True, "the runtime says parked"
    return False, "the car is armed and driving (state file says not parked)"


def is_stale(doc: dict[str, Any]) -> bool:
    """Not written for ``STALE_S`` by this boot's monotonic clock (or the wall clock, after a reboot)."""
    try:
        age_mono = time.monotonic() - float(doc["updated_monotonic"])
        age_wall = time.time() - float(doc["updated_wall"])
    except (KeyError, TypeError, ValueError):
        return True
    return not (-1.0 <= age_mono <= STALE_S and -STALE_S <= age_wall <= STALE_S + 60.0)


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (ours or not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True
