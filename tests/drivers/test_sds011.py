"""SDS011 through a real pseudo-terminal, against a stand-in speaking the Nova Fitness protocol."""

import pytest

from pibridge.drivers import DeviceNotFound, OptionError, ReadFailed, ValueRejected, create
from pibridge.drivers.uart import sds011
from pibridge.drivers.uart.sds011 import NovaFrames, command, decode
from tests.support.chips.sds011 import SDS011StandIn, data_frame
from tests.support.waiting import wait_until


# Every test runs as on a Pi whose kernel has no serial console (tests/drivers/conftest.py).
pytestmark = pytest.mark.usefixtures("no_console")


@pytest.fixture
def sensor():
    with SDS011StandIn() as stand_in:
        yield stand_in


def driver_for(stand_in, **options):
    return create("sds011", "dust", {"port": stand_in.path, "timeout": 5.0, **options})


def test_protocol_examples():
    """Laser Dust Sensor Control Protocol V1.3, section 3: the commands and replies as printed there."""
    # 1) Set data reporting mode: query mode, to all sensors (device id FF FF), checksum 02.
    assert command(0x02, 1, 1) == bytes.fromhex("aab402010100000000000000000000ffff02ab")
    # 2) Query data command, checksum 02.
    assert command(0x04) == bytes.fromhex("aab404000000000000000000000000ffff02ab")
    # 4) Set sleep (checksum 05) and work (checksum 06).
    assert command(0x06, 1, 0) == bytes.fromhex("aab406010000000000000000000000ffff05ab")
    assert command(0x06, 1, 1) == bytes.fromhex("aab406010100000000000000000000ffff06ab")
    # 5) Set working period to 1 minute, checksum 08.
    assert command(0x08, 1, 1) == bytes.fromhex("aab408010100000000000000000000ffff08ab")
    # 2) The sensor's reply to a data query: PM2.5 = 0x04D4 / 10 = 123.6, PM10 = 0x0A3A / 10 = 261.8, id A160.
    reply = bytes.fromhex("aac0d4043a0aa1601dab")
    assert NovaFrames().problem(reply) is None
    assert decode(reply) == {"pm2_5": 123.6, "pm10": 261.8}


def test_reads_the_streamed_values_and_configures_only_what_differs(sensor):
    sensor.awake = False
    sensor.active_reporting = False
    driver = driver_for(sensor)
    driver.open()
    try:
        assert driver.read() == {"pm2_5": 12.3, "pm10": 45.6}
        assert sensor.awake and sensor.active_reporting and sensor.flash_writes == 1
        assert driver.device_id == 0xA160
    finally:
        driver.close()
    driver = driver_for(sensor)
    driver.open()
    driver.close()
    assert sensor.flash_writes == 1  # nothing differed the second time


def test_work_period_is_set_and_stretches_the_timeout(sensor):
    driver = driver_for(sensor, work_period=5, timeout=None)
    assert driver.timeout() == 330.0 and driver.min_interval() == 300.0
    driver.open()
    try:
        assert sensor.work_period == 5
        assert command(0x08, 1, 5) in sensor.commands
        assert driver.read()["pm10"] == 45.6
    finally:
        driver.close()


def test_resynchronises_after_garbage_and_bad_checksums(sensor):
    driver = driver_for(sensor)
    driver.open()
    try:
        sensor.streaming = False
        good = data_frame(77.7, 88.8)
        sensor.send(b"\xaa\xaa\xc0\x01" + data_frame(1, 2, corrupt=True) + good[:6] + b"\xab\x00" + good)
        wait_until(lambda: driver.read()["pm2_5"] == 77.7, timeout=5, what="the good frame after the garbage")
        assert driver.reader.counts.bad_frames >= 2
    finally:
        driver.close()


def test_silent_sensor_at_open_is_not_found(sensor, monkeypatch):
    monkeypatch.setattr(sds011, "ANSWER_TIMEOUT", 0.3)
    sensor.answering = False
    sensor.streaming = False
    with pytest.raises(DeviceNotFound) as info:
        driver_for(sensor).open()
    assert "no answer to command 0x06 within 0.3 s" in str(info.value) and "GPIO15 pin 10" in str(info.value)


def test_sensor_that_stops_sending_fails_after_the_timeout(sensor):
    driver = driver_for(sensor, timeout=1.0)
    driver.open()
    try:
        driver.read()
        sensor.streaming = False
        with pytest.raises(ReadFailed, match="no valid SDS011 frame for"):
            wait_until(lambda: driver.read() and False, timeout=5, what="a read to fail")
    finally:
        driver.close()


def test_beyond_the_range_is_rejected(sensor):
    sensor.pm10 = 1500.0
    driver = driver_for(sensor)
    driver.open()
    try:
        with pytest.raises(ValueRejected, match="pm10 = 1500.0"):
            driver.read()
    finally:
        driver.close()


def test_query_mode_asks_for_each_value(sensor):
    driver = driver_for(sensor, mode="query", timeout=1.0)
    driver.open()
    try:
        assert not sensor.active_reporting  # set to query mode at open
        first = driver.read()
        sensor.pm2_5 = 3.4
        assert driver.read()["pm2_5"] == 3.4 and first["pm2_5"] == 12.3
        assert sensor.commands.count(command(0x04)) == 2
        sensor.answering = False
        with pytest.raises(ReadFailed, match="no valid SDS011 frame"):
            driver.read()
    finally:
        driver.close()


@pytest.mark.parametrize(
    "options, key", [({"work_period": 31}, "work_period"), ({"timeout": -1.0}, "timeout"), ({"mode": "poll"}, "mode")]
)
def test_bad_options(options, key):
    with pytest.raises(OptionError) as info:
        create("sds011", "dust", options)
    assert info.value.key == key
