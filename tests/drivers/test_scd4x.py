"""SCD40/SCD41 against a command-level stand-in of the chip (SCD4x datasheet v1.3, September 2022)."""

import errno
import logging

import pytest

from pibridge.drivers import DeviceNotFound, OptionError, ReadFailed, ValueRejected, create
from pibridge.drivers.i2c import _bus, scd4x
from tests.support.chips.scd4x import SCD40, SCD4xChip
from tests.support.virtual_clock import install


@pytest.fixture
def clock(monkeypatch):
    return install(monkeypatch, scd4x, _bus)


def opened(options=None, sensor="office"):
    driver = create("scd4x", sensor, options or {})
    driver.open()
    return driver


def test_known_answer_from_the_read_measurement_example(bus, clock):
    # Datasheet section 3.5.2, read_measurement example: the words 0x01f4, 0x6667 and 0x5eb9 mean
    # 500 ppm CO2, 25 °C and 37 %RH.
    chip = bus.add(SCD4xChip(clock=clock, co2=0x01F4, t_raw=0x6667, rh_raw=0x5EB9))
    driver = opened()
    assert chip.measuring and chip.period == 5.0
    assert driver.read() == {"co2": 500, "temperature": 25.0, "humidity": 37.0}
    assert chip.commands[0] == bytes([0x3F, 0x86])  # stop first: the chip may still be measuring
    driver.close()
    assert not chip.measuring  # close stops the measurement again


def test_the_answer_bytes_carry_the_datasheet_crcs(clock):
    # The example prints the CRCs 0xa2 after 0x6667 and 0x3c after 0x5eb9; 0x33 after 0x01f4 follows
    # from the CRC of section 3.11 (whose own example, 0xbeef -> 0x92, the SHT3x tests check).
    chip = SCD4xChip(clock=clock)
    chip.answer(0x01F4, 0x6667, 0x5EB9)
    assert chip.response == bytes.fromhex("01f433 6667a2 5eb93c")


def test_first_read_waits_for_the_first_periodic_measurement(bus, clock):
    chip = bus.add(SCD4xChip(clock=clock))
    driver = opened()
    started = clock.now
    driver.read()  # the stand-in has no data before 5 s and NACKs an early read_measurement
    assert clock.now - started >= 5.0
    assert sum(c == bytes([0xE4, 0xB8]) for c in chip.commands) > 1  # data-ready was polled
    driver.close()


def test_temperature_offset_is_written_as_the_datasheet_example(bus, clock):
    # Section 3.6.1 example: an offset of 5.4 °C is written as 0x241d 0x07e6 0x48.
    chip = bus.add(SCD4xChip(clock=clock))
    driver = opened({"temperature_offset": 5.4})
    assert bytes.fromhex("241d07e648") in chip.commands
    driver.close()


def test_fixed_pressure_is_sent_as_the_datasheet_example_before_each_read(bus, clock):
    # Section 3.6.5 example: ambient pressure 98700 Pa is written as 0xe000 0x03db 0x42.
    chip = bus.add(SCD4xChip(clock=clock))
    driver = opened({"pressure": 987.0})
    driver.read()
    driver.read()
    assert chip.commands.count(bytes.fromhex("e00003db42")) == 2
    driver.close()


def test_altitude_and_self_calibration_options_reach_the_chip(bus, clock):
    chip = bus.add(SCD4xChip(clock=clock))
    driver = opened({"altitude": 1950, "automatic_self_calibration": False, "mode": "low_power"})
    assert (chip.altitude, chip.asc, chip.period) == (1950, 0, 30.0)
    assert driver.min_interval() == 30.0
    driver.close()


def test_pressure_comes_from_another_sensor(bus, clock, caplog):
    chip = bus.add(SCD4xChip(clock=clock))
    driver = create("scd4x", "office", {"compensate_from": "weather"})
    assert driver.peer_needs() == {"weather": {"pressure": "hPa"}}
    latest = {}
    driver.peers(lambda name: latest.get(name))
    driver.open()
    with caplog.at_level(logging.INFO, logger="pibridge.drivers"):
        driver.read()
        driver.read()
        latest["weather"] = {"temperature": 21.0, "pressure": 1002.4, "humidity": 40.0}
        driver.read()
    assert chip.pressures == [1013, 1013, 1002]  # the default until the BME280 has read
    fallbacks = [r for r in caplog.records if "no reading from sensor 'weather' yet" in r.getMessage()]
    assert len(fallbacks) == 1 and "1013.25 hPa" in fallbacks[0].getMessage()
    assert any("compensating with the readings of sensor 'weather'" in r.getMessage() for r in caplog.records)
    driver.close()


