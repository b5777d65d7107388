"""HTU21D / SHT2x / Si7021 against a command-level stand-in of the shared command set."""

import errno

import pytest

from pibridge.drivers import DeviceNotFound, ReadFailed, ValueRejected, create
from pibridge.drivers._crc import htu21d_crc8
from pibridge.drivers.i2c import _bus, htu21d
from tests.support.chips.htu21d import HTU21DChip
from tests.support.virtual_clock import install


@pytest.fixture
def clock(monkeypatch):
    return install(monkeypatch, htu21d, _bus)


def opened():
    driver = create("htu21d", "cellar", {})
    driver.open()
    return driver


@pytest.mark.parametrize("message, crc", [(b"\xdc", 0x79), (b"\x68\x3a", 0x7C), (b"\x4e\x85", 0x6B)])
def test_crc_examples_of_the_datasheet(message, crc):
    # HTU21D datasheet, "CRC checksum", examples: 0xDC -> 0x79, 0x683A -> 0x7C, 0x4E85 -> 0x6B.
    assert htu21d_crc8(message) == crc


def test_known_answers_of_the_datasheet(bus, clock):
    # HTU21D datasheet: temperature example 0x683A -> 24.7 °C (status bits cleared: 24.686),
    # humidity example 0x7C80 -> 54.8 %RH (54.791).
    bus.add(HTU21DChip(clock=clock, t_word=0x683A, rh_word=0x7C80))
    driver = opened()
    assert driver.read() == {"temperature": 24.69, "humidity": 54.79}
    driver.close()


def test_no_hold_reads_wait_for_the_conversion(bus, clock):
    chip = bus.add(HTU21DChip(clock=clock))
    driver = opened()
    before = clock.now
    driver.read()
    assert clock.now - before >= 0.050 + 0.016  # the stand-in NACKs every read before that
    assert [c for c in chip.commands if c[0] in (0xF3, 0xF5)] == [b"\xf3", b"\xf5"]
    driver.close()


@pytest.mark.parametrize("user_default", [0x02, 0x3A])  # HTU21D/SHT21, Si7021 power-on values
def test_resolution_and_heater_are_set_keeping_the_reserved_bits(bus, clock, user_default):
    chip = bus.add(HTU21DChip(clock=clock, user_default=user_default | 0x81 | 0x04))
    driver = opened()
    assert chip.user == user_default  # resolution 00, heater off, reserved bits untouched
    driver.close()


def test_humidity_is_cropped_to_100(bus, clock):
    bus.add(HTU21DChip(clock=clock, rh_word=0xFFFC))  # -6 + 125 * 65532 / 65536 = 118.99
    driver = opened()
    assert driver.read()["humidity"] == 100.0
    driver.close()


def test_crc_mismatch(bus, clock):
    chip = bus.add(HTU21DChip(clock=clock))
    driver = opened()
    chip.corrupt_crc = True
    with pytest.raises(ReadFailed, match="CRC mismatch in the temperature"):
        driver.read()
    chip.corrupt_crc = False
    assert driver.read()["temperature"] == 24.69
    driver.close()


def test_end_of_battery(bus, clock):
    chip = bus.add(HTU21DChip(clock=clock))
    driver = opened()
    chip.end_of_battery = True
    with pytest.raises(ValueRejected, match="below 2.25 V"):
        driver.read()
    driver.close()


def test_temperature_out_of_range(bus, clock):
    bus.add(HTU21DChip(clock=clock, t_word=0xFFFC))  # -46.85 + 175.72 * 65532 / 65536 = 128.86 °C
    driver = opened()
    with pytest.raises(ValueRejected, match="128.86 °C is outside"):
        driver.read()
    driver.close()


def test_a_chip_that_ignores_the_user_register_is_refused(bus, clock):
    chip = bus.add(HTU21DChip(clock=clock, user_default=0x83))
    original = chip.on_command

    def stubborn(data):
        if data[0] != 0xE6:
            original(data)

    chip.on_command = stubborn
    with pytest.raises(DeviceNotFound, match="INA219 also sits at 0x40"):
        opened()


def test_missing_chip_and_io_error(bus, clock):
    with pytest.raises(DeviceNotFound, match="0x40 on I2C bus 1"):
        opened()
    bus.add(HTU21DChip(clock=clock))
    driver = opened()
    bus.fail(errno.EIO)
    with pytest.raises(ReadFailed, match="errno 5"):
        driver.read()
    assert driver.read()["humidity"] == 54.79
    driver.close()


def test_a_result_of_the_wrong_kind_is_a_failed_read(bus, clock):
    # SHT21 datasheet section 6.1: bit 1 of the second byte is 0 after a temperature, 1 after a
    # humidity measurement.  A chip that answers the other one is not trusted.
    chip = bus.add(HTU21DChip(clock=clock))
    driver = opened()
    original = chip.on_command

    def swapped(data):
        original(bytes([0xF5]) if data == b"\xf3" else data)

    chip.on_command = swapped
    with pytest.raises(ReadFailed, match="asked for the temperature but the status bits say otherwise"):
        driver.read()
    chip.on_command = original
    assert driver.read()["temperature"] == 24.69
    driver.close()
