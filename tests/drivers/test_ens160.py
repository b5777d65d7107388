"""ENS160 against a register-level stand-in (ENS160 datasheet v0.95, December 2020)."""

import errno
import logging

import pytest

from pibridge.drivers import DeviceNotFound, ReadFailed, ValueRejected, create
from pibridge.drivers.i2c import _bus, ens160
from tests.support.chips.ens160 import ENS160Chip
from tests.support.virtual_clock import install


@pytest.fixture
def clock(monkeypatch):
    return install(monkeypatch, ens160, _bus)


def opened(options=None, latest=None):
    driver = create("ens160", "hall", options or {})
    if latest is not None:
        driver.peers(latest)
    driver.open()
    return driver


def test_reads_aqi_tvoc_and_eco2(bus, clock):
    chip = bus.add(ENS160Chip(clock=clock, aqi=3, tvoc=0x1234, eco2=0x0456))
    driver = opened()
    assert chip.mode == 0x02  # standard mode
    # DATA_TVOC and DATA_ECO2 are sent least significant byte first.
    assert driver.read() == {"aqi": 3, "tvoc": 0x1234, "eco2": 0x0456}
    driver.close()


@pytest.mark.parametrize(
    "temperature, humidity, words",
    [
        # TEMP_IN = (T + 273.15) * 64 and RH_IN = RH * 512, datasheet sections 16.2.5 and 16.2.6,
        # whose examples are 25 °C -> 0x4A8A and 50 %RH -> 0x6400:
        (25.0, 50.0, (0x4A8A, 0x6400)),
        (-10.0, 0.0, (16842, 0)),  # 263.15 * 64 = 16841.6
        (40.5, 100.0, (20074, 51200)),  # 313.65 * 64 = 20073.6
    ],
)
def test_compensation_words_from_another_sensor(bus, clock, temperature, humidity, words):
    chip = bus.add(ENS160Chip(clock=clock))
    driver = create("ens160", "hall", {"compensate_from": "aht"})
    assert driver.peer_needs() == {"aht": {"temperature": "°C", "humidity": "%RH"}}
    driver.peers(lambda name: {"temperature": temperature, "humidity": humidity} if name == "aht" else None)
    driver.open()
    driver.read()
    assert chip.compensation[-1] == words
    driver.close()


def test_without_a_peer_the_defaults_are_written_and_said_once(bus, clock, caplog):
    chip = bus.add(ENS160Chip(clock=clock))
    driver = opened()
    with caplog.at_level(logging.INFO, logger="pibridge.drivers"):
        driver.read()
        driver.read()
    assert chip.compensation == [(19082, 25600)] * 2
    lines = [r.getMessage() for r in caplog.records if "the chip's defaults" in r.getMessage()]
    assert len(lines) == 1 and "25 °C and 50 %RH" in lines[0] and "compensate_from" in lines[0]
    driver.close()


def test_warm_up_reports_nothing_then_values(bus, clock, caplog):
    bus.add(ENS160Chip(clock=clock, warm_up_s=180.0))
    driver = opened()
    with caplog.at_level(logging.INFO, logger="pibridge.drivers"):
        assert driver.read() == {}
        clock.sleep(180.0)
        assert driver.read()["aqi"] == 2
    messages = [r.getMessage() for r in caplog.records]
    assert any("warming up" in m for m in messages) and any("normal operation" in m for m in messages)
    driver.close()


def test_initial_start_up_values_are_reported(bus, clock):
    bus.add(ENS160Chip(clock=clock, validity=2))
    driver = opened()
    assert driver.read() == {"aqi": 2, "tvoc": 150, "eco2": 600}
    driver.close()


def test_invalid_output_is_a_failed_read(bus, clock):
    bus.add(ENS160Chip(clock=clock, validity=3))
    driver = opened()
    with pytest.raises(ReadFailed, match="validity flag 3"):
        driver.read()
    driver.close()


def test_an_error_flag_resets_the_chip_at_the_next_open(bus, clock):
    chip = bus.add(ENS160Chip(clock=clock))
    driver = opened()
    resets = chip.resets
    chip.error = True
    with pytest.raises(DeviceNotFound, match="reports an error"):
        driver.read()
    driver.close()
    driver.open()
    assert chip.resets == resets + 1 and not chip.error
    assert driver.read()["eco2"] == 600
    driver.close()


def test_a_running_chip_is_not_reset_so_its_warm_up_is_kept(bus, clock):
    chip = bus.add(ENS160Chip(clock=clock))
    driver = opened()
    driver.close()
    resets = chip.resets
    driver.open()
    assert chip.resets == resets
    driver.close()


def test_wrong_part_id(bus, clock):
    bus.add(ENS160Chip(clock=clock, part_id=0x0161))
    with pytest.raises(DeviceNotFound, match="reads 0x0161, not 0x0160"):
        opened()


@pytest.mark.parametrize("aqi, tvoc, eco2, match", [(0, 100, 600, "index 0"), (2, 65001, 600, "TVOC 65001"),
                                                     (2, 100, 399, "eCO2 399")])
def test_out_of_range_values(bus, clock, aqi, tvoc, eco2, match):
    bus.add(ENS160Chip(clock=clock, aqi=aqi, tvoc=tvoc, eco2=eco2))
    driver = opened()
    with pytest.raises(ValueRejected, match=match):
        driver.read()
    driver.close()


def test_missing_chip_and_io_error(bus, clock):
    with pytest.raises(DeviceNotFound, match="0x53 on I2C bus 1"):
        opened()
    bus.add(ENS160Chip(clock=clock))
    driver = opened()
    bus.fail(errno.EREMOTEIO)
    with pytest.raises(ReadFailed, match="errno 121"):
        driver.read()
    assert driver.read()["tvoc"] == 150
    driver.close()


def test_scan_identifies_the_part_id(bus, clock):
    bus.add(ENS160Chip(0x52, clock=clock))
    assert ens160.ENS160.identify(bus, 0x52) is True
    assert ens160.ENS160.identify(bus, 0x53) is None
