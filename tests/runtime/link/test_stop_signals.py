"""How a runtime that is stopped leaves the car, on a real pty with the car simulator, the runtime in its
own process (the real Watchdog, SignalStop and SerialDriveLink, driving at 50 Hz):

- SIGTERM: the first NEUTRAL the car gets after the signal carries the disarm bit (2-3 plain NEUTRALs
  used to come first, the disarm only from close()).
- SIGKILL with both cores busy and a runtime holding a few hundred MB (a loaded model): the guard's
  NEUTRAL with disarm is the first NEUTRAL the car gets, within 100 ms of the last DRIVE (4 of 5
  runs at least; all within the car's 250 ms failsafe).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from runtime.sim import CarSimulator, start_pty_simulator

REPO = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}

# The runtime's stop path as assembly.run wires it: SIGTERM sets the stop event the watchdog halts on;
# the loop then ends, sends neutral and closes the link.
RUNTIME = textwrap.dedent(
    """
    import sys, threading, time
    from runtime.events import Events
    from runtime.link import SerialDriveLink
    from runtime.policy import Command
    from runtime.signal_stop import SignalStop
    from runtime.watchdog import Watchdog
    ballast = b"\x01" * (int(sys.argv[2]) << 20)  # resident memory, as a runtime with a model has
    stop = threading.Event()
    signals = SignalStop(stop)
    link = SerialDriveLink(sys.argv[1])
    link.open()
    wd = Watchdog(link, Events(), deadline_s=0.1, halt=stop).start()
    i = 0
    while not stop.is_set():
        i += 1
        wd.drive(Command(0.0, 0.4, True, 0.0, 0.4), time.monotonic(), i)
        if i == 20:
            print("driving", flush=True)
        time.sleep(0.02)
    wd.neutral("run ended")
    wd.stop()
    link.close()
    signals.restore()
    """
)


def start_runtime(path: str, ballast_mb: int = 0) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", RUNTIME, path, str(ballast_mb)], stdout=subprocess.PIPE, text=True,
                            env=ENV)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "driving"
    return proc


def test_sigterm_first_neutral_disarms() -> None:
    sim: CarSimulator
    sim, path = start_pty_simulator()
    firsts: list[dict] = []
    try:
        for _ in range(3):  # the loop's and the watchdog thread's neutral race: a few runs
            proc = start_runtime(path)
            try:
                assert sim.wait_for(lambda s: s.state == "armed" and s.output.throttle == 0.4, timeout=5)
                time.sleep(random.uniform(0, 0.02))
                t_term = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(5) == 0
                assert sim.wait_for(lambda s: s.state == "disarmed", timeout=1)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            after = [e for e in list(sim.events) if e["t"] >= t_term and e["event"] == "neutral"]
            assert after, "no NEUTRAL after SIGTERM"
            firsts.append({**after[0], "after_ms": round(1000 * (after[0]["t"] - t_term), 1)})
    finally:
        sim.stop()
    assert all(f["disarm"] for f in firsts), f"first NEUTRAL after each SIGTERM: {firsts}"
    assert all(f["after_ms"] < 100 for f in firsts), f"first NEUTRAL after each SIGTERM: {firsts}"


KILL_RUNS = int(os.environ.get("RC_KILL_RUNS", "5"))


def test_sigkill_under_load_neutral_with_disarm_within_100ms_of_the_last_drive() -> None:
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    sim: CarSimulator
    sim, path = start_pty_simulator()
    gaps: list[float] = []
    try:
        for _ in range(KILL_RUNS):
            proc = start_runtime(path, ballast_mb=300)
            try:
                assert sim.wait_for(lambda s: s.state == "armed" and s.output.throttle == 0.4, timeout=5)
                time.sleep(0.2 + random.uniform(0, 0.02))  # a random point of the 20 ms send cycle
                t_kill = time.monotonic()
                proc.send_signal(signal.SIGKILL)
                assert sim.wait_for(lambda s: s.state == "disarmed", timeout=3)
            finally:
                proc.kill()
                proc.wait()
            events = list(sim.events)
            last_drive = max(e["t"] for e in events if e["event"] == "drive" and e["t"] <= t_kill)
            disarm = next(e for e in events if e["event"] == "neutral" and e["t"] >= t_kill)
            assert disarm["disarm"], f"the first NEUTRAL after the kill: {disarm}"
            gaps.append(disarm["t"] - last_drive)
    finally:
        for p in busy:
            p.kill()
            p.wait()
        sim.stop()
    ms = sorted(round(g * 1000, 1) for g in gaps)
    print(f"\nlast DRIVE -> NEUTRAL(disarm), {len(ms)} SIGKILLs under load: {ms} ms")
    # 5 runs cannot show a p99: all but one within 100 ms, and none left to the car's 250 ms failsafe
    # (before: 140-270 ms with this runtime's 300 MB, the deadline's plain NEUTRAL first)
    assert ms[-2] < 100 and ms[-1] < 250, f"last DRIVE -> NEUTRAL(disarm): {ms} ms"
