"""Reading every sensor on its own interval, through the bridge's read pool.

A :class:`SensorReader` owns one driver.  It reads the device at once when
started, then on the wall-clock grid of its interval (every 10 s means at
:00, :10, :20 ...), so readings of different sensors line up and the
schedule never drifts, however long a read takes.  When to read and in
which thread is the :class:`~pibridge.bridge.read_pool.ReadPool`'s job:
one scheduler thread for all sensors, one worker per shared bus (the
sensors of one I2C bus are read one after the other) and a few shared
workers for the rest.  A device that hangs delays only itself (and, after
a few seconds, no longer the other sensors of its bus): its slots are
counted as missed until the read returns.

Failed reads are retried as often as the driver's ``retries`` says (after
the driver's ``min_interval``, without holding a worker meanwhile), then
counted as one failure.  A failure streak is logged once when it starts and
once when it ends, not on every read; after ``offline_after`` failures in a
row the reader reports the sensor offline, and online again with the first
good read.

Threading: the read and everything it calls (``sink``, ``on_online_change``,
``keep_state``, the mapping) run in a worker thread of the pool, one turn at
a time for a sensor, never two at once.  ``sink`` and ``on_online_change``
must not block (the bridge's are queue puts).  ``keep_state`` (the bridge's
counter store) is called after a push and at stop; it writes a small file,
which holds the worker that long.  Drivers that see changes between reads
(``watch``) call :meth:`SensorReader.notify` from their own thread; the
read then happens at once in a worker.  :meth:`~SensorReader.count_missed`
runs in the pool's scheduler thread.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from pibridge.bridge.crashes import Crashes
from pibridge.bridge.read_pool import ReadPool, next_slot, shared_pool
from pibridge.drivers import DeviceNotFound, Driver, DriverError, ReadFailed
from pibridge.readings import Reading, Value

__all__ = ["SensorHealth", "SensorReader", "next_slot"]

log = logging.getLogger("pibridge.scheduler")

_NON_NUMERIC_UNITS = {"bool": bool, "text": str}

_numbers = itertools.count(1)


@dataclass
class SensorHealth:
    """What the status command shows about one sensor.  Written by the read pool's threads for this
    sensor only: ``missed`` by the scheduler, the rest by the worker that reads it."""

    name: str
    online: bool = True
    reads: int = 0
    failures: int = 0
    #: slots of the grid that passed without a read (the previous read was still running or waiting
    #: for its worker: a slow or hung device, a busy bus, a busy CPU)
    missed: int = 0
    error_streak: int = 0
    last_error: str | None = None
    last_values: dict[str, Value] = field(default_factory=dict)
    last_timestamp_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "online": self.online,
            "reads": self.reads,
            "failures": self.failures,
            "missed": self.missed,
            "error_streak": self.error_streak,
            "last_error": self.last_error,
            "last_values": dict(self.last_values),
            "last_timestamp_ms": self.last_timestamp_ms,
        }


class SensorReader:
    """Reads one driver on a clock-aligned interval through a :class:`ReadPool` and hands on :class:`Reading`\\ s.

    *mapping* (``apply(reading) -> Reading | None``) turns a raw reading into
    what is sent (calibration, unit conversion, thresholds); None drops it.
    *sink* receives every reading to deliver.  *on_online_change(name,
    online)* is told when the sensor goes offline (``offline_after``
    failures in a row) and when it recovers.  *keep_state(name, state)*, if
    given, receives ``driver.state()`` before each pushed reading is handed
    to *sink* and once more when the reader stops.  *pool* is the read pool
    (the daemon makes one for all its sensors); without one the process's
    shared pool is used.
    """

    def __init__(
        self,
        name: str,
        driver: Driver,
        *,
        interval: float,
        sink: Callable[[Reading], None],
        mapping: Any = None,
        offline_after: int = 3,
        on_online_change: Callable[[str, bool], None] | None = None,
        keep_state: Callable[[str, dict | None], None] | None = None,
        clock: Callable[[], float] = time.time,
        pool: ReadPool | None = None,
    ):
        if interval <= 0:
            raise ValueError(f"sensor {name!r}: interval must be positive, not {interval}")
        self.name = name
        self.driver = driver
        self.interval = max(float(interval), driver.min_interval())
        self.offline_after = max(1, int(offline_after))
        self.health = SensorHealth(name)
        #: Tells this reader from the ones before and after it for the same sensor (in the log).
        self.number = next(_numbers)
        #: The shared bus the device is on (read one device at a time), or None.
        self.bus = _bus_of(name, driver)
        self._sink = sink
        self._mapping = mapping
        self._on_online_change = on_online_change
        self._keep_state = keep_state
        self._clock = clock
        self._pool = pool if pool is not None else shared_pool()
        self._started = False
        self._stopping = False
        self._ended = threading.Event()
        self._opened = False
        self._attempts_left = 0
        self._last_read = -math.inf
        self._kinds = {q.name: _NON_NUMERIC_UNITS.get(q.unit) for q in driver.quantities()}
        self._crashes = Crashes(log, f"the reader of sensor {name!r}")
        #: True when the reader gave up after crashing repeatedly (the daemon then exits).
        self.crashed = False

    # -- control (any thread) -------------------------------------------------

    def start(self) -> None:
        """Read at once, then on the grid (returns at once)."""
        self._started = True
        self._pool.add(self)

    def stop(self) -> None:
        """Take the sensor out of the schedule (returns at once).

        A read in progress is finished first; then the state is saved and the device closed,
        in the worker that read it.
        """
        self._stopping = True
        if self._started:
            self._pool.remove(self)
        else:
            self._ended.set()

    def join(self, timeout: float) -> bool:
        """Wait until the reader has stopped and closed its device; False if its read is still running.

        A hung read is left alone (a driver is never called from two threads at once): the device is
        closed when that read returns, however late.
        """
        if self._ended.wait(timeout):
            return True
        log.warning("sensor %r: the device is still busy after %.1f s; it is closed when its read returns",
                    self.name, timeout)
        return False

    def notify(self) -> None:
        """Called by a watching driver (any thread): read now."""
        if self._started and not self._stopping:
            self._pool.wake(self)

    @property
    def read_by(self) -> str:
        """Which threads read this sensor (for the log): its bus's worker or the shared pool."""
        return self._pool.read_by(self)

    @property
    def ended(self) -> bool:
        """True once the reader has stopped (or given up) and closed its device."""
        return self._ended.is_set()

    def ended_unasked(self) -> bool:
        """True when the reader was started and has ended without :meth:`stop`: it gave up after
        repeated crashes."""
        return self._started and self._ended.is_set() and not self._stopping

    # -- the pool's threads ----------------------------------------------------------

    def turn(self, retry: bool = False) -> float | None:
        """One read (a worker thread); seconds until the driver wants a retry, or None.

        A bug (in a driver, a mapping, a callback) must not end the schedule silently: it is
        logged, the device closed and opened again, and the next slot tried; after repeated
        crashes the reader gives up and ends.
        """
        if self._stopping:
            self.finish()
            return None
        retry_in = None
        try:
            retry_in = self._read_once(retry)
            self._crashes.turn_went_well()
        except Exception as exc:
            self._close()
            if not self._crashes.record(exc):
                self.crashed = True
                self.finish()
                return None
        if self._stopping:
            self.finish()
            return None
        return retry_in

    def finish(self) -> None:
        """Save the driver's state and close the device (a worker thread, after the last read)."""
        if self._ended.is_set():
            return
        try:
            self._save_state()
        finally:
            self._close()
            self._ended.set()

    def earliest_read(self) -> float:
        """When (monotonic) the device may be read again after the last read: its minimum interval."""
        return self._last_read + self.driver.min_interval()

    def count_missed(self, slots: int) -> None:
        """Count grid slots that passed without a read (the scheduler thread): a reading not
        taken is a loss too.  Measured on the monotonic clock, so a clock step is no overrun."""
        if not self.health.missed:
            log.warning("sensor %r: %d reading slots passed without a read (the read, its bus or the CPU was "
                        "too slow for interval = %g s); counted in `pibridge status` as missed",
                        self.name, slots, self.interval)
        self.health.missed += slots

    def _open(self) -> bool:
        try:
            self.driver.open()
        except DriverError as exc:
            self._failed(str(exc))
            self.driver.close()
            return False
        except Exception as exc:  # a driver bug must not end the schedule
            self._failed(f"{exc.__class__.__name__} while opening: {exc}")
            self.driver.close()
            return False
        self._opened = True
        self.driver.watch(self.notify)
        return True

    def _close(self) -> None:
        if self._opened:
            self._opened = False
            try:
                self.driver.close()
            except Exception as exc:
                log.warning("sensor %r: closing the device failed: %s", self.name, exc)

    def _read_once(self, retry: bool) -> float | None:
        """Read, retrying a :class:`ReadFailed` as the driver says; seconds until a retry is due, or None."""
        if not retry:
            self._attempts_left = 1 + max(0, int(self.driver.retries))
        if not self._opened and not self._open():
            return None
        while True:
            self._attempts_left -= 1
            timestamp_ms = int(self._clock() * 1000)
            self._last_read = time.monotonic()
            try:
                values = self.driver.read()
                break
            except ReadFailed as exc:
                if self._attempts_left > 0 and not self._stopping:
                    pause = self.driver.min_interval()
                    if pause > 0:
                        return pause  # the pool queues the retry then, and the worker reads others meanwhile
                    continue
                self._failed(str(exc))
                return None
            except DeviceNotFound as exc:
                self._close()
                self._failed(str(exc))
                return None
            except DriverError as exc:
                self._failed(str(exc))
                return None
            except Exception as exc:
                self._failed(f"{exc.__class__.__name__} from the driver: {exc}")
                return None
        problem = self._check(values)
        if problem:
            self._failed(problem)
            return None
        reading = Reading(self.name, timestamp_ms, values)
        if self._mapping is not None:
            try:
                reading = self._mapping.apply(reading)
            except ValueError as exc:
                self._failed(f"value rejected: {exc}")
                return None
        self._succeeded(values, timestamp_ms)
        if reading is not None and reading.values:
            # Saved before the hand-off: a kill in between may lose this reading, never count it twice.
            self._save_state()
            self._sink(reading)
        return None

    def _save_state(self) -> None:
        if self._keep_state is None:
            return
        try:
            state = self.driver.state()
        except Exception as exc:  # a driver bug must not end the schedule
            log.warning("sensor %r: the driver could not report its state: %s: %s",
                        self.name, type(exc).__name__, exc)
            return
        self._keep_state(self.name, state)

    def _check(self, values: Any) -> str | None:
        """Reject what no device can mean: NaN, infinities, text where a number belongs."""
        if not isinstance(values, dict):
            return f"the driver returned {type(values).__name__}, not a dict of values"
        for quantity, value in values.items():
            kind = self._kinds.get(quantity, float)
            if kind is bool or kind is str:
                if not isinstance(value, kind):
                    return f"{quantity} = {value!r} is not a {kind.__name__}"
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"{quantity} = {value!r} is not a number"
            elif isinstance(value, float) and not math.isfinite(value):
                return f"{quantity} = {value!r} is not a finite number"
        return None

    def _failed(self, message: str) -> None:
        h = self.health
        h.failures += 1
        h.error_streak += 1
        h.last_error = message
        if h.error_streak == 1:
            log.warning(
                "sensor %r: %s (retrying every %g s; logged again when it recovers)", self.name, message, self.interval
            )
        if h.online and h.error_streak >= self.offline_after:
            h.online = False
            log.error("sensor %r: %d failed reads in a row, marking it offline", self.name, h.error_streak)
            if self._on_online_change is not None:
                self._on_online_change(self.name, False)

    def _succeeded(self, values: dict[str, Value], timestamp_ms: int) -> None:
        h = self.health
        h.reads += 1
        h.last_values = values
        h.last_timestamp_ms = timestamp_ms
        if h.error_streak:
            log.info("sensor %r: reading again after %d failed reads", self.name, h.error_streak)
            h.error_streak = 0
        if not h.online:
            h.online = True
            if self._on_online_change is not None:
                self._on_online_change(self.name, True)


def _bus_of(name: str, driver: Driver) -> str | None:
    """The driver's shared bus; a broken answer (a third-party driver's bug) counts as none."""
    try:
        bus = driver.bus()
    except Exception as exc:
        log.warning("sensor %r: the driver could not name its bus (%s: %s); it is read on the shared pool",
                    name, type(exc).__name__, exc)
        return None
    if bus is not None and not (isinstance(bus, str) and bus):
        log.warning("sensor %r: the driver names its bus %r, not a text; it is read on the shared pool", name, bus)
        return None
    return bus
