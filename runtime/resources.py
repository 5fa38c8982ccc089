"""What this process costs: its peak resident memory."""

from __future__ import annotations

import sys


def peak_rss_mb() -> tuple[float | None, str]:
    """This process's peak resident memory in MiB (1 decimal), and how it was read.

    ``VmHWM`` from /proc/self/status on Linux; else ``getrusage``'s ``ru_maxrss`` (Unix);
    ``(None, "unknown")`` where neither exists. Never raises.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024.0, 1), "VmHWM"
    except OSError:  # not Linux: getrusage below
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None, "unknown"
    scale = 1.0 if sys.platform == "darwin" else 1024.0  # bytes on macOS, KiB on Linux
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale / 1024.0, 1), "ru_maxrss"
