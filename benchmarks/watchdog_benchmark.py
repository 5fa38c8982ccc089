"""Watchdog deadline under load: last valid command -> NEUTRAL at the car, guard process vs thread.

    python -m benchmarks.watchdog_benchmark --trips 1000 --json out.json
    python -m benchmarks.watchdog_benchmark --trips 200 --stress 0      # quiet machine

One *trip*: the host drives a few commands 10 ms apart (each one's frame "captured" just before it
is sent), then stops; the watchdog's deadline (100 ms) passes and NEUTRAL must reach the car. The
figure is ``t(NEUTRAL read by the car) - t(capture of the last command)`` on the one monotonic
clock; ideal = the deadline. Lateness beyond it is what the deadline costs under load.

Everything real: ``SerialDriveLink`` and ``Watchdog`` in this process, the car simulator
(``rc-car-sim``) in its own process on a pseudo-terminal, timing from the simulator's log (the
time it read each frame). The car stands for a microcontroller that has a CPU of its own, so the
simulator process is put on ``SCHED_FIFO`` where that is permitted (reported), else its own
wake-up delay is part of the figure.

Load: ``--stress N`` processes spinning on the CPU (default: one per core, i.e. every core busy)
and, in this process, an unpaced-camera thread that never sleeps (pure-Python work holding the
GIL, mixed with numpy work releasing it), as a loop with a camera faster than its model would.

Modes, measured side by side in alternating blocks (so load drift hits both alike):

- ``guard``: the runtime as shipped: the watchdog thread plus the deadline guard process
  (runtime/link/guard.py) that writes NEUTRAL itself at the deadline;
- ``thread``: the watchdog thread alone (the v1 design; ``guard=0`` in the link URL).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from runtime.events import Events
from runtime.link import SerialDriveLink
from runtime.policy import Command
from runtime.watchdog import Watchdog

log = logging.getLogger("watchdog_benchmark")

DEADLINE_S = 0.100
COMMANDS_PER_TRIP = 3
COMMAND_GAP_S = 0.010
SETTLE_S = 0.120  # after the deadline, before the next trip (the car must have seen NEUTRAL by then)
BLOCK = 50  # trips per block; modes alternate block by block
REPO = Path(__file__).resolve().parents[1]


def _spin() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)


class UnpacedCamera(threading.Thread):
    """A loop whose camera never makes it wait: Python work holding the GIL, numpy work releasing it."""

    def __init__(self) -> None:
        super().__init__(name="unpaced-camera", daemon=True)
        self.stop = threading.Event()
        self.frames = 0

    def run(self) -> None:
        rng = np.random.default_rng(0)
        img = rng.random((96, 160, 3), dtype=np.float32)
        w = rng.random((160, 64), dtype=np.float32)
        while not self.stop.is_set():
            x = (img - img.mean()) / (img.std() + 1e-6)  # "preprocess" (numpy, releases the GIL)
            y = x.reshape(-1, 160) @ w  # "inference"
            acc = 0.0
            for v in y[:40].ravel().tolist():  # "policy"/bookkeeping in Python (holds the GIL)
                acc += v * v
            self.frames += 1


def _start_car(tmp: Path) -> tuple[subprocess.Popen[str], str, Path, str]:
    dev, car_log = tmp / "rc-car", tmp / "car.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "runtime.sim.cli", "--pty-link", str(dev), "--log", str(car_log)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("rc-car-sim: listening on"):
        raise RuntimeError(f"car simulator did not start: {line!r}")
    policy = "fifo"
    for tid in os.listdir(f"/proc/{proc.pid}/task"):  # every thread: the car's work is in its own thread
        try:
            os.sched_setscheduler(int(tid), os.SCHED_FIFO, os.sched_param(20))
        except (AttributeError, OSError):
            policy = "other"
    return proc, str(dev), car_log, policy


def _block(
    port: str, guard: bool, trips: range, record: dict[int, tuple[str, float]], guard_writes: list[float]
) -> str | None:
    """Run ``trips`` with one link/watchdog; records trip -> (mode, capture time of its last command)
    and the times the guard process wrote NEUTRAL (its own clock reading right after the write)."""
    link = SerialDriveLink(port, guard=guard)
    link.open()
    wd = Watchdog(link, Events(), deadline_s=DEADLINE_S).start()
    cmd = Command(0.0, 0.2, True, 0.0, 0.2)
    mode = "guard" if guard else "thread"
    try:
        link.arm()
        end = time.monotonic() + 2.0
        while not link.car_armed and time.monotonic() < end:
            link.poll()
            time.sleep(0.002)
        for trip in trips:
            t = 0.0
            for k in range(COMMANDS_PER_TRIP):
                t = time.monotonic()
                wd.drive(cmd, t, trip * 16 + k)
                time.sleep(COMMAND_GAP_S)
            record[trip] = (mode, t)
            time.sleep(max(0.0, t + DEADLINE_S + SETTLE_S - time.monotonic()))
        g = link._guard  # reporting only
        policy = g.policy if g is not None else None
        if g is not None:
            link.poll()
            guard_writes += g.fired_at
    finally:
        wd.stop()
        link.close()
    return policy


def _percentiles(ms: list[float]) -> dict[str, float | int]:
    if not ms:
        return {"n": 0}
    a = np.asarray(ms)
    return {"n": len(ms), "p50": round(float(np.percentile(a, 50)), 2), "p99": round(float(np.percentile(a, 99)), 2),
            "max": round(float(a.max()), 2), "over_150ms": int((a > 150).sum()), "over_250ms": int((a > 250).sum())}


def run_benchmark(trips: int = 1000, stress: int | None = None, unpaced: bool = True) -> dict[str, Any]:
    """Both modes, ``trips`` each; returns per-mode percentiles of last-command -> NEUTRAL (ms)."""
    stress = (os.cpu_count() or 1) if stress is None else stress
    record: dict[int, tuple[str, float]] = {}
    guard_writes: list[float] = []
    spinners = [_spin() for _ in range(stress)]
    cam = UnpacedCamera()
    if unpaced:
        cam.start()
    guard_policy = None
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        car, port, car_log, car_policy = _start_car(Path(tmp))
        try:
            n_blocks = (trips + BLOCK - 1) // BLOCK
            for b in range(n_blocks):
                lo, hi = b * BLOCK, min(trips, (b + 1) * BLOCK)
                for guard in ((True, False) if b % 2 == 0 else (False, True)):  # ABBA
                    base = 0 if guard else 1_000_000
                    p = _block(port, guard, range(base + lo, base + hi), record, guard_writes)
                    guard_policy = p or guard_policy
                log.info("block %d/%d done (%.0f s)", b + 1, n_blocks, time.monotonic() - t0)
        finally:
            cam.stop.set()
            for s in spinners:
                s.kill()
                s.wait()
            car.send_signal(signal.SIGTERM)
            car.wait(10)
        events = [json.loads(line) for line in car_log.read_text().splitlines() if line.strip()]
    last_drive: dict[int, float] = {}
    for e in events:
        if e["event"] == "drive":
            last_drive[e["tag"] // 16] = e["t"]
    stops = [e["t"] for e in events if e["event"] in ("neutral", "failsafe")]
    stops_arr = np.asarray(stops)
    out: dict[str, list[float]] = {"guard": [], "thread": []}
    missed = {"guard": 0, "thread": 0}
    for trip, (mode, t_capture) in record.items():
        t_drive = last_drive.get(trip)
        if t_drive is None:  # no command of this trip reached the car (withheld while re-arming)
            missed[mode] += 1
            continue
        i = int(np.searchsorted(stops_arr, t_drive, side="right"))
        if i >= len(stops_arr):
            missed[mode] += 1
            continue
        out[mode].append((float(stops_arr[i]) - t_capture) * 1000.0)
    writes = np.sort(np.asarray(guard_writes))
    guard_wrote: list[float] = []  # guard trips: capture of the last command -> the guard's write
    for mode, t_capture in record.values():
        i = int(np.searchsorted(writes, t_capture))
        if mode == "guard" and i < len(writes) and writes[i] - t_capture < DEADLINE_S + SETTLE_S:
            guard_wrote.append((float(writes[i]) - t_capture) * 1000.0)
    return {
        "deadline_ms": DEADLINE_S * 1000,
        "guard_process_wrote": _percentiles(guard_wrote),
        "metric": "t(NEUTRAL read by the car simulator) - t(capture of the last command), ms",
        "guard": _percentiles(out["guard"]),
        "thread": _percentiles(out["thread"]),
        "missed_trips": missed,
        "load": {"spinning_processes": stress, "cores": os.cpu_count(), "unpaced_camera_thread": unpaced,
                 "unpaced_frames": cam.frames, "loadavg_1min_end": round(os.getloadavg()[0], 2)},
        "scheduling": {"guard_process": guard_policy, "car_simulator": car_policy},
        "wall_s": round(time.monotonic() - t0, 1),
    }


def format_table(r: dict[str, Any]) -> str:
    lines = [f"last valid command -> NEUTRAL at the car (deadline {r['deadline_ms']:.0f} ms), ms",
             f"{'mode':<8}{'n':>6}{'p50':>9}{'p99':>9}{'max':>9}{'>150':>6}{'>250':>6}"]
    for mode in ("guard", "thread"):
        s = r[mode]
        if s.get("n"):
            lines.append(f"{mode:<8}{s['n']:>6}{s['p50']:>9.1f}{s['p99']:>9.1f}{s['max']:>9.1f}"
                         f"{s['over_150ms']:>6}{s['over_250ms']:>6}")
    g = r["guard_process_wrote"]
    if g.get("n"):
        lines.append(f"guard process wrote NEUTRAL (its clock after write()), n={g['n']}: p50 {g['p50']:.1f}  "
                     f"p99 {g['p99']:.1f}  max {g['max']:.1f} ms (trips where the watchdog thread was first: not counted)")
    lines.append(f"load: {r['load']}; scheduling: {r['scheduling']}; {r['wall_s']} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="watchdog_benchmark", description=__doc__.split("\n\n")[0])
    p.add_argument("--trips", type=int, default=1000, help="trips per mode (default 1000)")
    p.add_argument("--stress", type=int, help="CPU-spinning processes (default: one per core)")
    p.add_argument("--no-unpaced-camera", action="store_true", help="no GIL-hungry loop thread in the host process")
    p.add_argument("--guard-normal-priority", action="store_true",
                   help="no SCHED_FIFO for the guard (as for a service without CAP_SYS_NICE / LimitRTPRIO)")
    p.add_argument("--json", help="also write the result here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("runtime").setLevel(logging.ERROR)  # expired/lagging events are the point here
    if args.guard_normal_priority:
        os.environ["RC_LINK_GUARD_REALTIME"] = "0"
    result = run_benchmark(args.trips, args.stress, not args.no_unpaced_camera)
    sys.stdout.write(format_table(result) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
