"""PMS5003 through a real pseudo-terminal: pyserial's own code reads what a stand-in of the sensor writes."""

import errno
import threading

import pytest
import serial

from pibridge.drivers import DeviceNotFound, OptionError, ReadFailed, ValueRejected, create
from pibridge.drivers.uart import _port
from pibridge.drivers.uart.pms5003 import command
from tests.support.chips.pms5003 import PMS5003StandIn, measurement_frame
from tests.support.waiting import wait_until

VALUES = dict(pm1_0_cf1=5, pm2_5_cf1=10, pm10_cf1=15, pm1_0=5, pm2_5=10, pm10=15, particles_0_3um=1000,
              particles_0_5um=300, particles_1_0um=100, particles_2_5um=10, particles_5_0um=2, particles_10um=1)

#: Built by hand from the manual's frame layout (Appendix I): 42 4D, length 00 1C, the 13 data words
#: of VALUES (reserved word 97 00), check word = the sum of the 30 bytes before it = 0x0307.
MANUAL_LAYOUT_FRAME = bytes.fromhex("424d001c0005000a000f0005000a000f03e8012c0064000a0002000197000307")


# Every test runs as on a Pi whose kernel has no serial console (tests/drivers/conftest.py).
pytestmark = pytest.mark.usefixtures("no_console")


@pytest.fixture
def sensor():
    with PMS5003StandIn(**VALUES) as stand_in:
        yield stand_in


def driver_for(stand_in, **options):
    # A generous timeout: a read that succeeds returns at once; tests of silence set their own.
    return create("pms5003", "air", {"port": stand_in.path, "timeout": 5.0, **options})


def test_frame_from_the_manual_layout_is_decoded(sensor):
    assert measurement_frame(VALUES) == MANUAL_LAYOUT_FRAME
    sensor.streaming = False
    driver = driver_for(sensor)
    driver.open()
    try:
        sensor.send(MANUAL_LAYOUT_FRAME)
        assert driver.read() == VALUES
    finally:
        driver.close()


def test_commands_carry_the_manuals_check_words():
    # Appendix II: the command bytes with their check words as the manual lists them.
    assert command(0xE2, 0x0000) == bytes.fromhex("424de200000171")  # read in passive mode
    assert command(0xE1, 0x0000) == bytes.fromhex("424de100000170")  # passive mode
    assert command(0xE1, 0x0001) == bytes.fromhex("424de100010171")  # active mode
    assert command(0xE4, 0x0000) == bytes.fromhex("424de400000173")  # sleep
    assert command(0xE4, 0x0001) == bytes.fromhex("424de400010174")  # wake up


def test_active_mode_streams_and_open_wakes_the_sensor(sensor):
    sensor.asleep = True
    driver = driver_for(sensor)
    driver.open()
    try:
        assert driver.read()["pm2_5"] == 10
        assert sensor.commands[:2] == [command(0xE4, 1), command(0xE1, 1)]
        sensor.values["pm2_5"] = 42
        wait_until(lambda: driver.read()["pm2_5"] == 42, timeout=5, what="the newest frame")
    finally:
        driver.close()


def test_resynchronises_after_garbage_truncated_frames_and_bad_checksums(sensor):
    sensor.streaming = False
    driver = driver_for(sensor)
    driver.open()
    try:
        good = measurement_frame({**VALUES, "pm10": 77})
        wait_until(lambda: driver.reader.counts.frames, timeout=5, what="the answer to the mode command")
        sensor.send(b"\x00\xff\x42\x13garbage\x42")  # stray bytes, one a lone header byte
        sensor.send(good[:17])  # a frame cut off half way...
        sensor.send(measurement_frame(VALUES, corrupt=True))  # ...a frame with a bad check word...
        sensor.send(b"\x42\x4d\x7f\x7f")  # ...a header with an impossible length...
        sensor.send(good)  # ...and then a good one
        assert driver.read()["pm10"] == 77
        counts = driver.reader.counts
        # The answer to the mode command and the good frame; the cut, the corrupt and the impossible one refused.
        assert (counts.frames, counts.bad_frames) == (2, 3) and counts.garbage_bytes > 0
    finally:
        driver.close()


