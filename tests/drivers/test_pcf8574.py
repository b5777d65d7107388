"""PCF8574/PCF8574A inputs against a stand-in of the chip's quasi-bidirectional pins.

The edge and debounce rules are the GPIO ``contact`` driver's (tests/drivers/test_gpio_drivers.py):
true while active, low = active with the pull-up, every change pushed at once and kept in order,
further changes ignored for ``bounce_time`` after one.
"""

import errno
import threading

import pytest

from pibridge import cli
from pibridge.drivers import DeviceNotFound, OptionError, ReadFailed, create
from tests.support.chips.pcf8574 import PCF8574Chip
from tests.support.notifications import FakeClock, Notifications, polls_after
from tests.support.waiting import wait_until


@pytest.fixture
def expanders(drivers):
    """Drivers opened in a test with a 5 ms poll, closed after it whatever happens."""
    return lambda name, options, sensor="inputs": drivers(name, {"poll_interval": 0.005, **options}, sensor)


def test_default_pins_are_all_eight_and_closed_switches_read_true(bus, expanders):
    chip = bus.add(PCF8574Chip(0x20))
    driver = expanders("pcf8574", {})
    assert [q.name for q in driver.quantities()] == [f"p{n}" for n in range(8)]
    assert driver.read() == {f"p{n}": False for n in range(8)}
    chip.switch(2, closed=True)
    polls_after(chip)
    assert driver.read() == {**{f"p{n}": False for n in range(8)}, "p2": True}


def test_all_latches_are_written_1_so_every_pin_is_an_input(bus, expanders):
    # Datasheet section 8 (quasi-bidirectional I/O): a latch holding 0 drives its pin low and
    # the pin always reads 0; only a 1 lets the pin follow the outside.
    chip = bus.add(PCF8574Chip(0x21))
    chip.latches = 0x00  # left so by another program
    chip.drive(5, 1)
    assert chip.levels() == 0x00
    driver = expanders("pcf8574", {"address": 0x21, "pins": {"pir": {"pin": 5, "active_low": False}}})
    assert chip.latches == 0xFF
    assert driver.read() == {"pir": True}
    chip.drive(5, 0)
    polls_after(chip)
    assert driver.read() == {"pir": False}


def test_named_pins_with_their_own_options(bus, expanders):
    chip = bus.add(PCF8574Chip(0x20))
    driver = expanders("pcf8574", {"pins": {"door": 0, "window": "P3", "float": {"pin": 7, "active_low": False}}})
    assert driver.read() == {"door": False, "window": False, "float": True}  # P7 pulled up: high = active
    chip.switch(0, closed=True)
    chip.switch(7, closed=True)
    polls_after(chip)
    assert driver.read() == {"door": True, "window": False, "float": False}
    assert driver.resources() == ["i2c:1:0x20"]


def test_every_change_notifies_and_is_reported_in_order(bus, expanders):
    chip = bus.add(PCF8574Chip(0x20))
    driver = expanders("pcf8574", {"pins": {"door": 0}, "bounce_time": None})
    notifications = Notifications()
    driver.watch(notifications)
    chip.switch(0, closed=True)
    assert notifications.wait_for(1)
    chip.switch(0, closed=False)
    assert notifications.wait_for(2)
    # Both changes came before the bridge read: the short closure is not lost.
    assert driver.read() == {"door": True}
    assert notifications.wait_for(3)  # one more change is waiting: read again
    assert driver.read() == {"door": False}
    assert driver.read() == {"door": False}


def test_chatter_within_the_bounce_time_is_ignored_and_the_final_state_reported(bus, expanders):
    chip = bus.add(PCF8574Chip(0x20))
    clock = FakeClock()
    driver = create("pcf8574", "door", {"pins": {"door": 0}, "bounce_time": 0.05, "poll_interval": 0.005})
    driver.clock = clock
    driver.open()
    try:
        notifications = Notifications()
        driver.watch(notifications)
        chip.switch(0, closed=True)
        assert notifications.wait_for(1)
        chip.switch(0, closed=False)  # the contact bounces open 10 ms later
        clock.now += 0.01
        polls_after(chip)
        assert notifications.count == 1
        assert driver.read() == {"door": True}
        assert driver.read() == {"door": True}  # still inside the bounce time: the open is not taken
        clock.now += 0.04  # 50 ms after the closure the bounce time is over
        assert notifications.wait_for(2)
        assert driver.read() == {"door": False}
    finally:
        driver.close()


