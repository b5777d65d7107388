"""The recent values of every metric, in memory, for the page's charts.

Each metric gets a ring of fixed size (``history_points``, fewer when the
window at the sensor's interval needs fewer): when it is full the oldest point
goes.  A sensor read more often than the ring can hold over the window keeps
one point per slot of ``window / history_points`` (the newest reading in it),
so the charts always reach back the whole window.  A point is 20 bytes in
three ``array`` columns (sequence number, time, value as a 32-bit float: plenty
for a chart; the exact last value is kept apart), so 360 points of 60 metrics
take about 420 KiB, and nothing of it is ever written to the SD card.

Only numbers and true/false (as 1/0) are charted; text metrics keep their last
value only.

Threading: :meth:`History.add` is called from the read pool's workers,
:meth:`History.since` and :meth:`History.last` from the web server's threads;
one lock, held for a few microseconds, keeps them apart.
"""

from __future__ import annotations

import logging
import math
import threading
from array import array
from typing import Any, Callable

from pibridge.readings import Reading

log = logging.getLogger("pibridge.web")


class MetricRing:
    """The last *capacity* points of one metric: (sequence number, timestamp in ms, value).

    With *slot_ms*, a point in the same slot of time as the newest one replaces it.
    """

    def __init__(self, capacity: int, slot_ms: int = 0):
        self.capacity = max(1, int(capacity))
        self.slot_ms = int(slot_ms)
        self._seq = array("q", bytes(8 * self.capacity))
        self._ts = array("q", bytes(8 * self.capacity))
        self._value = array("f", bytes(4 * self.capacity))
        self._start = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def append(self, seq: int, timestamp_ms: int, value: float) -> None:
        if self._count and self.slot_ms:
            newest = (self._start + self._count - 1) % self.capacity
            if timestamp_ms // self.slot_ms == self._ts[newest] // self.slot_ms:
                self._seq[newest], self._ts[newest], self._value[newest] = seq, timestamp_ms, value
                return
        end = (self._start + self._count) % self.capacity
        self._seq[end], self._ts[end], self._value[end] = seq, timestamp_ms, value
        if self._count < self.capacity:
            self._count += 1
        else:
            self._start = (self._start + 1) % self.capacity

    def since(self, after_seq: int) -> list[tuple[int, int, float]]:
        """The points with a sequence number above *after_seq*, oldest first."""
        low, high = 0, self._count
        while low < high:  # sequence numbers rise along the ring: binary search for the first newer one
            middle = (low + high) // 2
            if self._seq[(self._start + middle) % self.capacity] > after_seq:
                high = middle
            else:
                low = middle + 1
        out = []
        for i in range(low, self._count):
            j = (self._start + i) % self.capacity
            out.append((self._seq[j], self._ts[j], self._value[j]))
        return out


def chartable(value: Any) -> float | None:
    """*value* as a number to chart (true/false as 1/0), or None for text and non-finite numbers."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


class History:
    """Rings per (sensor, quantity), created on the first value, sized by :meth:`plan`."""

    def __init__(self, window_seconds: float = 3600.0, max_points: int = 360):
        self.window_seconds = float(window_seconds)
        self.max_points = int(max_points)
        self._capacity: dict[str, tuple[int, int]] = {}
        self._rings: dict[tuple[str, str], MetricRing] = {}
        self._last: dict[tuple[str, str], tuple[int, Any]] = {}
        self._seq = 0
        self._lock = threading.Lock()

    def plan(self, sensor: str, interval: float) -> int:
        """Size the rings of *sensor*: the window at its interval, at most ``max_points`` (then in slots)."""
        wanted = max(10, math.ceil(self.window_seconds / max(interval, 0.001)))
        points = min(self.max_points, wanted)
        slot_ms = math.ceil(self.window_seconds * 1000 / points) if wanted > points else 0
        self._capacity[sensor] = (points, slot_ms)
        return points

    @property
    def sequence(self) -> int:
        """The sequence number of the newest point (0 before the first)."""
        return self._seq

    def add(self, reading: Reading) -> None:
        """Record the values of *reading* (as pushed to the agent, in the agent's units)."""
        with self._lock:
            for quantity, value in reading.values.items():
                key = (reading.sensor, quantity)
                self._last[key] = (reading.timestamp_ms, value)
                number = chartable(value)
                if number is None:
                    continue
                ring = self._rings.get(key)
                if ring is None:
                    points, slot_ms = self._capacity.get(reading.sensor, (self.max_points, 0))
                    ring = self._rings[key] = MetricRing(points, slot_ms)
                self._seq += 1
                ring.append(self._seq, reading.timestamp_ms, number)

    def tap(self, sink: Callable[[Reading], None]) -> Callable[[Reading], None]:
        """A sink that hands each reading on to *sink* and then records it here.

        Delivery comes first: whatever happens to the charts, the reading is on its way.
        """

        def pass_and_record(reading: Reading) -> None:
            sink(reading)
            try:
                self.add(reading)
            except Exception:
                log.exception("the web page could not record a reading of %r for its charts", reading.sensor)

        return pass_and_record

    def since(self, after_seq: int = 0) -> dict[str, dict[str, list[list[float]]]]:
        """sensor -> quantity -> [[timestamp_ms, value], ...] for the points newer than *after_seq*."""
        out: dict[str, dict[str, list[list[float]]]] = {}
        with self._lock:
            for (sensor, quantity), ring in self._rings.items():
                points = ring.since(after_seq)
                if points:
                    # float32 noise (21.700000762939453) trimmed to the 7 digits the ring holds
                    out.setdefault(sensor, {})[quantity] = [[ts, float(f"{value:.7g}")] for _, ts, value in points]
        return out

    def last(self, sensor: str, quantity: str) -> tuple[int, Any] | None:
        """(timestamp_ms, value) of the newest value of that metric, or None."""
        with self._lock:
            return self._last.get((sensor, quantity))
