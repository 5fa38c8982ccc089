"""``mpu6050://BUS?addr=0x68``: an InvenSense MPU-6050 on I2C, read by a thread via smbus2.

The chip donkeycar supports. Not yet run on real hardware: it is tested against a register file
that behaves like the kernel's ``i2c-stub`` (and against ``i2c-stub`` itself where that module can
be loaded). smbus2 is optional (``pip install smbus2``) and imported only when this source opens.

Register map (MPU-6000/6050 Register Map rev 4.2): PWR_MGMT_1 0x6B (0x01 wakes the chip with the
gyro PLL clock), SMPLRT_DIV 0x19, CONFIG 0x1A (DLPF), GYRO_CONFIG 0x1B and ACCEL_CONFIG 0x1C (full
scale in bits 4:3), ACCEL_XOUT_H 0x3B .. GYRO_ZOUT_L 0x48 (big-endian int16: accel x/y/z,
temperature, gyro x/y/z), WHO_AM_I 0x75 (0x68). Full scale: accel +-2/4/8/16 g = 16384/8192/4096/
2048 LSB/g; gyro +-250/500/1000/2000 deg/s = 131/65.5/32.8/16.4 LSB per deg/s. Converted to m/s^2
and rad/s.

Options: ``addr`` (0x68, or 0x69 with AD0 high), ``rate`` (Hz the thread reads at, default 100),
``accel_g`` (2, 4, 8 or 16; default 2), ``gyro_dps`` (250, 500, 1000 or 2000; default 250).
"""

from __future__ import annotations

import errno
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, cast

import numpy as np

from runtime.imu.base import CHANNELS, STANDARD_GRAVITY, ImuError, ImuSample, ImuSource

log = logging.getLogger(__name__)

PWR_MGMT_1, SMPLRT_DIV, CONFIG, GYRO_CONFIG, ACCEL_CONFIG = 0x6B, 0x19, 0x1A, 0x1B, 0x1C
ACCEL_XOUT_H, WHO_AM_I = 0x3B, 0x75
BLOCK = 14  # accel (6) + temperature (2) + gyro (6)
WHO_AM_I_MPU6050 = 0x68
# Register-compatible successors (accel/gyro part): MPU-6500, MPU-9250, MPU-9255.
WHO_AM_I_COMPATIBLE = {0x70: "MPU-6500", 0x71: "MPU-9250", 0x73: "MPU-9255"}
ACCEL_LSB_PER_G = {2: 16384.0, 4: 8192.0, 8: 4096.0, 16: 2048.0}
GYRO_LSB_PER_DPS = {250: 131.0, 500: 65.5, 1000: 32.8, 2000: 16.4}
FS_BITS = {2: 0, 4: 1, 8: 2, 16: 3, 250: 0, 500: 1, 1000: 2, 2000: 3}
HISTORY = 64  # samples kept for nearest(): 0.64 s at 100 Hz, far more than any frame's age


class SMBusLike(Protocol):
    """The part of ``smbus2.SMBus`` this source uses."""

    def read_byte_data(self, i2c_addr: int, register: int) -> int: ...
    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None: ...
    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]: ...
    def close(self) -> None: ...


def decode_block(block: list[int] | bytes, accel_g: int = 2, gyro_dps: int = 250) -> np.ndarray:
    """14 bytes from ACCEL_XOUT_H -> (6,) float32: accel m/s^2, gyro rad/s (CHANNELS order)."""
    raw = np.frombuffer(bytes(block[:BLOCK]), dtype=">i2").astype(np.float32)
    a = raw[0:3] * np.float32(STANDARD_GRAVITY / ACCEL_LSB_PER_G[accel_g])
    g = raw[4:7] * np.float32(math.pi / 180.0 / GYRO_LSB_PER_DPS[gyro_dps])
    return np.concatenate([a, g]).astype(np.float32)


def _open_smbus(bus: int) -> SMBusLike:
    try:
        import smbus2  # optional: only cars with an IMU need it
    except ImportError:
        raise ImuError(f"mpu6050://{bus}: the smbus2 package is not installed; pip install smbus2") from None
    return cast(SMBusLike, smbus2.SMBus(bus))


