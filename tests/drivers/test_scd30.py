"""SCD30 against a command-level stand-in (SCD30 Interface Description v1.0, May 2020)."""

import errno
import math

import pytest

from pibridge.drivers import DeviceNotFound, OptionError, ReadFailed, ValueRejected, create
from pibridge.drivers.i2c import _bus, scd30
from tests.support.chips.scd30 import EXAMPLE_WORDS, SCD30Chip, float_words
from tests.support.virtual_clock import install

#: Section 1.5, example of read measurement: CO2 0x43DB 0x8C2E, T 0x41D9 0xE7FF, RH 0x4243 0x3A1B,
#: each word followed by its CRC.
EXAMPLE_FRAME = bytes.fromhex("43dbcb 8c2e8f 41d970 e7fff5 4243bf 3a1b74")


@pytest.fixture
def clock(monkeypatch):
    return install(monkeypatch, scd30, _bus)


def opened(options=None):
    driver = create("scd30", "kitchen", options or {})
    driver.open()
    return driver


def test_known_answer_from_the_interface_description_example(bus, clock):
    chip = bus.add(SCD30Chip(clock=clock))
    chip.answer(*EXAMPLE_WORDS)
    assert chip.response == EXAMPLE_FRAME  # the stand-in's CRCs are the document's
    chip.response = b""
    driver = opened()
    # Section 1.5: 0x43DB8C2E = 439.09 ppm, 0x41D9E7FF = 27.24 °C, 0x42433A1B = 48.81 %RH.
    assert driver.read() == {"co2": 439.1, "temperature": 27.24, "humidity": 48.81}
    driver.close()


def test_the_float_format_round_trips_through_the_driver(bus, clock):
    words = (*float_words(1234.5), *float_words(-3.25), *float_words(99.5))
    bus.add(SCD30Chip(clock=clock, words=words))
    driver = opened()
    assert driver.read() == {"co2": 1234.5, "temperature": -3.25, "humidity": 99.5}
    driver.close()


def test_flash_settings_are_written_only_when_they_differ(bus, clock):
    chip = bus.add(SCD30Chip(clock=clock))
    driver = opened({"altitude": 420, "measurement_interval": 5, "temperature_offset": 1.5})
    assert (chip.altitude, chip.interval, chip.temperature_offset, chip.asc) == (420, 5, 150, 0)
    assert chip.flash_writes == 3
    driver.close()
    driver.open()  # a restart with the same options wears no flash
    assert chip.flash_writes == 3
    assert driver.min_interval() == 5.0
    driver.close()


def test_fixed_pressure_starts_the_measurement_with_it(bus, clock):
    chip = bus.add(SCD30Chip(clock=clock))
    driver = opened({"pressure": 972.0})
    assert chip.measuring and chip.pressure == 972
    driver.close()


def test_pressure_from_another_sensor_restarts_only_on_change(bus, clock):
    chip = bus.add(SCD30Chip(clock=clock))
    driver = create("scd30", "kitchen", {"compensate_from": "weather"})
    values = {"pressure": 1001.2}
    driver.peers(lambda name: dict(values) if name == "weather" else None)
    driver.open()
    driver.read()
    driver.read()
    values["pressure"] = 995.4
    driver.read()
    assert chip.triggers == [0, 1001, 995]
    driver.close()


def test_reads_wait_for_the_data_ready_flag(bus, clock):
    chip = bus.add(SCD30Chip(clock=clock))
    driver = opened({"measurement_interval": 10})
    started = clock.now
    driver.read()
    assert clock.now - started >= 10.0
    assert chip.commands.count(bytes([0x02, 0x02])) > 1
    driver.close()


def test_crc_mismatch_names_the_clock_stretching_workaround(bus, clock):
    chip = bus.add(SCD30Chip(clock=clock))
    driver = opened()
    chip.corrupt_crc = True
    with pytest.raises(ReadFailed) as info:
        driver.read()
    assert "CRC mismatch" in str(info.value) and "i2c_arm_baudrate=10000" in str(info.value)
    chip.corrupt_crc = False
    assert driver.read()["co2"] == 439.1
    driver.close()


def test_garbled_firmware_answer_is_not_an_scd30(bus, clock):
    chip = bus.add(SCD30Chip(clock=clock))
    chip.corrupt_crc = True
    with pytest.raises(DeviceNotFound, match="not an SCD30"):
        opened()


def test_missing_module(bus, clock):
    with pytest.raises(DeviceNotFound, match="0x61 on I2C bus 1"):
        opened()


def test_io_error_mid_read(bus, clock):
    bus.add(SCD30Chip(clock=clock))
    driver = opened()
    bus.fail(errno.EREMOTEIO)
    with pytest.raises(ReadFailed, match="errno 121"):
        driver.read()
    assert driver.read()["humidity"] == 48.81
    driver.close()


@pytest.mark.parametrize(
    "co2, temperature, humidity, error, match",
    [
        (math.nan, 20.0, 50.0, ReadFailed, "not a number"),
        (40001.0, 20.0, 50.0, ValueRejected, "CO2 40001.0 ppm is outside"),
        (-5.0, 20.0, 50.0, ValueRejected, "CO2 -5.0 ppm"),
        (800.0, 90.0, 50.0, ValueRejected, "temperature 90.00 °C"),
        (800.0, 20.0, 101.0, ValueRejected, "humidity 101.00 %RH"),
    ],
)
def test_impossible_values_are_refused(bus, clock, co2, temperature, humidity, error, match):
    words = (*float_words(co2), *float_words(temperature), *float_words(humidity))
    bus.add(SCD30Chip(clock=clock, words=words))
    driver = opened()
    with pytest.raises(error, match=match):
        driver.read()
    driver.close()


def test_a_module_that_stopped_measuring_is_reported(bus, clock):
    chip = bus.add(SCD30Chip(clock=clock))
    driver = opened()
    chip.measuring = False
    with pytest.raises(DeviceNotFound, match="no new measurement within 5 s"):
        driver.read()
    driver.close()


@pytest.mark.parametrize(
    "options, key",
    [
        ({"measurement_interval": 1}, "measurement_interval"),
        ({"altitude": -1}, "altitude"),
        ({"pressure": 1500.0}, "pressure"),
        ({"pressure": 1000.0, "compensate_from": "weather"}, "pressure"),
        ({"temperature_offset": 30.0}, "temperature_offset"),
    ],
)
def test_options_are_checked(options, key):
    with pytest.raises(OptionError) as info:
        create("scd30", "kitchen", options)
    assert info.value.key == key
