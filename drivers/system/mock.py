"""A pretend device for laptops, demos and tests: no wiring at all.

Pick the quantities you want and the mock makes up believable values:
temperature follows a daily cycle (coolest before dawn, warmest mid
afternoon), humidity moves the other way, light follows the sun, and every
value wanders with a little noise and slow drift.  The same ``seed`` and the
same read times give the same values, so a test can rely on them.

It can also misbehave on purpose, so you can watch what the bridge does when
real hardware does the same::

    [[sensors]]
    name = "greenhouse"
    driver = "mock"
    interval = 5.0
    metrics = ["temperature", "humidity", "contact"]
    seed = 42
    fail_every = 10      # every 10th read fails like a loose wire
    garbage_every = 7    # every 7th read returns impossible values
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable

from pibridge.readings import Quantity, Value

from .. import DeviceNotFound, Driver, DriverError, Option, OptionError, ReadFailed, register


@dataclass(frozen=True)
class _Signal:
    """How one made-up quantity behaves.

    ``kind`` is ``"cycle"`` (mean plus a daily sine wave), ``"daylight"``
    (zero at night, a sine hump by day), ``"walk"`` (a bounded random walk),
    ``"flag"`` (a boolean that flips now and then) or ``"count"`` (an
    ever-growing counter).
    """

    quantity: Quantity
    kind: str
    mean: float = 0.0
    amplitude: float = 0.0
    peak_hour: float = 15.0
    noise: float = 0.0
    drift: float = 0.0
    low: float = -math.inf
    high: float = math.inf
    digits: int = 2


def _q(name: str, unit: str, description: str) -> Quantity:
    return Quantity(name, unit, description)


_SIGNALS: dict[str, _Signal] = {
    s.quantity.name: s
    for s in (
        _Signal(_q("temperature", "°C", "air temperature"), "cycle", 20.0, 4.0, 15.0, 0.05, 0.02, -40, 85),
        _Signal(_q("humidity", "%RH", "relative humidity"), "cycle", 55.0, -12.0, 15.0, 0.3, 0.05, 0, 100),
        _Signal(_q("pressure", "hPa", "barometric pressure"), "walk", 1013.25, 0.0, 0.0, 0.02, 0.05, 950, 1060),
        _Signal(_q("illuminance", "lx", "light level"), "daylight", 0.0, 20000.0, 13.0, 25.0, 0.0, 0, 120000, 1),
        _Signal(_q("voltage", "V", "supply voltage"), "walk", 5.05, 0.0, 0.0, 0.01, 0.002, 4.5, 5.5, 3),
        _Signal(_q("current", "A", "load current"), "cycle", 0.45, 0.15, 19.0, 0.01, 0.002, 0, 3.2, 3),
        _Signal(_q("power", "W", "load power"), "cycle", 2.3, 0.8, 19.0, 0.05, 0.01, 0, 16, 2),
        _Signal(_q("distance", "cm", "distance to the nearest object"), "walk", 120.0, 0.0, 0.0, 0.3, 0.2, 2, 400, 1),
        _Signal(_q("co2", "ppm", "CO2 concentration"), "cycle", 650.0, 200.0, 18.0, 5.0, 1.0, 400, 5000, 0),
        _Signal(_q("frequency", "Hz", "pulse rate"), "walk", 2.0, 0.0, 0.0, 0.05, 0.02, 0, 50),
        _Signal(_q("cpu_temperature", "°C", "processor temperature"), "walk", 48.0, 0.0, 0.0, 0.3, 0.1, 30, 85, 1),
        _Signal(_q("contact", "bool", "door contact closed"), "flag", 0.05),
        _Signal(_q("motion", "bool", "motion detected"), "flag", 0.15),
        _Signal(_q("counter", "count", "pulses counted since start"), "count", 3.0),
    )
}


@register
class MockDriver(Driver):
    """Made-up readings for any mix of common quantities, with optional faults.

    Nothing to wire.  Choose quantities with ``metrics``; known names are
    temperature (°C), humidity (%RH), pressure (hPa), illuminance (lx),
    voltage (V), current (A), power (W), distance (cm), co2 (ppm),
    frequency (Hz), cpu_temperature (°C), contact and motion (bool) and
    counter (count).

    Faults, counted in reads since ``open()`` (0 switches one off):

    * ``fail_every = N``: every Nth read raises :class:`ReadFailed`, like an
      I2C read that gets no acknowledge.
    * ``hang_every = N``: every Nth read blocks for ``hang_seconds`` (until
      :meth:`close` is called, whichever comes first), like a wedged bus.
    * ``garbage_every = N``: every Nth read returns values no real sensor
      could give: NaN, infinities, absurd magnitudes and text in a number.
    * ``absent = true``: ``open()`` raises :class:`DeviceNotFound`.

    With ``event_interval`` > 0 the boolean quantities (contact, motion)
    flip on their own that often and the mock calls the bridge's ``notify``
    callback, as an edge-triggered GPIO input would.

    Threading: ``read`` runs in a worker of the bridge's read pool; the event
    timer (if any) is a daemon thread that only flips flags and calls
    ``notify``.  ``close`` may be called from another thread to end a hang
    early (``pibridge check`` does, giving up on a hung read).
    """

    name = "mock"
    summary = "made-up values with a daily cycle, noise and drift; fault injection"
    provides = tuple(s.quantity for s in _SIGNALS.values())
    options = {
        "metrics": Option(list, ["temperature", "humidity"], "quantities to report: " + ", ".join(_SIGNALS)),
        "seed": Option((int, type(None)), None, "random seed; the same seed gives the same values"),
        "day_seconds": Option(float, 86400.0, "length of the simulated day (shorten it for demos)"),
        "fail_every": Option(int, 0, "every Nth read fails with a read error (0 = never)"),
        "hang_every": Option(int, 0, "every Nth read blocks for hang_seconds (0 = never)"),
        "hang_seconds": Option(float, 30.0, "how long a hanging read blocks"),
        "garbage_every": Option(int, 0, "every Nth read returns impossible values (0 = never)"),
        "absent": Option(bool, False, "behave like an unplugged device: open() fails"),
        "event_interval": Option(float, 0.0, "flip contact/motion and notify every this many seconds (0 = off)"),
        "min_interval": Option(float, 0.0, "shortest allowed time between reads, in seconds"),
    }

    #: Where the mock gets the time of day from; a test may set its own.
    clock: Callable[[], float] = staticmethod(time.time)

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        metrics = self.config["metrics"]
        if not metrics:
            raise OptionError("metrics", f"sensor {sensor!r}: 'metrics' is empty; name at least one quantity")
        for name in metrics:
            if name not in _SIGNALS:
                raise OptionError(
                    "metrics",
                    f"sensor {sensor!r}: the mock driver has no quantity {name!r}; "
                    f"choose from {', '.join(_SIGNALS)}",
                )
        if len(set(metrics)) != len(metrics):
            raise OptionError("metrics", f"sensor {sensor!r}: 'metrics' lists a quantity twice: {metrics}")
        for key in ("fail_every", "hang_every", "garbage_every"):
            if self.config[key] < 0:
                raise OptionError(key, f"sensor {sensor!r}: {key!r} must be 0 (off) or a positive count")
        for key in ("day_seconds", "hang_seconds"):
            if self.config[key] <= 0:
                raise OptionError(key, f"sensor {sensor!r}: {key!r} must be a positive number of seconds")
        for key in ("event_interval", "min_interval"):
            if self.config[key] < 0:
                raise OptionError(key, f"sensor {sensor!r}: {key!r} must not be negative")
        self._signals = [_SIGNALS[name] for name in metrics]
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._open = False
        self._timer: threading.Thread | None = None
        self._reset()

    def _reset(self) -> None:
        self._rng = random.Random(self.config["seed"])
        self._reads = 0
        self._drift = {s.quantity.name: 0.0 for s in self._signals}
        self._flags = {s.quantity.name: False for s in self._signals if s.kind == "flag"}
        self._count = {s.quantity.name: 0 for s in self._signals if s.kind == "count"}

    def quantities(self) -> list[Quantity]:
        return [s.quantity for s in self._signals]

    def min_interval(self) -> float:
        return self.config["min_interval"]

    def open(self) -> None:
        if self.config["absent"]:
            raise DeviceNotFound(
                f"sensor {self.sensor!r} (mock): configured with absent = true, so it behaves like "
                "an unplugged device; remove 'absent' to get readings"
            )
        self._closed.clear()
        self._reset()
        self._open = True

    def read(self) -> dict[str, Value]:
        if not self._open:
            raise DriverError(f"sensor {self.sensor!r} (mock): read before open() or after close()")
        self._reads += 1
        n = self._reads
        if self._due("hang_every", n):
            self._closed.wait(self.config["hang_seconds"])
            if not self._open:
                raise ReadFailed(f"sensor {self.sensor!r} (mock): closed during an injected hang on read {n}")
        if self._due("fail_every", n):
            raise ReadFailed(
                f"sensor {self.sensor!r} (mock): injected read failure on read {n} "
                f"(fail_every = {self.config['fail_every']})"
            )
        if self._due("garbage_every", n):
            return self._garbage()
        now = self.clock()
        with self._lock:
            return {s.quantity.name: self._value(s, now) for s in self._signals}

    def _due(self, key: str, n: int) -> bool:
        every = self.config[key]
        return every > 0 and n % every == 0

    def _garbage(self) -> dict[str, Value]:
        choices: list[Value] = [math.nan, math.inf, -math.inf, 1e12, -1e12, "\x00\xff"]
        return {s.quantity.name: self._rng.choice(choices) for s in self._signals}

    def _value(self, signal: _Signal, now: float) -> Value:
        name = signal.quantity.name
        if signal.kind == "flag":
            if self._rng.random() < signal.mean:
                self._flags[name] = not self._flags[name]
            return self._flags[name]
        if signal.kind == "count":
            self._count[name] += self._poisson(signal.mean)
            return self._count[name]
        # A mean-reverting random walk: wanders, but never runs off for good.
        self._drift[name] = 0.98 * self._drift[name] + self._rng.gauss(0.0, signal.drift)
        value = signal.mean + self._drift[name] + self._rng.gauss(0.0, signal.noise)
        if signal.kind in ("cycle", "daylight"):
            phase = 2 * math.pi * (self._day_fraction(now) - signal.peak_hour / 24.0)
            wave = math.cos(phase)
            if signal.kind == "daylight":
                # Daylight is a hump of about twelve hours around the peak, dark otherwise.
                value += signal.amplitude * max(0.0, wave)
            else:
                value += signal.amplitude * wave
        return round(min(max(value, signal.low), signal.high), signal.digits)

    def _day_fraction(self, now: float) -> float:
        day = self.config["day_seconds"]
        local = now + time.localtime(now).tm_gmtoff if day == 86400.0 else now
        return (local % day) / day

    def _poisson(self, mean: float) -> int:
        # Knuth's method; fine for the small means used here.
        limit, k, p = math.exp(-mean), 0, 1.0
        while True:
            p *= self._rng.random()
            if p <= limit:
                return k
            k += 1

    def watch(self, notify: Callable[[], None]) -> None:
        interval = self.config["event_interval"]
        if interval <= 0 or not self._flags or self._timer is not None:
            return

        def flip_now_and_then() -> None:
            while not self._closed.wait(interval):
                with self._lock:
                    for name in self._flags:
                        self._flags[name] = not self._flags[name]
                notify()

        self._timer = threading.Thread(target=flip_now_and_then, name=f"mock-events-{self.sensor}", daemon=True)
        self._timer.start()

    def close(self) -> None:
        self._open = False
        self._closed.set()
        timer, self._timer = self._timer, None
        if timer is not None and timer is not threading.current_thread():
            timer.join(timeout=5)
