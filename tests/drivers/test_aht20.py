"""AHT20 / AHT10 against a command-level stand-in (AHT20 datasheet version 1.1)."""

import errno

import pytest

from pibridge.drivers import DeviceNotFound, OptionError, ReadFailed, ValueRejected, create
from pibridge.drivers.i2c import _bus, aht20
from tests.support.chips.aht20 import AHT20Chip
from tests.support.virtual_clock import install


@pytest.fixture
def clock(monkeypatch):
    return install(monkeypatch, aht20, _bus)


def opened(options=None):
    driver = create("aht20", "bedroom", options or {})
    driver.open()
    return driver


@pytest.mark.parametrize(
    "raw_h, raw_t, humidity, temperature",
    [
        # Section 6: RH = S_RH / 2^20 * 100 %, T = S_T / 2^20 * 200 - 50 °C.
        (0x80000, 0x60000, 50.0, 25.0),
        (0x00000, 0x33333, 0.0, -10.0),  # 0x33333 / 2^20 = 0.2 (to 1e-6)
        (0xFFFFF, 0x80000, 100.0, 50.0),  # (2^20 - 1) / 2^20 * 100 = 99.9999
    ],
)
def test_conversion(bus, clock, raw_h, raw_t, humidity, temperature):
    bus.add(AHT20Chip(clock=clock, raw_h=raw_h, raw_t=raw_t))
    driver = opened()
    assert driver.read() == {"temperature": temperature, "humidity": humidity}
    driver.close()


def test_loads_the_calibration_when_the_status_bit_is_clear(bus, clock):
    chip = bus.add(AHT20Chip(clock=clock, calibrated=False))
    driver = opened()
    assert chip.commands[0] == bytes([0xBE, 0x08, 0x00]) and chip.calibrated
    driver.close()
    chip.commands.clear()
    driver.open()  # already calibrated: no initialisation
    assert chip.commands == []
    driver.close()


def test_aht10_initialises_with_its_own_command_and_has_no_crc(bus, clock):
    chip = bus.add(AHT20Chip(0x39, clock=clock, model="aht10"))
    driver = opened({"model": "aht10", "address": 0x39})
    assert chip.commands[0] == bytes([0xE1, 0x08, 0x00])
    assert driver.read() == {"temperature": 25.0, "humidity": 50.0}
    driver.close()


def test_an_aht20_driven_as_aht10_is_refused(bus, clock):
    bus.add(AHT20Chip(clock=clock, model="aht20"))
    with pytest.raises(DeviceNotFound, match="refuses the AHT10 initialisation command.*not an AHT10"):
        opened({"model": "aht10"})


def test_waits_while_busy(bus, clock):
    bus.add(AHT20Chip(clock=clock, calibrated=True))
    driver = opened()
    before = clock.now
    driver.read()
    assert clock.now - before >= 0.080
    driver.close()


def test_crc_mismatch(bus, clock):
    chip = bus.add(AHT20Chip(clock=clock))
    driver = opened()
    chip.corrupt_crc = True
    with pytest.raises(ReadFailed, match="CRC mismatch"):
        driver.read()
    chip.corrupt_crc = False
    assert driver.read()["humidity"] == 50.0
    driver.close()


def test_lost_calibration_is_reloaded(bus, clock):
    chip = bus.add(AHT20Chip(clock=clock))
    driver = opened()
    chip.calibrated = False  # a brown-out
    with pytest.raises(ReadFailed, match="lost its calibration"):
        driver.read()
    assert chip.calibrated and driver.read()["temperature"] == 25.0
    driver.close()


def test_temperature_beyond_the_range_is_rejected(bus, clock):
    bus.add(AHT20Chip(clock=clock, raw_t=0xFFFFF))  # 150 °C
    driver = opened()
    with pytest.raises(ValueRejected, match="150.00 °C is outside"):
        driver.read()
    driver.close()


def test_missing_chip_and_io_error(bus, clock):
    with pytest.raises(DeviceNotFound, match="0x38 on I2C bus 1"):
        opened()
    bus.add(AHT20Chip(clock=clock))
    driver = opened()
    bus.fail(errno.EREMOTEIO)
    with pytest.raises(ReadFailed, match="errno 121"):
        driver.read()
    assert driver.read()["temperature"] == 25.0
    driver.close()


def test_options():
    with pytest.raises(OptionError) as info:
        create("aht20", "b", {"model": "aht30"})
    assert info.value.key == "model"
    with pytest.raises(OptionError) as info:
        create("aht20", "b", {"address": 0x39})
    assert info.value.key == "address"


def test_a_chip_that_never_sets_its_calibration_bit_is_refused(bus, clock):
    chip = bus.add(AHT20Chip(clock=clock))
    chip.on_command = lambda data: None  # acknowledges the initialisation but does nothing
    with pytest.raises(DeviceNotFound, match=r"calibration bit \(status bit 3\) stays 0"):
        opened()
