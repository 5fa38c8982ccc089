"""``rc-update``'s command line: one pass (``--once``), the polling agent, ``rollback`` and ``status``.

Exit codes: 0 ``ROOT/current`` is the alias's version; 1 refused (one line why, ``current``
unchanged); 2 bad usage; 3 the registry cannot be reached (``current`` unchanged); 4 staged but the
car did not park within ``--park-timeout`` (``current`` unchanged; the next pass swaps).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import socket
import sys
import threading
from typing import Any

from runtime.manifest import load_manifest
from runtime.manifest.errors import BundleError
from runtime.manifest.signature import SignatureError, load_trusted_keys
from runtime.update.agent import NOT_PARKED, OK, REFUSED, UNREACHABLE, Target, update_once, wait_parked
from runtime.update.gate import GateConfig
from runtime.update.layout import Layout
from runtime.update.parked import parked_now
from runtime.update.registry import Registry, RegistryError, RegistryUnreachable

log = logging.getLogger("runtime.update")

USAGE = 2


class UsageError(Exception):
    """Bad flags or files: exit 2 with one line."""


def say(line: str, err: bool = False) -> None:
    """The command's answer (not logging): one line to stdout, or stderr for a refusal/error."""
    (sys.stderr if err else sys.stdout).write(line + "\n")


def build_parser() -> argparse.ArgumentParser:
    """The flags of an update pass / the polling agent."""
    p = argparse.ArgumentParser(prog="rc-update", description="Follow a registry alias: download, verify and "
                                "install signed bundles into ROOT/current, swapping only while the car is parked. "
                                "Also: `rc-update rollback --root DIR`, `rc-update status --root DIR [--json]`.")
    a = p.add_argument
    a("--tracking-uri", required=True, help="the MLflow server, http://HOST:5000 (credentials: MLFLOW_TRACKING_TOKEN "
      "or MLFLOW_TRACKING_USERNAME/PASSWORD)")
    a("--name", required=True, help="registered model name")
    a("--alias", required=True, help="the alias this car follows, e.g. champion")
    a("--root", required=True, help="the car's bundle folder: ROOT/current is what rc-runtime --bundle drives")
    a("--trust", action="append", required=True, metavar="PUB.pem", help="ed25519 public key a bundle must be "
      "signed by (repeatable)")
    a("--car-id", default=socket.gethostname(), help="reported as the version tag edge.car.<car-id> (default: hostname)")
    a("--state-file", default=None, help="the runtime's state file (default: $RUNTIME_DIRECTORY or /run/rc-runtime "
      "state.json when there); no file or a stale one = the runtime is not running = parked")
    a("--keep", type=int, default=3, help="bundles kept in ROOT/bundles (current and previous always kept)")
    a("--park-timeout", type=float, default=None, help="seconds a pass waits for the car to park before it gives "
      "up with the bundle staged (default: 0 with --once, 30 when polling)")
    a("--on-swap", default=None, help="command run after a swap, e.g. 'systemctl try-restart rc-runtime'")
    a("--gate-backend", default="auto", help="replay gate: the backend rc-runtime drives with (default auto)")
    a("--gate-format", default="", help="replay gate: the build rc-runtime drives with (default: the backend's usual)")
    a("--gate-p99-ms", type=float, default=50.0, help="replay gate: per-frame p99 latency budget in ms")
    a("--gate-tolerance", type=float, default=None, help="replay gate: max |output error| against the "
      "reference outputs (default: the build's parity tolerance)")
    a("--no-gate", action="store_true", help="install without the replay gate (not recommended)")
    a("--once", action="store_true", help="one pass, then exit with its code")
    a("--interval", type=float, default=60.0, help="seconds between passes when polling")
    a("--jitter", type=float, default=0.2, help="random extra fraction of the interval (a fleet spreads out)")
    a("--max-backoff", type=float, default=900.0, help="longest wait after the registry could not be reached")
    a("--log-level", default="INFO")
    return p


