"""MH-Z19B/C through a real pseudo-terminal, against a stand-in answering as the Winsen manual describes."""

import pytest

from pibridge.drivers import DeviceNotFound, OptionError, ReadFailed, ValueRejected, create
from pibridge.drivers.uart import mhz19
from pibridge.drivers.uart.mhz19 import ANSWER_TIMEOUT
from pibridge.drivers.uart.mhz19 import WinsenAnswers, checksum, command, range_command
from tests.support.chips.mhz19 import MHZ19StandIn


# Every test runs as on a Pi whose kernel has no serial console (tests/drivers/conftest.py).
pytestmark = pytest.mark.usefixtures("no_console")


@pytest.fixture
def sensor():
    with MHZ19StandIn() as stand_in:
        yield stand_in


def opened(stand_in, **options):
    driver = create("mhz19", "co2", {"port": stand_in.path, **options})
    driver.open()
    return driver


def test_manual_examples():
    # "Checksum calculation": 01 + 86 + 00 x 5 = 0x87, 0xFF - 0x87 = 0x78, + 1 = 0x79.
    assert command(0x86) == bytes.fromhex("ff0186000000000079")
    # 0x86 example: send FF 01 86 00 00 00 00 00 79, answer FF 86 02 20 00 00 00 00 58 = 2 x 256 + 32 = 544 ppm.
    answer = bytes.fromhex("ff8602200000000058")
    assert WinsenAnswers().problem(answer) is None and checksum(answer) == 0x58
    assert answer[2] * 256 + answer[3] == 544
    # 0x79 examples: ABC on FF 01 79 A0 00 00 00 00 E6, ABC off FF 01 79 00 00 00 00 00 86.
    assert command(0x79, 0xA0) == bytes.fromhex("ff0179a000000000e6")
    assert command(0x79, 0x00) == bytes.fromhex("ff0179000000000086")
    # 0x99 detection range 2000 ppm as the sensors accept it: FF 01 99 00 00 00 07 D0 8F.
    assert range_command(2000) == bytes.fromhex("ff019900000007d08f")


def test_reads_co2_and_the_manuals_answer(sensor):
    driver = opened(sensor)
    try:
        assert driver.read() == {"co2": 612}
        sensor.co2 = 544
        assert driver.read() == {"co2": 544}
        assert sensor.commands[-1] == bytes.fromhex("ff0186000000000079")
    finally:
        driver.close()


def test_abc_and_range_are_sent_only_when_set(sensor):
    driver = opened(sensor)
    driver.close()
    assert [c[2] for c in sensor.commands] == [0x86]
    driver = opened(sensor, abc=False, range=10000)
    driver.close()
    assert sensor.abc is False and sensor.range == 10000
    # 10000 ppm = 0x2710: 01 + 99 + 27 + 10 = 0xD1, 0xFF - 0xD1 + 1 = 0x2F.
    assert range_command(10000) == bytes.fromhex("ff019900000027102f")


def test_garbage_before_the_answer_is_skipped(sensor):
    driver = opened(sensor)
    try:
        sensor.noise = b"\x00\xff\x13\xff\x86\x01"  # stray bytes and a false start of an answer
        sensor.co2 = 1200
        assert driver.read() == {"co2": 1200}
    finally:
        driver.close()


def test_bad_checksum_is_read_failed(sensor, monkeypatch):
    driver = opened(sensor)
    try:
        sensor.corrupt = True
        monkeypatch.setattr(mhz19, "ANSWER_TIMEOUT", 0.3)  # how long a failing read waits
        with pytest.raises(ReadFailed, match="bad checksum"):
            driver.read()
        monkeypatch.setattr(mhz19, "ANSWER_TIMEOUT", ANSWER_TIMEOUT)
        sensor.corrupt = False
        assert driver.read() == {"co2": 612}
    finally:
        driver.close()


def test_silent_sensor_is_not_found_then_read_failed(sensor, monkeypatch):
    monkeypatch.setattr(mhz19, "ANSWER_TIMEOUT", 0.3)
    sensor.answering = False
    with pytest.raises(DeviceNotFound, match="no valid answer to the read command within 0.3 s, got nothing"):
        opened(sensor)
    sensor.answering = True
    monkeypatch.setattr(mhz19, "ANSWER_TIMEOUT", ANSWER_TIMEOUT)
    driver = opened(sensor)
    try:
        sensor.answering = False
        monkeypatch.setattr(mhz19, "ANSWER_TIMEOUT", 0.3)
        with pytest.raises(ReadFailed, match="GPIO15 pin 10"):
            driver.read()
    finally:
        driver.close()


def test_top_of_the_range_is_refused(sensor):
    sensor.co2 = 2000
    driver = opened(sensor, range=2000)
    with pytest.raises(ValueRejected, match="top of the detection range"):
        driver.read()
    driver.close()


def test_bad_range_option():
    with pytest.raises(OptionError) as info:
        create("mhz19", "co2", {"range": 3000})
    assert info.value.key == "range"
