"""The read pool: a handful of threads for any number of sensors, one read at a time per bus, and a hung
device that holds up only itself (and, for a few seconds, the other sensors of its bus)."""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time

import pytest

from pibridge.bridge.read_pool import ReadPool
from pibridge.bridge.scheduler import SensorReader
from pibridge.drivers import Driver, ReadFailed, create
from pibridge.drivers.system.mock import MockDriver
from pibridge.readings import Quantity
from tests.support.waiting import wait_until


class Gate(Driver):
    """A device whose read blocks until the test opens the gate, like a wedged bus; it records what the
    bridge did to it and when."""

    name = "test-gate"

    def __init__(self, sensor, bus=None, min_interval=0.0, hang_from=1):
        super().__init__(sensor)
        self._bus = bus
        self._min_interval = min_interval
        self.hang_from = hang_from
        self.gate = threading.Event()
        self.reading = threading.Event()
        self.reads = 0
        self.read_times: list[float] = []
        self.closed = False
        self.closed_during_a_read = False
        self._in_read = False

    def quantities(self):
        return [Quantity("temperature", "°C")]

    def bus(self):
        return self._bus

    def min_interval(self):
        return self._min_interval

    def read(self):
        self.reads += 1
        self.read_times.append(time.monotonic())
        self._in_read = True
        try:
            if self.reads >= self.hang_from:
                self.reading.set()
                self.gate.wait()
        finally:
            self._in_read = False
        return {"temperature": 20.0}

    def close(self):
        self.closed_during_a_read |= self._in_read
        self.closed = True


class Probe(Driver):
    """A chip on a bus whose transfer takes 20 ms (its conversion time); it records how many probes of its
    *wires* were in a transfer at the same moment."""

    name = "test-probe"
    CONVERSION_S = 0.02

    def __init__(self, sensor, wires: dict, bus=None):
        super().__init__(sensor)
        self.wires = wires
        self._bus = bus
        self.reads = 0

    def quantities(self):
        return [Quantity("temperature", "°C")]

    def bus(self):
        return self._bus

    def read(self):
        with self.wires["lock"]:
            self.wires["active"] += 1
            self.wires["most"] = max(self.wires["most"], self.wires["active"])
        time.sleep(self.CONVERSION_S)
        with self.wires["lock"]:
            self.wires["active"] -= 1
        self.reads += 1
        return {"temperature": 21.0}


def wires():
    return {"lock": threading.Lock(), "active": 0, "most": 0}


@pytest.fixture
def pool():
    """A pool of its own per test, and afterwards no reader left running and no thread left behind."""
    made = []

    def make(**options):
        made.append((ReadPool(**options), []))
        return made[-1]

    yield make
    for read_pool, readers in made:
        for reader in readers:
            reader.stop()
        for reader in readers:
            assert reader.join(5.0), f"reader {reader.name} did not stop"
        assert read_pool.stop(5.0)


def reader_on(made, name, driver, interval, sink=None, **options) -> SensorReader:
    read_pool, readers = made
    reader = SensorReader(name, driver, interval=interval, sink=sink or (lambda reading: None), pool=read_pool,
                          **options)
    readers.append(reader)
    reader.start()
    return reader


def threads_of(read_pool):
    return {t.name for t in read_pool.threads()}


class BusMock(MockDriver):
    """The mock, on a bus."""

    name = "mock"

    def __init__(self, sensor, options, bus):
        super().__init__(sensor, options)
        self._bus = bus

    def bus(self):
        return self._bus


def test_two_hundred_sensors_are_read_by_a_handful_of_threads(pool):
    made = pool()
    before = threading.active_count()
    readers = []
    for i in range(200):
        # Three in four on the shared pool, the others on two I2C buses.
        driver = MockDriver(f"m{i}", {"seed": i}) if i % 4 else BusMock(f"m{i}", {"seed": i}, f"i2c:{i % 8 // 4}")
        readers.append(reader_on(made, f"m{i}", driver, 0.5))
    wait_until(lambda: all(r.health.reads >= 2 for r in readers), 20, "two reads of every sensor")
    names = threads_of(made[0])
    # One scheduler, one worker per bus, the four shared ones: 7, where a thread per sensor made 200.
    assert len(names) <= 7 and "read-scheduler" in names, names
    assert {"read-i2c:0-1", "read-i2c:1-1"} <= names, names
    assert threading.active_count() - before <= 7, [t.name for t in threading.enumerate()]


