"""Reading every sensor on its own interval, one thread per sensor.

A :class:`SensorReader` owns one driver.  It reads the device at once when
started, then on the wall-clock grid of its interval (every 10 s means at
:00, :10, :20 ...), so readings of different sensors line up and the
schedule never drifts, however long a read takes.  The waits are measured
with the monotonic clock, so a clock step (NTP setting the time after a Pi
boots without a real-time clock) never makes a wait last for hours.

Each sensor has its own thread, so a device that hangs (a wedged I2C bus, a
DHT22 that needs several tries) only delays itself.  Failed reads are
retried as often as the driver's ``retries`` says, then counted as one
failure.  A failure streak is logged once when it starts and once when it
ends, not on every read; after ``offline_after`` failures in a row the
reader reports the sensor offline, and online again with the first good
read.

Threading: ``sink`` and ``on_online_change`` are called from the reader
thread and must not block (the bridge's are queue puts).  ``keep_state``
(the bridge's counter store) is called from the reader thread too, after a
push and at stop; it writes a small file, which delays only this sensor.
Drivers that see changes between reads (``watch``) wake the reader from
their own thread; the read then happens at once in the reader thread.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from pibridge.bridge.crashes import Crashes
from pibridge.drivers import DeviceNotFound, Driver, DriverError, ReadFailed
from pibridge.readings import Reading, Value

log = logging.getLogger("pibridge.scheduler")

_NON_NUMERIC_UNITS = {"bool": bool, "text": str}


@dataclass
class SensorHealth:
    """What the status command shows about one sensor.  Written by its reader thread only."""

    name: str
    online: bool = True
    reads: int = 0
    failures: int = 0
    #: slots of the grid that passed without a read (the thread was late: a slow read, a busy CPU)
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


def next_slot(now: float, interval: float) -> float:
    """The next multiple of *interval* (seconds since the epoch) strictly after *now*."""
    return (math.floor(now / interval) + 1) * interval


class SensorReader:
    """Reads one driver on a clock-aligned interval in its own thread and hands on :class:`Reading`\\ s.

    *mapping* (``apply(reading) -> Reading | None``) turns a raw reading into
    what is sent (calibration, unit conversion, thresholds); None drops it.
    *sink* receives every reading to deliver.  *on_online_change(name,
    online)* is told when the sensor goes offline (``offline_after``
    failures in a row) and when it recovers.  *keep_state(name, state)*, if
    given, receives ``driver.state()`` before each pushed reading is handed
    to *sink* and once more when the reader stops.
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
    ):
        if interval <= 0:
            raise ValueError(f"sensor {name!r}: interval must be positive, not {interval}")
        self.name = name
        self.driver = driver
        self.interval = max(float(interval), driver.min_interval())
        self.offline_after = max(1, int(offline_after))
        self.health = SensorHealth(name)
        self._sink = sink
        self._mapping = mapping
        self._on_online_change = on_online_change
        self._keep_state = keep_state
        self._clock = clock
        self._wake = threading.Event()
        self._stopping = False
        self._opened = False
        self._last_read = -math.inf
        self._kinds = {q.name: _NON_NUMERIC_UNITS.get(q.unit) for q in driver.quantities()}
        self._crashes = Crashes(log, f"the reader thread of sensor {name!r}")
        #: True when the thread gave up after crashing repeatedly (the daemon then exits).
        self.crashed = False
        self._thread = threading.Thread(target=self._run, name=f"reader-{name}", daemon=True)

    # -- control (any thread) -------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the reader to finish after its current read (returns at once)."""
        self._stopping = True
        self._wake.set()

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end.  If the device hangs, close it from here to break the hang.

        Returns True when the thread ended.
        """
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("sensor %r: the device is still busy after %.1f s; closing it to stop", self.name, timeout)
            self._close()
            self._thread.join(1.0)
        return not self._thread.is_alive()

    def notify(self) -> None:
        """Called by a watching driver (any thread): read now."""
        self._wake.set()

    @property
    def native_id(self) -> int | None:
        """The reader thread's ID as the OS knows it (``/proc/<pid>/task/<id>``); None before start."""
        return self._thread.native_id

    # -- reader thread ----------------------------------------------------------

    def _run(self) -> None:
        try:
            deadline = time.monotonic()
            while not self._stopping:
                self._wait_until(deadline)
                if self._stopping:
                    break
                try:
                    if self._turn():
                        break
                    self._crashes.turn_went_well()
                except Exception as exc:
                    # A bug (in a driver, a mapping, a callback) must not end the schedule silently:
                    # logged, the device closed and opened again, and the next slot tried.
                    self._close()
                    if not self._crashes.record(exc):
                        self.crashed = True
                        return
                self._count_missed(time.monotonic() - deadline)
                now = self._clock()
                deadline = time.monotonic() + (next_slot(now, self.interval) - now)
        finally:
            self._save_state()
            self._close()

    def _count_missed(self, late: float) -> None:
        """Count the grid slots a turn that ended *late* seconds after its slot ran over: a reading
        not taken is a loss too.  Measured on the monotonic clock, so a clock step is no overrun."""
        skipped = int(late // self.interval)
        if skipped > 0:
            if not self.health.missed:
                log.warning("sensor %r: %d reading slots passed without a read (the read or the CPU was too "
                            "slow for interval = %g s); counted in `pibridge status` as missed",
                            self.name, skipped, self.interval)
            self.health.missed += skipped

    def _turn(self) -> bool:
        """One read, now or after a watched change; True if asked to stop meanwhile."""
        if self._wake.is_set():
            # A watched change: read now, as the device allows.
            self._wake.clear()
            gap = self._last_read + self.driver.min_interval() - time.monotonic()
            if gap > 0 and self._sleep(gap):
                return True
        self._read_once()
        return False

    def ended_unasked(self) -> bool:
        """True when the thread was started and has ended without :meth:`stop`: it gave up after
        repeated crashes (or something worse than an exception ended it)."""
        return self._thread.ident is not None and not self._thread.is_alive() and not self._stopping

    def _wait_until(self, deadline: float) -> None:
        """Sleep until *deadline* (monotonic), a watched change or stop, whichever comes first."""
        remaining = deadline - time.monotonic()
        if remaining > 0:
            self._wake.wait(remaining)

    def _sleep(self, seconds: float) -> bool:
        """Sleep; True if asked to stop meanwhile."""
        end = time.monotonic() + seconds
        while not self._stopping:
            remaining = end - time.monotonic()
            if remaining <= 0:
                return False
            self._wake.wait(remaining)
            self._wake.clear()
        return True

    def _open(self) -> bool:
        try:
            self.driver.open()
        except DriverError as exc:
            self._failed(str(exc))
            self.driver.close()
            return False
        except Exception as exc:  # a driver bug must not end the thread
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

    def _read_once(self) -> None:
        if not self._opened and not self._open():
            return
        attempts = 1 + max(0, int(self.driver.retries))
        for attempt in range(attempts):
            timestamp_ms = int(self._clock() * 1000)
            self._last_read = time.monotonic()
            try:
                values = self.driver.read()
                break
            except ReadFailed as exc:
                if attempt + 1 < attempts and not self._stopping:
                    if self._sleep(self.driver.min_interval()):
                        return
                    continue
                self._failed(str(exc))
                return
            except DeviceNotFound as exc:
                self._close()
                self._failed(str(exc))
                return
            except DriverError as exc:
                self._failed(str(exc))
                return
            except Exception as exc:
                self._failed(f"{exc.__class__.__name__} from the driver: {exc}")
                return
        problem = self._check(values)
        if problem:
            self._failed(problem)
            return
        reading = Reading(self.name, timestamp_ms, values)
        if self._mapping is not None:
            try:
                reading = self._mapping.apply(reading)
            except ValueError as exc:
                self._failed(f"value rejected: {exc}")
                return
        self._succeeded(values, timestamp_ms)
        if reading is not None and reading.values:
            # Saved before the hand-off: a kill in between may lose this reading, never count it twice.
            self._save_state()
            self._sink(reading)

    def _save_state(self) -> None:
        if self._keep_state is None:
            return
        try:
            state = self.driver.state()
        except Exception as exc:  # a driver bug must not end the thread
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
