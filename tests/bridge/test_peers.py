"""One sensor compensating with another's readings: the config check and the live look-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from pibridge import drivers
from pibridge.bridge.config import ConfigError, parse_config
from pibridge.bridge.daemon import Bridge
from pibridge.bridge.peers import LatestValues
from pibridge.bridge.scheduler import SensorReader
from pibridge.drivers import Driver
from pibridge.drivers._ambient import HUMIDITY, TEMPERATURE, Ambient, compensate_from_option
from pibridge.drivers.i2c import _bus
from pibridge.readings import Quantity
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


class RecordingGasSensor(Driver):
    """Stands for a gas chip: each read records the air it would compensate for."""

    name = "test-gas"
    options = {"compensate_from": compensate_from_option("temperature and humidity")}

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        self.ambient = Ambient(sensor, self.config["compensate_from"], {"temperature": TEMPERATURE, "humidity": HUMIDITY})
        self.seen: list[dict] = []

    def quantities(self):
        return [Quantity("tvoc", "ppb")]

    def peer_needs(self):
        return self.ambient.needs()

    def peers(self, latest):
        self.ambient.connect(latest)

    def read(self):
        self.seen.append(self.ambient.values())
        return {"tvoc": 100.0}


def test_the_daemon_hands_every_driver_the_look_up(tmp_path, monkeypatch):
    """An in-process Bridge (no agent): the gas sensor's reads see the mock climate sensor's
    latest raw values (before the metric offset, which only changes what is sent)."""
    drivers.available()
    monkeypatch.setitem(drivers._registry, RecordingGasSensor.name, RecordingGasSensor)
    text = (f'[storage]\ndir = "{tmp_path}"\n' + config(
        'name = "climate"\ndriver = "mock"\ninterval = 0.1\nmetrics = ["temperature", "humidity"]\nseed = 7\n'
        '[sensors.metric.temperature]\noffset = 100.0',
        'name = "gas"\ndriver = "test-gas"\ninterval = 0.1\ncompensate_from = "climate"'))
    bridge = Bridge(parse_config(text, CONFIG))
    bridge.start()
    try:
        gas = next(r.driver for r in bridge.readers if r.name == "gas")
        climate = next(r for r in bridge.readers if r.name == "climate")
        wait_until(lambda: any(s != {"temperature": 25.0, "humidity": 50.0} for s in gas.seen), timeout=10,
                   what="a gas read compensated with the climate sensor's values")
        used = next(s for s in gas.seen if s != {"temperature": 25.0, "humidity": 50.0})
        assert 0.0 < used["humidity"] < 100.0 and -40.0 < used["temperature"] < 60.0  # raw, no +100 offset
        assert climate.health.reads > 0
    finally:
        bridge.close()