def test_a_hung_device_holds_up_neither_the_others_nor_the_scheduler(pool, caplog):
    caplog.set_level(logging.INFO, logger="pibridge.read_pool")
    # One shared worker only: the hung read occupies it, so the others go on only if the pool replaces it.
    made = pool(pool_size=1, stuck_after=0.3)
    hung = Gate("hung")
    hung_reader = reader_on(made, "hung", hung, 0.1)
    assert hung.reading.wait(5)
    healthy = [reader_on(made, f"ok{i}", MockDriver(f"ok{i}", {"seed": i}), 0.1) for i in range(3)]
    wait_until(lambda: all(r.health.reads >= 10 for r in healthy), 10, "ten reads of every healthy sensor")
    # The scheduler went on too: it counted every slot of the hung sensor that passed without a read.
    wait_until(lambda: hung_reader.health.missed >= 10, 5, "the hung sensor's missed slots")
    assert hung.reads == 1, "a sensor still being read must never be queued again"
    assert len(threads_of(made[0])) == 3  # the scheduler, the hung worker, its replacement
    assert any("its read has taken" in r.getMessage() and "'hung'" in r.getMessage() for r in caplog.records)
    hung.hang_from = math.inf
    hung.gate.set()
    wait_until(lambda: hung_reader.health.reads >= 2, 5, "the hung sensor reading again")
    wait_until(lambda: len(threads_of(made[0])) == 2, 5, "the hung worker to end once its read returned")


def test_the_other_sensors_of_a_bus_wait_for_a_hung_read_only_up_to_the_bound(pool):
    made = pool(stuck_after=0.5)
    hung = Gate("hung", bus="i2c:1")
    reader_on(made, "hung", hung, 0.1)
    assert hung.reading.wait(5)
    t0 = time.monotonic()
    neighbour = reader_on(made, "neighbour", BusMock("neighbour", {"seed": 1}, "i2c:1"), 0.1)
    wait_until(lambda: neighbour.health.reads >= 3, 10, "the neighbour on the same bus reading")
    waited = time.monotonic() - t0
    assert waited >= 0.3, "a read on a bus must wait while another device of that bus is being read"
    assert neighbour.health.missed >= 1  # the slots it waited through are counted
    hung.hang_from = math.inf
    hung.gate.set()


def test_two_drivers_on_one_bus_never_read_at_the_same_time(pool):
    made = pool()
    shared, separate = wires(), wires()
    on_bus = [Probe(f"b{i}", shared, bus="spi:0") for i in range(3)]
    on_their_own = [Probe(f"p{i}", separate) for i in range(3)]
    for probe in on_bus + on_their_own:
        reader_on(made, probe.sensor, probe, 0.1)
    # The probes can tell: those on lines of their own (the shared pool) do overlap ...
    wait_until(lambda: separate["most"] >= 2, 10, "two transfers at once on separate lines")
    wait_until(lambda: all(p.reads >= 15 for p in on_bus), 10, "fifteen reads of every probe on the bus")
    # ... those on one bus never did.
    assert shared["most"] == 1


def test_readings_stay_on_the_clock_grid(pool):
    made = pool()
    stamps = queue.SimpleQueue()
    for i in range(20):
        driver = MockDriver(f"g{i}", {"seed": i}) if i % 2 else BusMock(f"g{i}", {"seed": i}, "i2c:1")
        reader_on(made, f"g{i}", driver, 0.2, sink=lambda reading: stamps.put(reading))
    by_sensor: dict[str, list[int]] = {}
    while min((len(v) for v in by_sensor.values()), default=0) < 6 or len(by_sensor) < 20:
        reading = stamps.get(timeout=10)
        by_sensor.setdefault(reading.sensor, []).append(reading.timestamp_ms)
    for sensor, times in by_sensor.items():
        slots = [t / 200 for t in times[1:6]]  # the first reading is taken at once, off the grid
        assert all(s - math.floor(s) < 0.4 for s in slots), (sensor, times)  # within 80 ms of its slot
        assert [math.floor(s) for s in slots] == list(range(math.floor(slots[0]), math.floor(slots[0]) + 5)), \
            (sensor, times)


@pytest.mark.parametrize("step", [-3600.0, 3600.0])
def test_a_clock_step_never_stalls_the_schedule(pool, step):
    """NTP setting the clock an hour back (or on) after a Pi booted without a real-time clock."""
    offset = [0.0]
    made = pool(clock=lambda: time.time() + offset[0])
    driver = Gate("steady", hang_from=math.inf)
    reader_on(made, "steady", driver, 0.1)
    wait_until(lambda: driver.reads >= 3, 5, "reads before the step")
    offset[0] = step
    stepped_at, reads = time.monotonic(), driver.reads
    wait_until(lambda: driver.reads >= reads + 5, 5, "reads after the step")
    assert time.monotonic() - stepped_at < 2.0


def test_stop_during_a_hung_read_returns_and_the_device_is_closed_once_the_read_ends(pool):
    made = pool()
    gate = Gate("wedged", bus="i2c:1")
    reader = reader_on(made, "wedged", gate, 0.05)
    assert gate.reading.wait(5)
    reader.stop()  # returns at once, the read still hangs
    assert not reader.join(0.1)
    assert not gate.closed, "closing a device from another thread, in the middle of its read"
    gate.gate.set()
    assert reader.join(5)
    assert gate.closed and not gate.closed_during_a_read
    assert gate.reads == 1, "a stopped reader must not read again"