def test_a_header_split_across_reads_is_found(sensor):
    sensor.streaming = False
    driver = driver_for(sensor)
    driver.open()
    try:
        frame = measurement_frame({**VALUES, "pm1_0": 3})
        wait_until(lambda: driver.reader.counts.frames, timeout=5, what="the answer to the mode command")
        sensor.send(b"xx" + frame[:1])
        wait_until(lambda: driver.reader.counts.garbage_bytes >= 2, timeout=5, what="the stray bytes to be read")
        assert driver.reader.counts.garbage_bytes == 2, driver.reader.counts
        sensor.send(frame[1:])
        assert driver.read()["pm1_0"] == 3
    finally:
        driver.close()


def test_a_sensor_that_stops_sending_is_read_failed_not_a_hang(sensor):
    driver = driver_for(sensor, timeout=1.0)
    driver.open()
    try:
        assert driver.read()["pm10"] == 15
        sensor.streaming = False
        with pytest.raises(ReadFailed) as info:
            wait_until(lambda: driver.read() and False, timeout=5, what="a read to fail")
        message = str(info.value)
        assert "no valid PMS5003 frame for" in message and "GPIO15 pin 10" in message
    finally:
        driver.close()


def test_silence_from_the_start_fails_within_the_timeout(sensor):
    sensor.streaming = False
    driver = driver_for(sensor, timeout=0.2)
    driver.open()
    try:
        with pytest.raises(ReadFailed, match="no valid PMS5003 frame within 0.2 s; nothing arrived.*ttyAMA0 on a Pi 5"):
            driver.read()
    finally:
        driver.close()


def test_only_garbage_says_what_the_line_carried(sensor):
    sensor.streaming = False
    driver = driver_for(sensor, timeout=0.3)
    driver.open()
    try:
        sensor.send(measurement_frame(VALUES, corrupt=True) + b"\x55" * 40)
        wait_until(lambda: driver.reader.counts.bad_frames, timeout=5, what="the broken frame")
        with pytest.raises(ReadFailed) as info:
            wait_until(lambda: driver.read() and False, timeout=5, what="a read to fail")
        assert "broken frames (last: check word" in str(info.value) and "baud = 9600" in str(info.value)
    finally:
        driver.close()


def test_passive_mode_asks_for_each_frame(sensor):
    driver = driver_for(sensor, mode="passive")
    driver.open()
    try:
        assert command(0xE1, 0) in sensor.commands
        first = driver.read()
        sensor.values["pm2_5"] = 99
        assert driver.read()["pm2_5"] == 99 and first["pm2_5"] == 10
        assert sensor.commands.count(command(0xE2, 0)) >= 3  # one at open, one per read
    finally:
        driver.close()


def test_sleep_on_close_and_warm_up(sensor):
    driver = driver_for(sensor, sleep_on_close=True, warmup=600.0)
    driver.open()
    with pytest.raises(ReadFailed, match="warming up"):
        driver.read()
    driver.close()
    wait_until(lambda: sensor.asleep, timeout=5, what="the sleep command")
    assert sensor.commands[-1] == command(0xE4, 0)
    driver = driver_for(sensor, sleep_on_close=True, warmup=0.0)
    driver.open()
    assert driver.read()["pm2_5"] == 10 and not sensor.asleep
    driver.close()


def test_value_beyond_the_maximum_is_rejected(sensor):
    sensor.values["pm10"] = 1200
    driver = driver_for(sensor)
    driver.open()
    try:
        with pytest.raises(ValueRejected, match="pm10 = 1200"):
            driver.read()
    finally:
        driver.close()


