"""IMU URIs: the two kinds, typed options, and one-line errors naming the fix."""

from __future__ import annotations

import pytest

from runtime.imu import ImuError, Mpu6050Source, ReplaySource, make_imu_source, parse_imu_uri


def test_file_and_bare_paths() -> None:
    assert parse_imu_uri("file://logs/imu.csv").target == "logs/imu.csv"
    assert parse_imu_uri("file:///data/imu.csv").target == "/data/imu.csv"
    u = parse_imu_uri("imu.csv")
    assert (u.kind, u.target) == ("file", "imu.csv")
    assert isinstance(make_imu_source("imu.csv"), ReplaySource)


def test_mpu6050_options() -> None:
    u = parse_imu_uri("mpu6050://1?addr=0x69&rate=50&accel_g=4&gyro_dps=500")
    assert (u.kind, u.target) == ("mpu6050", "1")
    assert u.options == {"addr": 0x69, "rate": 50.0, "accel_g": 4, "gyro_dps": 500}
    src = make_imu_source("mpu6050://7")
    assert isinstance(src, Mpu6050Source) and (src.bus_no, src.addr, src.rate) == (7, 0x68, 100.0)


@pytest.mark.parametrize(
    ("uri", "match"),
    [
        ("", "empty.*file://imu.csv"),
        ("bno055://1", "unknown scheme 'bno055'.*mpu6050://BUS"),
        ("mpu6050://one", "bus must be a number"),
        ("mpu6050://1?address=0x68", "unknown option 'address'.*addr, rate"),
        ("mpu6050://1?addr=sixty", "addr='sixty' is not a number"),
        ("file://imu.csv?loop=1", "unknown option 'loop'.*none"),
        ("mpu6050://1?accel_g=3", "accel_g=3; choose 2, 4, 8 or 16"),
        ("mpu6050://1?addr=0x80", "not a 7-bit I2C address"),
    ],
)
def test_bad_uris(uri: str, match: str) -> None:
    with pytest.raises(ImuError, match=match) as e:
        make_imu_source(uri)
    assert "\n" not in str(e.value)