def test_poller_error_is_read_failed_until_the_chip_answers_again(bus, expanders):
    chip = bus.add(PCF8574Chip(0x20))
    driver = expanders("pcf8574", {"pins": {"door": 0}})
    chip.present = False
    message = wait_until(lambda: _read_error(driver), timeout=5, what="the poller to see the chip gone")
    assert "nothing answers at 0x20 on I2C bus 1" in message
    chip.present = True
    wait_until(lambda: _read_error(driver) is None, timeout=5, what="the chip answering again")
    assert driver.read() == {"door": False}


def test_io_error_mid_poll_is_one_failed_read(bus, expanders):
    chip = bus.add(PCF8574Chip(0x20))
    driver = expanders("pcf8574", {"pins": {"door": 0}})
    bus.fail(errno.EIO, times=1)
    wait_until(lambda: not bus._faults, timeout=5, what="the poller to hit the I/O error")
    polls_after(chip)
    assert driver.read() == {"door": False}


class Glitching(PCF8574Chip):
    """A PCF8574 whose reads can be made to fail with something no driver expects."""

    glitch = False

    def read(self, length):
        if self.glitch:
            self.reads += 1
            raise RuntimeError("the bus adapter lost its mind")
        return super().read(length)


def test_changes_seen_before_a_failure_are_still_reported(bus, expanders):
    chip = bus.add(Glitching(0x20))
    driver = expanders("pcf8574", {"pins": {"door": 0}, "bounce_time": None})
    notifications = Notifications()
    driver.watch(notifications)
    chip.switch(0, closed=True)
    assert notifications.wait_for(1)
    chip.glitch = True
    polls_after(chip)
    assert driver.read() == {"door": True}
    with pytest.raises(ReadFailed, match="lost its mind"):
        driver.read()


def test_changes_beyond_the_queue_drop_the_oldest_and_say_so(bus, expanders, monkeypatch, caplog):
    from pibridge.drivers.i2c import _expander

    monkeypatch.setattr(_expander, "MAX_PENDING_CHANGES", 2)
    chip = bus.add(PCF8574Chip(0x20))
    driver = expanders("pcf8574", {"pins": {"door": 0}, "bounce_time": None})
    notifications = Notifications()
    driver.watch(notifications)
    for n, closed in enumerate((True, False, True), start=1):
        chip.switch(0, closed=closed)
        assert notifications.wait_for(n)
    assert driver.dropped_changes == 1
    assert any("dropped the oldest (1 so far)" in r.getMessage() for r in caplog.records)
    assert [driver.read(), driver.read()] == [{"door": False}, {"door": True}]


def test_an_unexpected_error_in_the_poller_is_reported_logged_once_and_survived(bus, expanders, caplog):
    chip = bus.add(Glitching(0x20))
    driver = expanders("pcf8574", {"pins": {"door": 0}}, sensor="porch")
    chip.glitch = True
    message = wait_until(lambda: _read_error(driver), timeout=5, what="the poller to report the error")
    assert "reading the pins failed: RuntimeError: the bus adapter lost its mind" in message
    polls_after(chip, 5)
    assert [r.levelname for r in caplog.records if "reading the pins failed" in r.getMessage()] == ["ERROR"]
    assert any(t.name == "expander-porch" and t.is_alive() for t in threading.enumerate())
    chip.glitch = False
    wait_until(lambda: _read_error(driver) is None, timeout=5, what="the poller to recover")


def _read_error(driver):
    try:
        driver.read()
    except ReadFailed as exc:
        return str(exc)
    return None


def test_absent_chip_is_device_not_found(bus):
    driver = create("pcf8574", "inputs", {"address": 0x27})
    with pytest.raises(DeviceNotFound, match="nothing answers at 0x27"):
        driver.open()
    driver.close()


