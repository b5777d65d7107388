"""SGP40 against a command-level stand-in (SGP40 datasheet version 1.0), VOC index by Sensirion's package."""

import errno
import logging

import pytest

from pibridge.drivers import DeviceNotFound, OptionError, ReadFailed, ValueRejected, create
from pibridge.drivers._crc import sensirion_crc8
from pibridge.drivers.i2c import _bus, sgp40
from tests.support.chips.sgp40 import SGP40Chip
from tests.support.virtual_clock import install


@pytest.fixture
def clock(monkeypatch):
    return install(monkeypatch, sgp40, _bus)


def opened(options=None, latest=None):
    driver = create("sgp40", "desk", options or {})
    if latest is not None:
        driver.peers(latest)
    driver.open()
    return driver


def test_default_compensation_is_the_datasheet_default_command(bus, clock):
    # Datasheet Table 9: without humidity compensation the command is 0x26 0F 80 00 A2 66 66 93
    # (the defaults of Table 10, 50 %RH and 25 °C).
    chip = bus.add(SGP40Chip(clock=clock, raw=31337))
    driver = opened({"voc_index": False})
    assert driver.read() == {"voc_raw": 31337}
    assert chip.commands[-1] == bytes.fromhex("260f 8000a2 666693")
    driver.close()
    assert not chip.heating  # close turns the hot plate off


@pytest.mark.parametrize(
    "humidity, temperature, ticks",
    [
        (50.0, 25.0, (0x8000, 0x6666)),  # Table 10's defaults
        # RH * 65535 / 100 and (T + 45) * 65535 / 175 at the ends of what a peer may report:
        (0.0, -40.0, (0x0000, 1872)),  # 5 * 65535 / 175 = 1872.4
        (100.0, 85.0, (0xFFFF, 48683)),  # 130 * 65535 / 175 = 48683.1
        (50.0, 130.0, (0x8000, 0x6666)),  # a peer temperature no air has: the default is used
    ],
)
def test_compensation_from_another_sensor(bus, clock, humidity, temperature, ticks):
    chip = bus.add(SGP40Chip(clock=clock))
    driver = create("sgp40", "desk", {"voc_index": False, "compensate_from": "shelf"})
    assert driver.peer_needs() == {"shelf": {"temperature": "°C", "humidity": "%RH"}}
    driver.peers(lambda name: {"temperature": temperature, "humidity": humidity} if name == "shelf" else None)
    driver.open()
    driver.read()
    assert chip.compensation[-1] == ticks
    driver.close()


def test_tick_conversion_matches_table_10():
    # Datasheet Table 10: RH 50 % -> 0x8000 (CRC 0xA2), 0 % -> 0x0000 (0x81), 100 % -> 0xFFFF (0xAC);
    # T 25 °C -> 0x6666 (0x93), -45 °C -> 0x0000, 130 °C -> 0xFFFF.
    assert [sgp40.humidity_ticks(rh) for rh in (50.0, 0.0, 100.0)] == [0x8000, 0x0000, 0xFFFF]
    assert [sgp40.temperature_ticks(t) for t in (25.0, -45.0, 130.0)] == [0x6666, 0x0000, 0xFFFF]
    assert [sensirion_crc8(w) for w in (b"\x80\x00", b"\x00\x00", b"\xff\xff", b"\x66\x66")] == [0xA2, 0x81, 0xAC, 0x93]


def test_without_a_peer_reading_the_defaults_are_used_and_logged_once(bus, clock, caplog):
    chip = bus.add(SGP40Chip(clock=clock))
    driver = opened({"voc_index": False, "compensate_from": "shelf"}, latest=lambda name: None)
    with caplog.at_level(logging.INFO, logger="pibridge.drivers"):
        for _ in range(3):
            driver.read()
    assert chip.compensation == [(0x8000, 0x6666)] * 3
    lines = [r.getMessage() for r in caplog.records if "no reading from sensor 'shelf' yet" in r.getMessage()]
    assert len(lines) == 1 and "25 °C and 50 %RH" in lines[0]
    driver.close()