class Mpu6050Source(ImuSource):
    """Reads the chip every ``1 / rate`` s in its own thread, keeping the last :data:`HISTORY` samples.

    ``open_bus`` makes the bus (default: ``smbus2.SMBus(bus)``); tests pass a register file."""

    def __init__(
        self, uri: str, bus: int, addr: int = 0x68, rate: float = 100.0, accel_g: int = 2, gyro_dps: int = 250,
        open_bus: Callable[[int], SMBusLike] | None = None,
    ) -> None:
        super().__init__(uri)
        if addr not in range(0x03, 0x78):
            raise ImuError(f"IMU source {uri}: addr={addr:#x} is not a 7-bit I2C address; the MPU-6050 is 0x68 or 0x69")
        if not 1.0 <= rate <= 1000.0:
            raise ImuError(f"IMU source {uri}: rate={rate} must be in [1, 1000] Hz")
        if accel_g not in ACCEL_LSB_PER_G:
            raise ImuError(f"IMU source {uri}: accel_g={accel_g}; choose 2, 4, 8 or 16")
        if gyro_dps not in GYRO_LSB_PER_DPS:
            raise ImuError(f"IMU source {uri}: gyro_dps={gyro_dps}; choose 250, 500, 1000 or 2000")
        self.bus_no, self.addr, self.rate = bus, addr, rate
        self.accel_g, self.gyro_dps = accel_g, gyro_dps
        self._open_bus = open_bus or _open_smbus
        self._bus: SMBusLike | None = None
        self._lock = threading.Lock()
        self._t = np.full(HISTORY, -np.inf, np.float64)
        self._v = np.zeros((HISTORY, len(CHANNELS)), np.float32)
        self._n = 0  # samples taken so far (the next one goes to _n % HISTORY)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.chip = ""
        self.read_errors = 0
        self.last_error = ""

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Mpu6050Source:
        if self._thread is not None:
            return self
        dev = f"/dev/i2c-{self.bus_no}"
        if self._open_bus is _open_smbus and not os.path.exists(dev):
            raise ImuError(f"IMU source {self.uri}: {dev} not found; enable I2C bus {self.bus_no} "
                           "(Jetson: sudo /opt/nvidia/jetson-io/jetson-io.py) or give the right bus number "
                           "(i2cdetect -l lists them)")
        try:
            self._bus = self._open_bus(self.bus_no)
        except PermissionError:
            raise ImuError(f"IMU source {self.uri}: no permission to open {dev}; add the user to the i2c group") from None
        except OSError as e:
            raise ImuError(f"IMU source {self.uri}: cannot open {dev}: {e.strerror}; check the bus number") from None
        try:
            self._configure()
            self._read_one()  # a chip that answers but gives no sample is as useless as a missing one
        except OSError as e:
            self._close_bus()
            hint = ("check the wiring and power, or set ?addr=0x69 if AD0 is high (i2cdetect -y "
                    f"{self.bus_no} shows the addresses)")
            what = "does not answer" if e.errno in (errno.EREMOTEIO, errno.ENXIO, errno.EIO) else f"failed: {e}"
            raise ImuError(f"IMU source {self.uri}: no MPU-6050 at {self.addr:#x} on {dev} ({what}); {hint}") from None
        except ImuError:
            self._close_bus()
            raise
        self._thread = threading.Thread(target=self._run, name="imu", daemon=True)
        self._thread.start()
        log.info("IMU %s on %s at %#x, %.0f Hz, +-%d g, +-%d deg/s", self.chip, dev, self.addr, self.rate,
                 self.accel_g, self.gyro_dps)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
        self._close_bus()

    def _close_bus(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            try:
                bus.close()
            except OSError as e:  # closing a broken bus: nothing left to do
                log.debug("closing the I2C bus: %s", e)

    # -- the chip ------------------------------------------------------------------------------

    def _configure(self) -> None:
        assert self._bus is not None
        who = self._bus.read_byte_data(self.addr, WHO_AM_I)
        if who == WHO_AM_I_MPU6050:
            self.chip = "MPU-6050"
        elif who in WHO_AM_I_COMPATIBLE:
            self.chip = WHO_AM_I_COMPATIBLE[who]
        else:
            raise ImuError(f"IMU source {self.uri}: the device at {self.addr:#x} says WHO_AM_I={who:#04x}, not an "
                           f"MPU-6050 (0x68); check ?addr= (another chip answers there)")
        w = self._bus.write_byte_data
        w(self.addr, PWR_MGMT_1, 0x01)  # wake up (sleep bit cleared), clock from the X gyro PLL
        w(self.addr, CONFIG, 0x03)  # DLPF ~44 Hz: less vibration noise from the motor
        w(self.addr, SMPLRT_DIV, 0x04)  # 1 kHz / (1 + 4) = 200 Hz internal sample rate
        w(self.addr, GYRO_CONFIG, FS_BITS[self.gyro_dps] << 3)
        w(self.addr, ACCEL_CONFIG, FS_BITS[self.accel_g] << 3)

    def _read_one(self) -> None:
        assert self._bus is not None
        t0 = time.monotonic()
        block = self._bus.read_i2c_block_data(self.addr, ACCEL_XOUT_H, BLOCK)
        t1 = time.monotonic()
        if len(block) < BLOCK:
            raise OSError(errno.EIO, f"short read ({len(block)} of {BLOCK} bytes)")
        values = decode_block(block, self.accel_g, self.gyro_dps)
        with self._lock:
            i = self._n % HISTORY
            self._t[i] = (t0 + t1) / 2.0  # the middle of the transfer
            self._v[i] = values
            self._n += 1

    def _run(self) -> None:
        period = 1.0 / self.rate
        next_due = time.monotonic()
        while not self._stop.is_set():
            try:
                self._read_one()
            except OSError as e:  # a loose wire: no new samples, so the IMU goes stale (neutral)
                self.read_errors += 1
                if str(e) != self.last_error:
                    log.warning("IMU read failed: %s", e)
                self.last_error = str(e)
            next_due += period
            delay = next_due - time.monotonic()
            if delay < -period:  # fell behind (busy machine): do not burst
                next_due, delay = time.monotonic(), 0.0
            self._stop.wait(max(delay, 0.0))

    # -- lookups -------------------------------------------------------------------------------

    def nearest(self, t: float) -> ImuSample | None:
        with self._lock:
            if self._n == 0:
                return None
            i = int(np.argmin(np.abs(self._t - t)))  # unfilled slots are -inf: never nearest
            return ImuSample(float(self._t[i]), self._v[i].copy())

    def newest(self, now: float) -> ImuSample | None:
        with self._lock:
            if self._n == 0:
                return None
            i = (self._n - 1) % HISTORY
            return ImuSample(float(self._t[i]), self._v[i].copy())

    def stats(self) -> dict[str, Any]:
        return {"uri": self.uri, "chip": self.chip, "samples": self._n, "read_errors": self.read_errors,
                "last_error": self.last_error}
