"""Car simulator: the firmware's behaviour (docs/protocol.md) on a pseudo-terminal or serial port.

``start_pty_simulator()`` -> (simulator, path) is what tests and benchmarks use; ``rc-car-sim`` is
the console script (runtime/sim/cli.py).
"""

from runtime.sim.car import CarModel
from runtime.sim.simulator import CarSimulator, OutputChange, open_pty, start_pty_simulator

__all__ = ["CarModel", "CarSimulator", "OutputChange", "open_pty", "start_pty_simulator"]
