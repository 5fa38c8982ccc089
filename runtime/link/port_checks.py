"""Checks on a serial port's path before and after an open fails: a usable character device with
read/write permission, and who holds its exclusive lock."""

from __future__ import annotations

import os
import stat

from runtime.link.base import LinkError


def check_path(port: str) -> None:
    """Raise LinkError for a path that can never work as the car's port (not a character device, no
    permission); a missing path passes (USB may enumerate late)."""
    try:
        st = os.stat(port)
    except FileNotFoundError:
        return
    except PermissionError as exc:
        raise LinkError(f"cannot stat {port}: {exc.strerror}; check the path's permissions") from exc
    if not stat.S_ISCHR(st.st_mode):
        raise LinkError(f"{port} is not a serial device; point --serial at the car's port (e.g. /dev/rc-car)")
    if not os.access(port, os.R_OK | os.W_OK):
        raise LinkError(
            f"no permission to open {port}; add the user to the 'dialout' group "
            "(the rc-runtime service runs as rc-car with SupplementaryGroups=dialout)"
        )


def lock_holder(port: str) -> str:
    """Who holds the exclusive (flock) lock on ``port``: "pid N (command line)" from /proc/locks, or
    "another process" when that cannot be read (not Linux, another user's process)."""
    try:
        st = os.stat(port)
        want = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        with open("/proc/locks", encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return "another process"
    for line in lines:
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == want:
            pid = parts[4]
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                cmd = ""
            return f"pid {pid} ({cmd})" if cmd else f"pid {pid}"
    return "another process"
