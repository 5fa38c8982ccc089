"""``rc-runtime``: drive the car from a bundle, a camera and a serial link.

    rc-runtime --bundle builds/rc_pilot/v3 --camera csi://0 --serial /dev/rc-car
    rc-runtime --config /etc/rc-car/runtime.toml --record /data/drives

Exit status: 0 after a normal end (``--max-frames``, ``--duration``, end of a file, SIGTERM/SIGINT),
2 for bad input (config, bundle, camera URI, link), 1 if the loop crashed, 3 when a run that ended
by itself never heard from the car (no valid STATUS: no port, wrong port, no firmware), 4 when such
a run never drove: every command was older than the watchdog deadline when it was ready. In every
case the car is commanded to neutral before the process exits.

This module is the entry point only: the flags are in ``runtime/cli_args.py``, the assembly of
camera, backend, link, watchdog and loop in ``runtime/assembly.py``, signal handling in
``runtime/signal_stop.py``.
"""

from __future__ import annotations

import logging
import sys
import threading

from runtime.assembly import INPUT_ERRORS, run
from runtime.atomic import atomic_write_json
from runtime.cli_args import build_parser, config_from_args
from runtime.config import ConfigError
from runtime.link.report import never_reached_car
from runtime.notify import notify
from runtime.signal_stop import SignalStop
from runtime.stats import format_summary, never_drove_line

log = logging.getLogger("runtime")


def main(argv: list[str] | None = None) -> int:
    """``rc-runtime``: drive the car until stopped; print the stats summary (and write it with
    ``--stats-json``). Exit 0; 2 for bad input (config, bundle, camera, link; one line on stderr, the
    car in neutral); 3 when a run that ended by itself never got a valid STATUS from the car; 4 when it
    never drove (no command in time; the line names the latency and the deadline, also on the systemd
    status line); 130 on Ctrl-C; 1 on a crash (logged)."""
    args = build_parser().parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ConfigError as e:
        sys.stderr.write(f"rc-runtime: {e}\n")
        return 2
    logging.basicConfig(level=cfg.log.level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.check:  # before anything opens the link (runtime/check.py)
        from runtime.check import check_main

        return check_main(cfg, lambda line: sys.stdout.write(line + "\n"), lambda line: sys.stderr.write(line + "\n"))
    stop = threading.Event()
    signals = SignalStop(stop)
    try:
        summary = run(cfg, stop)
    except INPUT_ERRORS as e:
        sys.stderr.write(f"rc-runtime: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("rc-runtime: interrupted\n")
        return 130
    except Exception:
        log.exception("rc-runtime crashed (the car was commanded to neutral)")
        return 1
    finally:
        signals.restore()
    sys.stdout.write(format_summary(summary) + "\n")
    if cfg.run.stats_json:
        atomic_write_json(cfg.run.stats_json, summary)
    failure = never_reached_car(summary)
    late = never_drove_line(summary)
    if late:
        sys.stderr.write(f"rc-runtime: {late}\n")
        notify(f"STATUS={late}")  # what `systemctl status` shows after the run
    if failure:
        sys.stderr.write(f"rc-runtime: {failure}\n")
        return 3
    return 4 if late else 0


if __name__ == "__main__":
    sys.exit(main())