def test_the_reader_thread_runs_between_open_and_close(sensor):
    name = f"serial-{sensor.path}"
    driver = driver_for(sensor)
    driver.open()
    assert any(t.name == name for t in threading.enumerate())
    driver.close()
    assert not any(t.name == name for t in threading.enumerate())
    driver.close()


def test_missing_port_says_which_port_to_use():
    driver = create("pms5003", "air", {"port": "/dev/ttyAMA9"})
    with pytest.raises(DeviceNotFound) as info:
        driver.open()
    message = str(info.value)
    assert "/dev/ttyAMA9 does not exist" in message and "do_serial_hw 0" in message
    assert "/dev/ttyAMA0 on a Pi 5" in message and "debug header" in message


def test_port_in_use_by_another_program(sensor):
    other = serial.Serial(sensor.path, exclusive=True)
    try:
        with pytest.raises(DeviceNotFound, match="in use by another program"):
            driver_for(sensor).open()
    finally:
        other.close()


def test_permission_denied_names_the_dialout_group(monkeypatch):
    def refuse(port, baudrate):
        raise serial.SerialException(errno.EACCES, f"could not open port {port}: [Errno 13] Permission denied")

    monkeypatch.setattr(_port, "open_serial", refuse)
    with pytest.raises(DeviceNotFound, match="'dialout' group"):
        create("pms5003", "air").open()


def test_serial_console_on_the_port_is_refused(sensor, no_console):
    no_console.write_text(f"console={sensor.path[len('/dev/'):]},115200 console=tty1 root=/dev/mmcblk0p2\n")
    with pytest.raises(DeviceNotFound) as info:
        driver_for(sensor).open()
    assert "serial console" in str(info.value) and "raspi-config nonint do_serial_cons 1" in str(info.value)


@pytest.mark.parametrize(
    "options, key",
    [({"mode": "lazy"}, "mode"), ({"baud": 9601}, "baud"), ({"port": "COM3"}, "port"), ({"timeout": 0}, "timeout"),
     ({"warmup": -1}, "warmup")],
)
def test_bad_options(options, key):
    with pytest.raises(OptionError) as info:
        create("pms5003", "air", options)
    assert info.value.key == key


def test_a_port_that_goes_away_is_device_not_found_so_the_bridge_reopens_it():
    """A USB adapter pulled out: the reader thread sees the hang-up, records it and ends; the next read
    says so as DeviceNotFound (the bridge then closes the driver and opens the port again)."""
    stand_in = PMS5003StandIn(**VALUES).__enter__()
    driver = driver_for(stand_in)
    driver.open()
    try:
        assert driver.read()["pm2_5"] == 10
        stand_in.close()
        wait_until(lambda: driver.reader.error is not None, timeout=5, what="the reader to see the hang-up")
        with pytest.raises(DeviceNotFound, match="the serial port failed.*opened again on the next read"):
            driver.read()
    finally:
        driver.close()


def test_missing_pyserial_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "serial", None)
    with pytest.raises(DeviceNotFound, match="pyserial package is missing"):
        create("pms5003", "air").open()


def test_a_port_given_as_a_link_is_shown_with_its_target(sensor, tmp_path):
    link = tmp_path / "serial0"
    link.symlink_to(sensor.path)
    sensor.streaming = False
    driver = create("pms5003", "air", {"port": str(link), "timeout": 0.2})
    assert driver.resources() == [f"serial:{sensor.path}"]
    driver.open()
    try:
        with pytest.raises(ReadFailed, match=f"{link} \\(-> {sensor.path}\\) is the port read"):
            driver.read()
    finally:
        driver.close()


def test_pms7003_speaks_the_same_protocol(sensor):
    driver = create("pms7003", "air", {"port": sensor.path, "timeout": 1.0})
    driver.open()
    try:
        assert driver.read() == VALUES
        assert "PMS7003 on" in driver.where()
    finally:
        driver.close()