def main(argv: list[str] | None = None) -> int:
    """``rc-update``: see the module docstring for exit codes."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("rollback", "status"):
        cmd, rest = argv[0], argv[1:]
        return rollback_main(rest) if cmd == "rollback" else status_main(rest)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        registry, target = setup(args)
    except UsageError as e:
        say(f"rc-update: {e}", err=True)
        return USAGE
    layout = Layout(args.root)
    if args.once:
        out = update_once(registry, layout, target)
        say(f"rc-update: {out.message}", err=out.code != OK)
        return out.code
    return poll(registry, layout, target, args)


def setup(args: argparse.Namespace) -> tuple[Registry, Target]:
    """The registry client and the target from the flags; ``UsageError`` for bad ones."""
    from runtime.state_file import default_state_path

    if args.keep < 1:
        raise UsageError(f"--keep {args.keep}: keep at least 1 bundle")
    try:
        trusted = load_trusted_keys(args.trust)
    except SignatureError as e:
        raise UsageError(str(e)) from None
    except ImportError:
        raise UsageError("--trust needs the `cryptography` package: pip install 'rc-edge[jetson]'") from None
    try:
        registry = Registry(args.tracking_uri)
    except ValueError as e:
        raise UsageError(str(e)) from None
    state = args.state_file if args.state_file is not None else default_state_path()
    timeout = args.park_timeout if args.park_timeout is not None else (0.0 if args.once else 30.0)
    on_swap = args.on_swap.split() if args.on_swap else None
    gate = None if args.no_gate else GateConfig(args.gate_backend, args.gate_format, args.gate_p99_ms,
                                                 args.gate_tolerance)
    return registry, Target(args.name, args.alias, args.car_id, trusted, str(state) if state else None,
                            args.keep, timeout, on_swap, gate)


def poll(registry: Registry, layout: Layout, target: Target, args: argparse.Namespace) -> int:
    """Pass after pass until SIGTERM: ``interval`` plus up to ``jitter`` of it between passes, and
    a doubling wait (up to ``max_backoff``) while the registry cannot be reached."""
    from runtime.signal_stop import SignalStop

    stop = threading.Event()
    SignalStop(stop)
    backoff = args.interval
    while not stop.is_set():
        out = update_once(registry, layout, target)
        level = logging.INFO if out.code in (OK, NOT_PARKED) else logging.WARNING
        if not out.figures.get("already"):
            log.log(level, "%s", out.message)
        if out.code == UNREACHABLE:
            backoff = min(backoff * 2, args.max_backoff)
            wait = backoff
        else:
            backoff = args.interval
            wait = args.interval
        stop.wait(wait * (1.0 + random.uniform(0.0, args.jitter)))  # spreads a fleet out; not crypto
    return 0


def rollback_parser() -> argparse.ArgumentParser:
    """The flags of ``rc-update rollback``."""
    p = argparse.ArgumentParser(prog="rc-update rollback", description="Put the previous bundle back in ROOT/current.")
    p.add_argument("--root", required=True)
    p.add_argument("--state-file", default=None)
    p.add_argument("--park-timeout", type=float, default=0.0)
    p.add_argument("--reason", default="by hand")
    p.add_argument("--on-swap", default=None)
    return p


def status_parser() -> argparse.ArgumentParser:
    """The flags of ``rc-update status``."""
    p = argparse.ArgumentParser(prog="rc-update status", description="What ROOT/current runs and the last update.")
    p.add_argument("--root", required=True)
    p.add_argument("--state-file", default=None)
    p.add_argument("--json", action="store_true")
    return p


def rollback_main(argv: list[str]) -> int:
    """``rc-update rollback --root DIR``: the previous bundle back (when parked); the version left
    is remembered as rolled back, so following the alias does not reinstall it."""
    p = rollback_parser()
    args = p.parse_args(argv)
    from runtime.state_file import default_state_path

    layout = Layout(args.root)
    cur, prev = layout.current_version(), layout.previous()
    if prev is None:
        say(f"rc-update: no previous bundle in {layout.bundles} to roll back to (current: {'v' + cur if cur else 'none'})", err=True)
        return REFUSED
    state = args.state_file if args.state_file is not None else default_state_path()
    why = wait_parked(Target("", "", "", [], str(state) if state else None, park_timeout_s=args.park_timeout))
    if why is not None:
        say(f"rc-update: not rolled back: {why}", err=True)
        return NOT_PARKED
    layout.swap(prev)
    rec = layout.record()
    if cur is not None:
        rec["rolled_back"] = sorted(set(rec.get("rolled_back", [])) | {cur})
    rec["last"] = {"code": OK, "message": f"rolled back v{cur} -> v{prev}: {args.reason}", "version": prev}
    layout.save(rec)
    if args.on_swap:
        from runtime.update.agent import restart

        restart(args.on_swap.split())
    say(f"rc-update: rolled back v{cur} -> v{prev}")
    return OK


def status_main(argv: list[str]) -> int:
    """``rc-update status --root DIR [--json]``: what runs, what is kept, the last pass."""
    args = status_parser().parse_args(argv)
    doc = status(Layout(args.root), args.state_file)
    if args.json:
        say(json.dumps(doc, indent=2))
    else:
        cur = doc["current"]
        say(f"current: {'v' + cur['version'] if cur else 'none'}"
              + (f" ({cur['model']} in {cur['path']}, {'valid' if cur['valid'] else 'INVALID: ' + cur['error']})"
                 if cur else ""))
        say(f"bundles: {', '.join('v' + v for v in doc['bundles']) or 'none'}; staging: "
              f"{', '.join(doc['staging']) or 'none'}")
        say(f"car: {'parked' if doc['parked'] else 'driving'} ({doc['parked_why']})")
        if doc.get("last"):
            say(f"last: {doc['last'].get('message')}")
    return OK


def status(layout: Layout, state_file: str | None) -> dict[str, Any]:
    """The status document (``status --json``)."""
    from runtime.state_file import default_state_path

    cur = layout.current_version()
    current: dict[str, Any] | None = None
    if cur is not None:
        current = {"version": cur, "path": str(layout.current.resolve()), "valid": True, "error": "", "model": ""}
        try:
            current["model"] = load_manifest(layout.current).model.name
        except BundleError as e:
            current.update(valid=False, error=str(e))
    state = state_file if state_file is not None else default_state_path()
    parked, why = parked_now(state)
    rec = layout.record()
    staging = sorted(p.name for p in layout.staging.iterdir()) if layout.staging.is_dir() else []
    return {"current": current, "bundles": layout.installed(), "staging": staging, "parked": parked,
            "parked_why": why, "last": rec.get("last"), "rolled_back": rec.get("rolled_back", []),
            "history": rec.get("history", [])[-10:]}


__all__ = ["RegistryError", "RegistryUnreachable", "main"]