def test_voc_index_matches_sensirions_algorithm_fed_the_same_signal(bus, clock):
    from sensirion_gas_index_algorithm.voc_algorithm import VocAlgorithm

    signal = iter([30000 + (i * 37) % 900 - (400 if i > 80 else 0) for i in range(120)])
    samples = []

    def next_raw():
        samples.append(next(signal))
        return samples[-1]

    bus.add(SGP40Chip(clock=clock, raw=next_raw))
    driver = opened()
    reported = [driver.read() for _ in range(120)]
    driver.close()
    reference = VocAlgorithm(sampling_interval=1.0)
    expected = [reference.process(raw) for raw in samples]
    assert [r["voc_raw"] for r in reported] == samples
    assert [r.get("voc_index", 0) for r in reported] == expected
    assert "voc_index" not in reported[0]  # the algorithm's learning phase gives 0: not reported
    assert any(r.get("voc_index", 0) > 0 for r in reported)


def test_raw_signal_at_the_end_of_its_range_is_rejected(bus, clock):
    bus.add(SGP40Chip(clock=clock, raw=0xFFFF))
    driver = opened({"voc_index": False})
    with pytest.raises(ValueRejected, match="0xffff, the end of its range"):
        driver.read()
    driver.close()


def test_failed_self_test(bus, clock):
    bus.add(SGP40Chip(clock=clock, self_test=0x4B00))
    with pytest.raises(DeviceNotFound, match="self-test failed.*0x4b00"):
        opened()


def test_crc_mismatch(bus, clock):
    chip = bus.add(SGP40Chip(clock=clock))
    driver = opened({"voc_index": False})
    chip.corrupt_crc = True
    with pytest.raises(ReadFailed, match="CRC mismatch in the raw signal"):
        driver.read()
    chip.corrupt_crc = False
    assert driver.read() == {"voc_raw": 30000}
    driver.close()


def test_garbled_serial_is_not_an_sgp40(bus, clock):
    chip = bus.add(SGP40Chip(clock=clock))
    chip.corrupt_crc = True
    with pytest.raises(DeviceNotFound, match="not an SGP40"):
        opened()


def test_missing_chip_and_io_error(bus, clock):
    with pytest.raises(DeviceNotFound, match="0x59 on I2C bus 1"):
        opened()
    bus.add(SGP40Chip(clock=clock))
    driver = opened({"voc_index": False})
    bus.fail(errno.EIO)
    with pytest.raises(ReadFailed, match="errno 5"):
        driver.read()
    assert driver.read() == {"voc_raw": 30000}
    driver.close()


def test_a_missing_algorithm_package_says_what_to_install(bus, clock, monkeypatch):
    import sys

    bus.add(SGP40Chip(clock=clock))
    monkeypatch.setitem(sys.modules, "sensirion_gas_index_algorithm.voc_algorithm", None)
    with pytest.raises(Exception, match="pip install sensirion-gas-index-algorithm"):
        opened()


def test_options():
    assert create("sgp40", "d", {}).min_interval() == 1.0
    assert [q.name for q in create("sgp40", "d", {"voc_index": False}).quantities()] == ["voc_raw"]
    with pytest.raises(OptionError) as info:
        create("sgp40", "d", {"sampling_interval": 0.5})
    assert info.value.key == "sampling_interval"


def test_reads_slower_than_the_sampling_interval_are_warned_about_once(bus, clock, caplog):
    bus.add(SGP40Chip(clock=clock))
    driver = opened()
    with caplog.at_level(logging.WARNING, logger="pibridge.drivers"):
        driver.read()
        clock.sleep(0.95)
        driver.read()  # about 1 s apart: fine
        for _ in range(3):
            clock.sleep(10.0)
            driver.read()
    warnings = [r.getMessage() for r in caplog.records if "sampling_interval is 1 s" in r.getMessage()]
    assert len(warnings) == 1 and "set interval = 1" in warnings[0]
    driver.close()
