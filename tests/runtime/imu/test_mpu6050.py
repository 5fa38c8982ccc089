"""mpu6050://: register map, scaling to SI units, the reader thread, and the errors at start.

The chip's I2C side is what the kernel's ``i2c-stub`` module presents: a register file. The last
test drives the source through smbus2 against i2c-stub itself where that module can be loaded
(root, a kernel with modules); elsewhere it skips with the reason and the other tests use
:class:`RegisterFileBus`, the same register file in Python."""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from runtime.camera.base import CameraFrame
from runtime.imu import ImuError, Mpu6050Source, make_imu_source
from runtime.imu.mpu6050 import ACCEL_CONFIG, GYRO_CONFIG, PWR_MGMT_1, _open_smbus, decode_block
from runtime.inputs import ImuProvider
from tests.runtime.imu.helpers import RegisterFileBus, mpu6050_registers

G = 9.80665
DEG = math.pi / 180.0


def source(bus: RegisterFileBus, uri: str = "mpu6050://1") -> Mpu6050Source:
    src = make_imu_source(uri)
    assert isinstance(src, Mpu6050Source)
    src._open_bus = lambda n: bus  # the register file in place of smbus2.SMBus(n)
    return src


def test_decode_scales_to_si_units() -> None:
    block = np.array([16384, -8192, 0, 999, 131, -262, 13100], dtype=">i2").tobytes()
    np.testing.assert_allclose(decode_block(block), [G, -G / 2, 0, 1 * DEG, -2 * DEG, 100 * DEG], rtol=1e-6)
    np.testing.assert_allclose(decode_block(block, accel_g=16, gyro_dps=2000)[[0, 3]], [8 * G, 131 / 16.4 * DEG],
                               rtol=1e-6)


def test_start_wakes_and_configures_the_chip_then_reads(tmp_path: Path) -> None:
    regs = mpu6050_registers((0, 0, 16384), (0, 0, -655))
    bus = RegisterFileBus({0x68: regs})
    src = source(bus, "mpu6050://1?rate=200&accel_g=4&gyro_dps=500").start()
    try:
        assert regs[PWR_MGMT_1] == 0x01 and regs[ACCEL_CONFIG] == 1 << 3 and regs[GYRO_CONFIG] == 1 << 3
        s = src.newest(time.monotonic())
        assert s is not None
        np.testing.assert_allclose(s.values, [0, 0, 2 * G, 0, 0, -655 / 65.5 * DEG], rtol=1e-6)  # +-4 g, +-500 dps
        regs[0x3B : 0x3D] = np.array([-4096], ">i2").tobytes()  # the car brakes: ax = -0.5 g
        t = time.monotonic()
        time.sleep(0.05)
        later = src.nearest(time.monotonic())
        assert later is not None and later.t > t and later.values[0] == pytest.approx(-G / 2)
        assert src.stats()["samples"] >= 5 and src.chip == "MPU-6050"
    finally:
        src.stop()
    assert bus.closed


def test_an_unplugged_imu_goes_stale() -> None:
    bus = RegisterFileBus({0x68: mpu6050_registers((0, 0, 16384), (0, 0, 0))})
    src = source(bus, "mpu6050://1?rate=200").start()
    p = ImuProvider("imu_in", (1, 6), src, deadline_s=0.05)
    img = np.zeros((4, 4, 3), np.uint8)
    try:
        assert p.fill(CameraFrame(1, time.monotonic(), img, 0)) is not None
        bus.fail_reads = True  # the wire comes loose
        time.sleep(0.15)
        assert p.fill(CameraFrame(2, time.monotonic(), img, 1)) is None
        assert p.event == "imu.stale" and "no IMU sample for" in p.detail
        assert src.read_errors > 0 and "Remote I/O" in src.last_error
        bus.fail_reads = False  # plugged back in: fresh samples, ready again
        time.sleep(0.05)
        assert p.fill(CameraFrame(3, time.monotonic(), img, 2)) is not None
    finally:
        src.stop()


def test_no_chip_at_the_address_names_the_fix() -> None:
    bus = RegisterFileBus({0x69: mpu6050_registers((0, 0, 0), (0, 0, 0))})
    with pytest.raises(ImuError, match=r"mpu6050://1: no MPU-6050 at 0x68 on /dev/i2c-1 \(does not answer\).*\?addr=0x69"):
        source(bus).start()
    assert bus.closed


def test_another_chip_is_refused() -> None:
    bus = RegisterFileBus({0x68: mpu6050_registers((0, 0, 0), (0, 0, 0), who_am_i=0x12)})
    with pytest.raises(ImuError, match=r"WHO_AM_I=0x12, not an MPU-6050"):
        source(bus).start()


def test_a_compatible_chip_is_accepted() -> None:
    src = source(RegisterFileBus({0x68: mpu6050_registers((0, 0, 0), (0, 0, 0), who_am_i=0x71)})).start()
    src.stop()
    assert src.chip == "MPU-9250"


def test_a_missing_bus_device_names_the_fix() -> None:
    if Path("/dev/i2c-42").exists():
        pytest.skip("this machine has an I2C bus 42")
    with pytest.raises(ImuError, match=r"mpu6050://42: /dev/i2c-42 not found; enable I2C bus 42.*i2cdetect -l"):
        make_imu_source("mpu6050://42").start()


def test_smbus2_is_optional_and_its_absence_names_the_fix() -> None:
    try:
        import smbus2  # noqa: F401
    except ImportError:
        with pytest.raises(ImuError, match=r"smbus2 package is not installed; pip install smbus2"):
            _open_smbus(1)
    else:
        pytest.skip("smbus2 is installed here")


def _i2c_stub_bus() -> tuple[int | None, str]:
    """Load i2c-stub with a chip at 0x68 and return its bus number, or None and why not."""
    why = []
    if shutil.which("modprobe") is None or not Path("/proc/modules").exists():
        why.append("this kernel/container has no loadable modules (no modprobe or /proc/modules)")
    try:
        import smbus2  # noqa: F401
    except ImportError:
        why.append("smbus2 is not installed (pip install smbus2)")
    if why:
        return None, "; ".join(why)
    for args in (["i2c-dev"], ["i2c-stub", "chip_addr=0x68"]):
        r = subprocess.run(["modprobe", *args], capture_output=True, text=True, check=False)
        if r.returncode != 0:
            return None, f"modprobe {' '.join(args)} failed: {r.stderr.strip() or r.returncode}"
    for adapter in Path("/sys/class/i2c-adapter").glob("i2c-*"):
        if "stub" in (adapter / "name").read_text().lower():
            return int(adapter.name.split("-")[1]), ""
    return None, "i2c-stub loaded but no stub adapter in /sys/class/i2c-adapter"


def test_against_the_kernels_i2c_stub() -> None:
    bus_no, why = _i2c_stub_bus()
    if bus_no is None:
        pytest.skip(f"i2c-stub unavailable: {why}")
    import smbus2

    with smbus2.SMBus(bus_no) as bus:
        bus.write_byte_data(0x68, 0x75, 0x68)  # i2c-stub starts all-zero: give it the chip's identity
        for reg, byte in zip(range(0x3B, 0x3B + 14), np.array([0, 8192, 16384, 0, 0, 131, 0], ">i2").tobytes(),
                             strict=True):
            bus.write_byte_data(0x68, reg, byte)
    src = make_imu_source(f"mpu6050://{bus_no}?addr=0x68").start()
    try:
        s = src.newest(time.monotonic())
        assert s is not None
        np.testing.assert_allclose(s.values, [0, G / 2, G, 0, 1 * DEG, 0], rtol=1e-6)
    finally:
        src.stop()
