"""``sim://``: a SerialDriveLink to a car simulator started in this process on a fresh pty."""

from __future__ import annotations

from runtime.link.serial_link import SerialDriveLink
from runtime.sim.simulator import CarSimulator, start_pty_simulator


class SimulatedCarLink(SerialDriveLink):
    """Real serial I/O through a pseudo-terminal to an in-process simulated car. ``log`` appends the
    simulator's JSON-lines command log to a file."""

    def __init__(self, log: str | None = None, battery_mv: int = 7400) -> None:
        self._sim_log = log
        self._battery_mv = battery_mv
        self.simulator: CarSimulator | None = None
        super().__init__("sim://")

    def open(self) -> None:
        if self.simulator is None:
            self.simulator, self.port = start_pty_simulator(log_path=self._sim_log, battery_mv=self._battery_mv)
        super().open()

    def close(self) -> None:
        super().close()
        if self.simulator is not None:
            self.simulator.wait_for(lambda s: s.state == "disarmed", timeout=0.5)
            self.simulator.stop()
            self.simulator = None
