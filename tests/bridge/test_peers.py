"""One sensor compensating with another's readings: the config check and the live look-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from pibridge.bridge.config import ConfigError, parse_config
from pibridge.bridge.peers import LatestValues
from pibridge.bridge.scheduler import SensorReader
from pibridge.drivers.i2c import _bus
from tests.support.chips.sgp40 import SGP40Chip
from tests.support.hardware_chips import SHT4xChip
from tests.support.smbus_fake import BusFactory
from tests.support.waiting import wait_until

CONFIG = Path("/etc/pibridge/config.toml")


def config(*sensors: str) -> str:
    return "\n".join(f"[[sensors]]\n{s}\n" for s in sensors)


AHT = 'name = "shelf"\ndriver = "aht20"\ninterval = 2'
BARO = 'name = "baro"\ndriver = "bmp280"\ninterval = 5'


def errors(text: str) -> list[ConfigError]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, CONFIG)
    return info.value.errors


def test_a_valid_peer_is_accepted_in_any_order():
    parsed = parse_config(config('name = "air"\ndriver = "ens160"\ninterval = 1\ncompensate_from = "shelf"', AHT), CONFIG)
    assert [s.name for s in parsed.sensors] == ["air", "shelf"]
    assert parsed.sensors[0].create_driver().peer_needs() == {"shelf": {"temperature": "°C", "humidity": "%RH"}}


def test_an_unknown_peer_names_the_key_and_the_closest_name():
    (error,) = errors(config('name = "air"\ndriver = "ens160"\ninterval = 1\ncompensate_from = "shelff"', AHT))
    assert (error.sensor, error.key) == ("air", "compensate_from")
    assert "there is no sensor called 'shelff'" in error.message and "did you mean 'shelf'?" in error.fix


def test_a_peer_without_the_needed_quantity_is_refused():
    (error,) = errors(config('name = "voc"\ndriver = "sgp40"\ninterval = 1\ncompensate_from = "baro"', BARO))
    assert error.key == "compensate_from"
    assert "sensor 'baro' (driver 'bmp280') does not measure humidity; it reports: temperature, pressure" in error.message


def test_a_disabled_peer_is_refused():
    (error,) = errors(config('name = "co2"\ndriver = "scd4x"\ninterval = 5\ncompensate_from = "baro"',
                             BARO + "\nenabled = false"))
    assert "sensor 'baro' is disabled" in error.message and "would never give its pressure" in error.message


def test_a_sensor_cannot_be_its_own_peer():
    (error,) = errors(config('name = "co2"\ndriver = "scd4x"\ninterval = 5\ncompensate_from = "co2"'))
    assert "names this sensor itself" in error.message


def test_a_peer_with_errors_of_its_own_is_not_reported_twice():
    found = errors(config('name = "air"\ndriver = "ens160"\ninterval = 1\ncompensate_from = "shelf"',
                          AHT + '\nmodel = "aht99"'))
    assert [(e.sensor, e.key) for e in found] == [("shelf", "model")]


def test_a_disabled_sensor_may_name_anything():
    parsed = parse_config(config('name = "air"\ndriver = "ens160"\ninterval = 1\ncompensate_from = "gone"\nenabled = false',
                                 AHT), CONFIG)
    assert not parsed.sensors[0].enabled


def test_latest_values_follow_the_peer_reader_and_feed_the_compensation(monkeypatch):
    """Two real reader threads on one emulated bus: the SHT4x's latest reading reaches the
    SGP40's measure command (SGP40 datasheet Table 10 ticks); when the SHT4x is unplugged the
    SGP40 keeps reading, with its defaults."""
    buses = BusFactory()
    bus = buses.bus(1)
    monkeypatch.setattr(_bus, "open_bus", buses)
    climate = bus.add(SHT4xChip(0x44, t_raw=0x6666, rh_raw=0x6666))  # 25.0 °C, 44.0 %RH
    voc = bus.add(SGP40Chip())
    parsed = parse_config(config('name = "shelf"\ndriver = "sht4x"\ninterval = 1\nprecision = "low"',
                                 'name = "voc"\ndriver = "sgp40"\ninterval = 1\nvoc_index = false\n'
                                 'compensate_from = "shelf"'), CONFIG)
    latest = LatestValues()
    readers = []
    pushed = []
    for sensor in parsed.sensors:
        driver = sensor.create_driver()
        driver.peers(latest)
        readers.append(SensorReader(sensor.name, driver, interval=sensor.interval, sink=pushed.append, offline_after=1))
        latest.add(readers[-1])
    assert latest("shelf") is None and latest("nobody") is None
    for reader in readers:
        reader.start()
    try:
        wait_until(lambda: latest("shelf"), timeout=10, what="the SHT4x's first reading")
        assert latest("shelf") == {"temperature": 25.0, "humidity": 44.0}
        humidity_ticks = round(44.0 * 65535 / 100)  # RH * 65535 / 100
        wait_until(lambda: (humidity_ticks, 0x6666) in voc.compensation, timeout=10,
                   what="an SGP40 measurement compensated with the SHT4x's values")
        climate.present = False  # unplugged: the SHT4x goes offline, the SGP40 keeps reading
        wait_until(lambda: not readers[0].health.online, timeout=10, what="the SHT4x going offline")
        assert latest("shelf") is None  # an offline peer's old values are not used
        before = len(voc.compensation)
        wait_until(lambda: len(voc.compensation) > before + 1, timeout=10, what="two more SGP40 reads")
        assert voc.compensation[-1] == (0x8000, 0x6666)  # the datasheet defaults, 50 %RH and 25 °C
        assert sum(r.sensor == "voc" for r in pushed) >= before + 1
    finally:
        for reader in readers:
            reader.stop()
        for reader in readers:
            reader.join(5.0)


def test_a_driver_describing_its_peers_wrongly_is_reported(monkeypatch):
    from pibridge.drivers.i2c.ens160 import ENS160

    monkeypatch.setattr(ENS160, "peer_needs", lambda self: {"shelf": ["temperature"]})
    (error,) = errors(config('name = "air"\ndriver = "ens160"\ninterval = 1', AHT))
    assert error.sensor == "air" and "describes the sensors it needs wrongly" in error.message
