"""BMP388 / BMP390 against a register-level stand-in (BMP388 datasheet BST-BMP388-DS001)."""

import errno

import pytest

from pibridge.drivers import DeviceNotFound, OptionError, ReadFailed, ValueRejected, create
from pibridge.drivers.i2c import _bus, bmp3xx
from pibridge.drivers.i2c.bmp3xx import Calibration3
from tests.support.chips.bmp3xx import REFERENCE_NVM, BMP3Chip
from tests.support.virtual_clock import install


@pytest.fixture
def clock(monkeypatch):
    return install(monkeypatch, bmp3xx, _bus)


def opened(options=None):
    driver = create("bmp3xx", "roof", options or {})
    driver.open()
    return driver


def test_known_answer_of_a_real_chip(bus, clock):
    """The datasheet prints no worked example.  The elixir-sensors/bmp3xx test suite publishes one
    BMP388's coefficients and raw data with the section 9 results: 100876.006 Pa and 30.4993 °C."""
    chip = bus.add(BMP3Chip(clock=clock))
    driver = opened()
    values = driver.read()
    driver.close()
    assert values["temperature"] == pytest.approx(30.4993, abs=0.0006)
    assert values["pressure"] == pytest.approx(1008.76006, abs=0.0001)
    assert driver.model == "BMP388" and chip.measurements == 1


def test_the_coefficients_are_parsed_as_the_datasheet_table_says():
    # Same source: NVM_PAR_T1 = 27427, T2 = 18776, T3 = -10, P1 = -164, P2 = -2866, P3 = 35, P4 = 0,
    # P5 = 25578, P6 = 31086, P7 = -13, P8 = -10, P9 = 17322, P10 = 18, P11 = -60; each scaled as in section 9.1.
    c = Calibration3.parse(list(REFERENCE_NVM))
    assert c.t1 == 27427 * 256 and c.t2 == 18776 / 2**30 and c.t3 == -10 / 2**48
    assert c.p1 == (-164 - 2**14) / 2**20 and c.p2 == (-2866 - 2**14) / 2**29
    assert (c.p3, c.p4, c.p5, c.p6) == (35 / 2**32, 0.0, 25578 * 8, 31086 / 64)
    assert (c.p7, c.p8, c.p9, c.p10, c.p11) == (-13 / 256, -10 / 2**15, 17322 / 2**48, 18 / 2**48, -60 / 2**65)


def test_bmp390_and_oversampling(bus, clock):
    chip = bus.add(BMP3Chip(0x76, clock=clock, chip_id=0x60))
    driver = opened({"address": 0x76, "pressure_oversampling": 32, "temperature_oversampling": 2})
    driver.read()
    assert driver.model == "BMP390"
    assert chip.registers[0x1C] == (1 << 3 | 5)  # osr_t = x2, osr_p = x32
    assert [v for r, v in chip.writes if r == 0x1B] == [0x13]  # press_en, temp_en, forced mode
    driver.close()


def test_wrong_chip_id(bus, clock):
    bus.add(BMP3Chip(clock=clock, chip_id=0x58))
    with pytest.raises(DeviceNotFound, match='reads 0x58.*"bmp280"'):
        opened()


def test_blank_calibration(bus, clock):
    bus.add(BMP3Chip(clock=clock, nvm=bytes(21)))
    with pytest.raises(DeviceNotFound, match="calibration"):
        opened()


def test_error_register_is_a_failed_read(bus, clock):
    chip = bus.add(BMP3Chip(clock=clock))
    driver = opened()
    chip.error = 0x04
    with pytest.raises(ReadFailed, match="ERR_REG 0x04"):
        driver.read()
    chip.error = 0
    assert driver.read()["temperature"] == pytest.approx(30.4993, abs=0.0006)
    driver.close()


def test_saturated_data_is_rejected(bus, clock):
    bus.add(BMP3Chip(clock=clock, data=bytes([0xFF] * 6)))
    driver = opened()
    with pytest.raises(ValueRejected, match="outside the chip's range"):
        driver.read()
    driver.close()


def test_missing_chip_and_io_error(bus, clock):
    with pytest.raises(DeviceNotFound, match="0x77 on I2C bus 1"):
        opened()
    bus.add(BMP3Chip(clock=clock))
    driver = opened()
    bus.fail(errno.EIO)
    with pytest.raises(ReadFailed, match="errno 5"):
        driver.read()
    assert driver.read()["pressure"] == pytest.approx(1008.76006, abs=0.0001)
    driver.close()


def test_options_are_checked():
    with pytest.raises(OptionError) as info:
        create("bmp3xx", "roof", {"pressure_oversampling": 64})
    assert info.value.key == "pressure_oversampling"
