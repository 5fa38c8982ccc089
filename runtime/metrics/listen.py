"""``--metrics [HOST:]PORT``: where the metrics endpoint listens; loopback when no host is given."""

from __future__ import annotations

LOOPBACK = "127.0.0.1"


def parse_listen(value: str) -> tuple[str, int]:
    """``"9108"`` -> ``("127.0.0.1", 9108)``; ``"0.0.0.0:9108"``; ``"[::1]:9108"``. ``ValueError`` naming
    the form otherwise (port 0: any free port, logged)."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = LOOPBACK, value
    host = host.strip("[]") or LOOPBACK
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"metrics.listen = {value!r}: write PORT or HOST:PORT, e.g. 9108 or 0.0.0.0:9108")
    return host, int(port)
