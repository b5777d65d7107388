"""Sensor readers: clock-aligned intervals, isolation of hanging devices, failure streaks, watch."""

import logging
import math
import queue
import threading
import time

import pytest

from pibridge.bridge.config import parse_config
from pibridge.bridge.mapping import SensorMapping
from pibridge.bridge.scheduler import SensorReader, next_slot
from pibridge.drivers import ReadFailed
from pibridge.drivers.system.mock import MockDriver


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Collector:
    def __init__(self):
        self.readings = queue.SimpleQueue()
        self.changes = []

    def sink(self, reading):
        self.readings.put(reading)

    def changed(self, name, online):
        self.changes.append((name, online))

    def take(self, count, timeout=5.0):
        return [self.readings.get(timeout=timeout) for _ in range(count)]


@pytest.fixture
def readers():
    started = []
    yield started
    for r in started:
        r.stop()
    for r in started:
        assert r.join(5.0), f"reader {r.name} did not stop"


def start(readers, name, interval, collector, **kwargs):
    options = kwargs.pop("options", {})
    driver = kwargs.pop("driver", None) or MockDriver(name, {"seed": 1, **options})
    reader = SensorReader(name, driver, interval=interval, sink=collector.sink,
                          on_online_change=collector.changed, **kwargs)
    readers.append(reader)
    reader.start()
    return reader


def test_next_slot_is_the_next_multiple_of_the_interval():
    assert next_slot(100.0, 10.0) == 110.0
    assert next_slot(105.2, 10.0) == 110.0
    assert next_slot(109.999, 0.5) == 110.0
    assert math.isclose(next_slot(1_700_000_000.3, 0.25), 1_700_000_000.5)


def test_first_read_at_once_then_on_the_clock_grid_without_drift(readers):
    c = Collector()
    t0 = time.time()
    start(readers, "a", 0.25, c)
    first, *rest = c.take(6)
    assert first.timestamp_ms / 1000 - t0 < 0.2, "the first reading should not wait for the grid"
    slots = [r.timestamp_ms / 250 for r in rest]
    for slot in slots:
        # within 40 ms after a multiple of 250 ms
        assert slot - math.floor(slot) < 0.16, slots
    assert [math.floor(s) for s in slots] == list(range(math.floor(slots[0]), math.floor(slots[0]) + 5))


def test_a_hanging_device_does_not_delay_the_others(readers):
    c = Collector()
    stuck = start(readers, "stuck", 0.1, Collector(), options={"hang_every": 1, "hang_seconds": 60.0})
    start(readers, "healthy", 0.1, c)
    t0 = time.monotonic()
    got = c.take(8, timeout=3.0)
    assert time.monotonic() - t0 < 2.0
    assert {r.sensor for r in got} == {"healthy"}
    assert stuck.health.reads == 0
    assert stuck.health.missed >= 5  # its slots passed while it hung, and were counted
    # Stopping leaves the hung read alone (no driver is called from two threads at once) ...
    stuck.stop()
    assert not stuck.join(0.2)
    # ... and ends the reader as soon as the read returns (the mock's hang ends when it is closed).
    stuck.driver.close()
    assert stuck.join(5.0)
    readers.remove(stuck)


class Unpluggable(MockDriver):
    """The mock, with a loose wire: while ``unplugged`` is set every read fails."""

    name = "mock"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.unplugged = threading.Event()

    def read(self):
        if self.unplugged.is_set():
            raise ReadFailed(f"sensor {self.sensor!r}: no answer from the device")
        return super().read()


def test_a_failure_streak_is_logged_once_and_marks_the_sensor_offline_then_online(readers, caplog):
    caplog.set_level(logging.INFO, logger="pibridge.scheduler")
    c = Collector()
    driver = Unpluggable("loose", {"seed": 1})
    reader = start(readers, "loose", 0.05, c, driver=driver, offline_after=3)
    c.take(2)
    driver.unplugged.set()
    wait_for(lambda: reader.health.error_streak >= 6, 3.0, "six failed reads")
    assert c.changes == [("loose", False)]
    assert not reader.health.online
    driver.unplugged.clear()
    wait_for(lambda: c.changes == [("loose", False), ("loose", True)], 3.0, "the sensor back online")
    assert reader.health.error_streak == 0
    assert reader.health.failures >= 6
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "no answer" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    assert any("reading again after" in r.getMessage() for r in caplog.records)


class RetriedMock(MockDriver):
    """A device whose driver retries a failed read once at once, like a DHT22 driver does."""

    name = "mock"
    retries = 1


def test_read_errors_are_retried_as_the_driver_says(readers):
    c = Collector()
    # every 2nd read fails, and the one retry always succeeds
    reader = start(readers, "dht", 0.05, c, driver=RetriedMock("dht", {"fail_every": 2}))
    c.take(5)
    assert reader.health.failures == 0
    plain = start(readers, "plain", 0.05, Collector(), driver=MockDriver("plain", {"fail_every": 2}))
    wait_for(lambda: plain.health.failures >= 2, 3.0, "failures without retries")


def test_a_watching_driver_is_read_at_once_on_a_change(readers):
    c = Collector()
    start(readers, "door", 30.0, c, options={"metrics": ["contact"], "event_interval": 0.1})
    t0 = time.monotonic()
    got = c.take(4, timeout=3.0)
    assert time.monotonic() - t0 < 2.0, "changes must not wait for the 30 s interval"
    flips = [r.values["contact"] for r in got[1:]]
    assert all(a != b for a, b in zip(flips, flips[1:])), flips


def test_impossible_values_are_counted_as_failures_and_never_sent(readers):
    config = parse_config(
        '[agent]\n[storage]\ndir = "/tmp/x"\n[[sensors]]\nname = "g"\ndriver = "mock"\ninterval = 1.0\n'
        'metrics = ["temperature"]\ngarbage_every = 2\n'
    )
    sensor = config.sensors[0]
    driver = sensor.create_driver()
    c = Collector()
    reader = start(readers, "g", 0.05, c, driver=driver, mapping=SensorMapping(sensor, driver.quantities()))
    got = c.take(4)
    wait_for(lambda: reader.health.failures >= 3, 3.0, "garbage counted as failures")
    for r in got:
        value = r.values["temperature"]
        assert isinstance(value, float) and math.isfinite(value), got


def test_without_a_mapping_nan_and_text_are_refused(readers):
    c = Collector()
    reader = start(readers, "g", 0.05, c, options={"garbage_every": 1})
    wait_for(lambda: reader.health.failures >= 3, 3.0, "garbage refused")
    assert reader.health.reads == 0
    assert c.readings.empty()


def test_slots_a_slow_read_skips_are_counted_as_missed(readers, caplog):
    caplog.set_level(logging.WARNING, logger="pibridge.scheduler")
    c = Collector()
    # Every 3rd read blocks for 2.5 intervals: the two slots it overruns are never read.
    reader = start(readers, "slow", 0.1, c, options={"hang_every": 3, "hang_seconds": 0.25})
    wait_for(lambda: reader.health.missed >= 4, 10, "two overruns")
    reader.stop()
    assert reader.join(5)
    overruns = reader.health.reads // 3
    assert 2 * (overruns - 1) <= reader.health.missed <= 2 * overruns
    assert sum("passed without a read" in r.getMessage() for r in caplog.records) == 1
