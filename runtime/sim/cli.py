"""``rc-car-sim``: the simulated car on a pseudo-terminal (or a real serial port), as a process.

    rc-car-sim --pty-link /tmp/rc-car --log commands.jsonl
    rc-runtime --serial /tmp/rc-car ...          # in another shell
    kill -USR1 <pid>                             # flip the RC transmitter's override switch

Every accepted command and state change is logged as one JSON line (``t`` is time.monotonic(),
comparable with the runtime's timestamps on the same machine). SIGTERM/SIGINT end it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import termios
import threading
import time
import tty
from types import FrameType
from typing import IO

from runtime.link.protocol import DISARM_MS, FAILSAFE_MS, STATUS_PERIOD_MS
from runtime.sim.car import CarModel
from runtime.sim.simulator import CarSimulator, start_pty_simulator


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rc-car-sim", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--pty-link", metavar="PATH", help="symlink to the pseudo-terminal's slave (like /dev/rc-car)")
    where.add_argument("--port", metavar="DEV", help="serve a real serial port instead of a pseudo-terminal")
    p.add_argument("--baud", type=int, default=115200, help="baud rate with --port (default 115200)")
    p.add_argument("--log", metavar="FILE", help="append the JSON-lines command log here ('-' = stdout)")
    p.add_argument("--failsafe-ms", type=float, default=FAILSAFE_MS, help="neutral after this long without DRIVE")
    p.add_argument("--disarm-ms", type=float, default=DISARM_MS, help="disarm after this long without any frame")
    p.add_argument("--status-ms", type=float, default=STATUS_PERIOD_MS, help="status frame period")
    p.add_argument("--battery-mv", type=int, default=7400, help="battery voltage reported (0 = unknown)")
    p.add_argument("--manual", action="store_true", help="start with the RC override on")
    p.add_argument("--duration", type=float, help="exit after this many seconds")
    return p


def _open_port(dev: str, baud: int) -> int:
    """Open a real serial port raw 8N1 at ``baud`` (no pyserial: the simulator owns the fd)."""
    speed = getattr(termios, f"B{baud}", None)
    if speed is None:
        raise ValueError(f"unsupported baud rate {baud}")
    fd = os.open(dev, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        tty.setraw(fd)
        attrs = termios.tcgetattr(fd)
        attrs[2] |= termios.CLOCAL | termios.CREAD
        attrs[4] = attrs[5] = speed
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except (OSError, termios.error):
        os.close(fd)
        raise
    return fd


def main(argv: list[str] | None = None) -> int:
    """``rc-car-sim`` (console script): run the simulated car on a pseudo-terminal (``--pty-link``) or a
    serial port (``--port``) until SIGTERM/SIGINT or ``--duration`` (s); SIGUSR1 toggles the RC
    override. Returns 0, or 2 when the port cannot be opened.
    """
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="rc-car-sim: %(message)s")
    out = sys.stdout
    stream: IO[str] | None = None
    if args.log == "-":
        stream = out
    elif args.log:
        stream = open(args.log, "a", buffering=1)  # noqa: SIM115 - closed at exit
    model_kwargs = {
        "failsafe_ms": args.failsafe_ms,
        "disarm_ms": args.disarm_ms,
        "status_period_ms": args.status_ms,
        "battery_mv": args.battery_mv,
    }
    try:
        if args.port:
            try:
                fd = _open_port(args.port, args.baud)
            except (OSError, ValueError, termios.error) as exc:
                sys.stderr.write(f"rc-car-sim: cannot open {args.port}: {exc}\n")
                return 2
            sim = CarSimulator(fd, model=CarModel(**model_kwargs), log_stream=stream).start()
            where = args.port
        else:
            sim, where = start_pty_simulator(link_path=args.pty_link, log_stream=stream, **model_kwargs)
        return _serve(sim, where, args, out)
    finally:
        if stream is not None and stream is not out:
            stream.close()


def _serve(sim: CarSimulator, where: str, args: argparse.Namespace, out: IO[str]) -> int:
    done = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        done.set()

    def toggle_manual(signum: int, _frame: FrameType | None) -> None:
        sim.set_manual(not sim.model.manual)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGUSR1, toggle_manual)
    if args.manual:
        sim.set_manual(True)
    banner = sys.stderr if args.log == "-" else out  # with --log - stdout carries only JSON lines
    banner.write(f"rc-car-sim: listening on {where}\n")
    banner.flush()
    deadline = None if args.duration is None else time.monotonic() + args.duration
    try:
        while not done.is_set():
            left = 0.2 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                break
            done.wait(min(left, 0.2))
    finally:
        sim.stop()
    n = len(sim.commands())
    logging.getLogger(__name__).info(
        "stopped: %d drive commands accepted, %d rejected frames, final state %s", n, sim.model.rx_errors, sim.state
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