def test_notify_reads_at_once_and_after_the_device_minimum_interval(pool):
    made = pool()
    door = Gate("door", min_interval=0.3, hang_from=math.inf)
    reader = reader_on(made, "door", door, 3600.0)
    wait_until(lambda: door.reads == 1, 5, "the first read")
    reader.notify()  # a change right after a read: read as soon as the device allows
    wait_until(lambda: door.reads == 2, 5, "the read after the change")
    assert door.read_times[1] - door.read_times[0] >= 0.29  # measured a hair later than the pool's own mark
    reader.notify()
    wait_until(lambda: door.reads == 3, 5, "the read after the next change")
    # A change during a read: read again right after it.
    door.hang_from = 4
    reader.notify()
    assert door.reading.wait(5)
    reader.notify()
    door.hang_from = math.inf
    door.gate.set()
    wait_until(lambda: door.reads == 5, 5, "the read after the change that came during a read")
    assert reader.health.missed == 0


class FailsOnce(Gate):
    """Every read fails at first and works on the driver's one retry, which it allows 0.3 s later."""

    name = "test-fails-once"
    retries = 1

    def read(self):
        self.reads += 1
        self.read_times.append(time.monotonic())
        if self.reads % 2:
            raise ReadFailed(f"sensor {self.sensor!r}: no acknowledge")
        return {"temperature": 20.0}


def test_a_retry_waits_in_the_schedule_not_in_a_worker(pool):
    made = pool(pool_size=1)
    flaky = FailsOnce("flaky", min_interval=0.3)
    flaky_reader = reader_on(made, "flaky", flaky, 1.0)
    neighbour = Gate("neighbour", hang_from=math.inf)
    reader_on(made, "neighbour", neighbour, 0.05)
    wait_until(lambda: flaky_reader.health.reads >= 2, 10, "two reads that needed their retry")
    assert flaky_reader.health.failures == 0
    retry_gap = flaky.read_times[1] - flaky.read_times[0]
    assert retry_gap >= 0.3
    # The one worker went on reading the neighbour while the retry waited.
    assert sum(flaky.read_times[0] < t < flaky.read_times[1] for t in neighbour.read_times) >= 3


class Broken:
    """A job whose turn always raises: what a bug in the pool's own code looks like to a worker."""

    name = "broken"
    interval = 0.05
    bus = None
    ended = False

    def turn(self, retry):
        raise ZeroDivisionError("a bug")

    def finish(self):
        self.ended = True

    def count_missed(self, slots):
        pass

    def earliest_read(self):
        return -math.inf


def test_a_worker_outlives_a_bug_and_gives_up_after_five_in_a_row(caplog):
    caplog.set_level(logging.INFO, logger="pibridge.read_pool")
    read_pool = ReadPool()
    job = Broken()
    read_pool.add(job)
    wait_until(read_pool.dead, 10, "the worker to give up")
    assert "read-pool-1" in read_pool.dead()
    first = [r for r in caplog.records if "read-pool-1" in r.getMessage()]
    assert sum(bool(r.exc_info) for r in first) == 1  # the traceback once, then one line each
    assert len(first) == 6 and first[-1].levelno == logging.CRITICAL and "giving up" in first[-1].getMessage()
    read_pool.remove(job)
    read_pool.stop()


def test_a_scheduler_that_crashes_on_every_turn_gives_up_and_the_daemon_notices(tmp_path, monkeypatch):
    from pibridge.bridge.config import parse_config
    from pibridge.bridge.daemon import Bridge

    config = parse_config(f'[storage]\ndir = "{tmp_path}"\n[[sensors]]\nname = "a"\ndriver = "mock"\n'
                          'interval = 0.05\n')
    bridge = Bridge(config)
    turns = []

    def broken(self, now):
        turns.append(now)
        raise IndexError("a bug in the scheduler")

    monkeypatch.setattr(ReadPool, "_tick", broken)
    bridge.start()
    try:
        wait_until(lambda: bridge.pool.dead(), 10, "the scheduler to give up")
        assert len(turns) == 5
        bridge._check_threads()
        assert bridge.failed == "thread read-scheduler ended"
    finally:
        monkeypatch.undo()
        bridge.close()


@pytest.mark.parametrize("driver, options, bus", [
    ("tmp102", {"bus": 3}, "i2c:3"),
    ("bme280", {}, "i2c:1"),
    ("mcp3008", {"device": 1}, "spi:0"),
    ("max31865", {"bus": 1}, "spi:1"),
    ("pms5003", {"port": "/dev/ttyUSB0"}, f"serial:{os.path.realpath('/dev/ttyUSB0')}"),
    ("mock", {}, None),
    ("ds18b20", {}, "w1"),
    ("dht22", {"pin": 4}, None),
])
def test_drivers_name_the_bus_they_share(driver, options, bus):
    assert create(driver, "s", options).bus() == bus
