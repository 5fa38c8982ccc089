"""An IMU log written as the CSV ``file://`` replays, and the register file i2c-stub presents."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np


def write_imu_csv(path: Path, t: np.ndarray, values: np.ndarray, extra_column: bool = False) -> Path:
    """Rows ``t, ax, ay, az, gx, gy, gz`` (values (N, 6))."""
    head = "t,ax,ay,az,gx,gy,gz" + (",temp" if extra_column else "")
    lines = [head]
    for ti, v in zip(t, values, strict=True):
        lines.append(",".join(repr(float(x)) for x in (ti, *v)) + (",25.0" if extra_column else ""))
    path.write_text("\n".join(lines) + "\n")
    return path


def imu_log(n: int = 200, rate_hz: float = 100.0, t0: float = 12.5) -> tuple[np.ndarray, np.ndarray]:
    """A 6-axis log: gravity on z, a swerve in gyro z, row i identifiable by ax = i / 100."""
    t = t0 + np.arange(n) / rate_hz
    v = np.zeros((n, 6), np.float32)
    v[:, 0] = np.arange(n) / 100.0
    v[:, 2] = 9.81
    v[:, 5] = np.sin(np.arange(n) / 10.0)
    return t, v


class RegisterFileBus:
    """What the kernel's ``i2c-stub`` is: a 256-byte register file per chip address, with the
    SMBus byte and I2C-block calls (auto-incrementing register pointer); other addresses NACK
    (``EREMOTEIO``, as a real bus reports). Used where i2c-stub cannot be loaded."""

    def __init__(self, chips: dict[int, bytearray]) -> None:
        self.chips = chips
        self.closed = False
        self.fail_reads = False

    def _chip(self, addr: int) -> bytearray:
        if addr not in self.chips or self.closed:
            raise OSError(errno.EREMOTEIO, "Remote I/O error")
        return self.chips[addr]

    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        return self._chip(i2c_addr)[register]

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None:
        self._chip(i2c_addr)[register] = value & 0xFF

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        if self.fail_reads:
            raise OSError(errno.EREMOTEIO, "Remote I/O error")
        regs = self._chip(i2c_addr)
        return [regs[(register + i) & 0xFF] for i in range(length)]

    def close(self) -> None:
        self.closed = True


def mpu6050_registers(accel_raw: tuple[int, int, int], gyro_raw: tuple[int, int, int], who_am_i: int = 0x68) -> bytearray:
    """A register file holding an MPU-6050's WHO_AM_I and one set of raw int16 readings."""
    regs = bytearray(256)
    regs[0x75] = who_am_i
    regs[0x6B] = 0x40  # power-on state: asleep
    block = np.array([*accel_raw, 1234, *gyro_raw], dtype=">i2").tobytes()
    regs[0x3B : 0x3B + 14] = block
    return regs