def test_single_shot_on_an_scd41(bus, clock):
    chip = bus.add(SCD4xChip(clock=clock))
    driver = opened({"mode": "single_shot"})
    assert not chip.measuring
    before = clock.now
    assert driver.read()["co2"] == 500
    assert clock.now - before >= 5.0  # the 5 s of measure_single_shot
    assert bytes([0x21, 0x9D]) in chip.commands and bytes([0x21, 0xB1]) not in chip.commands
    driver.close()


def test_single_shot_on_an_scd40_is_refused_at_open(bus, clock):
    bus.add(SCD4xChip(clock=clock, variant=SCD40))
    with pytest.raises(DeviceNotFound, match='SCD40, which has no single-shot.*mode = "periodic"'):
        opened({"mode": "single_shot"})


def test_old_firmware_without_the_variant_command_still_works(bus, clock):
    bus.add(SCD4xChip(clock=clock, variant=None))
    driver = opened()
    assert driver.variant is None and driver.read()["co2"] == 500
    driver.close()


def test_crc_mismatch_is_read_failed_and_the_next_read_works(bus, clock):
    chip = bus.add(SCD4xChip(clock=clock))
    driver = opened()
    chip.corrupt_crc = True
    with pytest.raises(ReadFailed, match="CRC mismatch"):
        driver.read()
    chip.corrupt_crc = False
    assert driver.read()["temperature"] == 25.0
    driver.close()


def test_a_chip_with_garbled_answers_is_not_an_scd4x(bus, clock):
    chip = bus.add(SCD4xChip(clock=clock))
    chip.corrupt_crc = True
    with pytest.raises(DeviceNotFound, match="not an SCD4x"):
        opened()


def test_missing_chip(bus, clock):
    with pytest.raises(DeviceNotFound, match="0x62 on I2C bus 1.*i2cdetect -y 1"):
        opened()


def test_io_error_mid_read(bus, clock):
    bus.add(SCD4xChip(clock=clock))
    driver = opened()
    driver.read()
    bus.fail(errno.EIO)
    with pytest.raises(ReadFailed, match="errno 5"):
        driver.read()
    assert driver.read()["humidity"] == 37.0
    driver.close()


def test_co2_beyond_the_output_range_is_rejected(bus, clock):
    bus.add(SCD4xChip(clock=clock, co2=40001))
    driver = opened()
    with pytest.raises(ValueRejected, match="40001 ppm is beyond the chip's output range"):
        driver.read()
    driver.close()


def test_temperature_outside_the_operating_range_is_rejected(bus, clock):
    bus.add(SCD4xChip(clock=clock, t_raw=0x0000))  # -45 °C
    driver = opened()
    with pytest.raises(ValueRejected, match="-45.00 °C is outside"):
        driver.read()
    driver.close()


def test_a_chip_that_stopped_measuring_is_set_up_again(bus, clock):
    chip = bus.add(SCD4xChip(clock=clock))
    driver = opened()
    driver.read()
    chip.period = None  # a brown-out: the chip is back to idle
    with pytest.raises(DeviceNotFound, match="probably reset"):
        driver.read()
    driver.close()
    driver.open()
    assert chip.measuring and driver.read()["co2"] == 500
    driver.close()


@pytest.mark.parametrize(
    "options, key",
    [
        ({"mode": "continuous"}, "mode"),
        ({"altitude": 5000}, "altitude"),
        ({"pressure": 500.0}, "pressure"),
        ({"pressure": 1000.0, "compensate_from": "weather"}, "pressure"),
        ({"temperature_offset": -1.0}, "temperature_offset"),
        ({"address": 0x61}, "address"),
    ],
)
def test_options_are_checked(options, key):
    with pytest.raises(OptionError) as info:
        create("scd4x", "office", options)
    assert info.value.key == key