def test_close_stops_the_poller(bus):
    bus.add(PCF8574Chip(0x20))
    driver = create("pcf8574", "gate", {"poll_interval": 0.005})
    driver.open()
    assert any(t.name == "expander-gate" for t in threading.enumerate())
    driver.close()
    driver.close()
    assert not any(t.name == "expander-gate" for t in threading.enumerate())


def test_pcf8574a_has_its_own_addresses(bus, expanders):
    chip = bus.add(PCF8574Chip(0x38))
    driver = expanders("pcf8574a", {"address": 0x38, "pins": [0, "P1"]})
    assert [q.name for q in driver.quantities()] == ["p0", "p1"]
    chip.switch(1, closed=True)
    polls_after(chip)
    assert driver.read() == {"p0": False, "p1": True}
    with pytest.raises(OptionError, match="0x38"):
        create("pcf8574a", "x", {"address": 0x20})
    with pytest.raises(OptionError, match="0x20"):
        create("pcf8574", "x", {"address": 0x38})


@pytest.mark.parametrize(
    "options, key, message",
    [
        ({"pins": [8]}, "pins", "not an input pin of the PCF8574; use one of P0, .*P7 \\(or their numbers 0, .*7\\)"),
        ({"pins": {"door": "P9"}}, "pins", "pins.door: .P9. is not an input pin"),
        ({"pins": [0, "P0"]}, "pins", "listed twice"),
        ({"pins": {"door": {"pin": 0, "colour": "red"}}}, "pins", "unknown key 'colour'"),
        ({"pins": {"door": {"active_low": True}}}, "pins", "needs pin"),
        ({"pins": {"door": {"pin": 0, "bounce_time": 20}}}, "bounce_time", "between 0 and 10"),
        ({"pins": {"door": {"pin": 0, "pull_up": True}}}, "pins", "unknown key 'pull_up'"),
        ({"poll_interval": 5.0}, "poll_interval", "0.005 to 1"),
        ({"pins": []}, "pins", "at least one"),
    ],
)
def test_bad_pin_options(options, key, message):
    with pytest.raises(OptionError, match=message) as info:
        create("pcf8574", "x", options)
    assert info.value.key == key


def test_scan_lists_the_expanders_at_their_addresses(bus, capsys):
    bus.add(PCF8574Chip(0x24))
    bus.add(PCF8574Chip(0x3A))
    cli.main(["scan"])
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("0x24  "))
    assert 'PCF8574 (driver = "pcf8574")' in line and 'MCP23017 (driver = "mcp23017")' in line
    assert '0x3a  could be: PCF8574A (driver = "pcf8574a")' in out


def test_under_the_bridge_a_change_is_pushed_at_once_and_a_lost_expander_stops_no_other_sensor(bus):
    import queue

    from pibridge.bridge.scheduler import SensorReader
    from tests.support.chips.ina260 import INA260Chip

    expander = bus.add(PCF8574Chip(0x20))
    bus.add(INA260Chip(0x40, current_raw=800, bus_raw=4000))
    readings = queue.SimpleQueue()
    door = SensorReader("door", create("pcf8574", "door", {"pins": {"door": 0}, "poll_interval": 0.005}),
                        interval=30.0, sink=readings.put)
    supply = SensorReader("supply", create("ina260", "supply", {"averages": 1}), interval=0.05, sink=readings.put)
    door.start()
    supply.start()
    try:
        def next_of(name):
            while True:
                reading = readings.get(timeout=5)
                if reading.sensor == name:
                    return reading

        assert next_of("door").values == {"door": False}  # the first read, at start
        expander.switch(0, closed=True)
        assert next_of("door").values == {"door": True}  # pushed long before the 30 s interval
        expander.present = False

        def door_failed():
            door.notify()  # as an edge would: the reader reads now instead of in 30 s
            return door.health.failures >= 1

        wait_until(door_failed, timeout=5, what="the lost expander counted as a failure")
        assert "nothing answers at 0x20" in door.health.last_error
        before = supply.health.reads
        wait_until(lambda: supply.health.reads >= before + 3, timeout=5, what="the INA260 still read")
        assert next_of("supply").values == {"voltage": 5.0, "current": 1.0, "power": 5.0}
    finally:
        for reader in (door, supply):
            reader.stop()
        for reader in (door, supply):
            assert reader.join(5.0)
