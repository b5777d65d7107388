"""Counting pulses on a GPIO pin: rain gauges, flow meters, anemometers, energy meter LEDs."""

from __future__ import annotations

import threading
import time
from typing import Any

from pibridge.readings import UNITS, Quantity

from .. import Driver, DriverError, Option, OptionError, register
from ._pins import PULL_HELP, OnePin, check_bounce, check_pin, open_input, pin_option, pull_up_argument

#: rate_per -> seconds
PERIODS = {"s": 1.0, "min": 60.0, "h": 3600.0}
#: amount unit + period -> canonical rate unit, where the name differs from "unit/period"
RATE_UNITS = {("count", "s"): "Hz", ("count", "min"): "1/min"}


@register
class PulseCounter(OnePin, Driver):
    """Counts pulses and reports the total and the rate since the previous read.

    Wire the sensor's reed switch or open-collector output between the GPIO
    pin and GND (internal pull-up on by default); a sensor with a 5 V output
    needs a voltage divider down to 3.3 V.

    ``factor`` is what one pulse is worth in ``unit``: a rain gauge bucket
    tip is 0.2794 mm (``unit = "mm"``, ``rate_per = "h"`` gives mm/h), a
    YF-S201 flow meter gives about 450 pulses per litre (``factor =
    0.00222``, ``unit = "L"``, ``rate_per = "min"`` gives L/min), a cup
    anemometer's 1 pulse per second is about 0.667 m/s of wind (``factor =
    0.667``, ``unit = "m"``, ``rate_per = "s"`` gives m/s).

    Reports ``count`` (pulses counted), ``total`` (count x factor, in
    ``unit``; left out when ``unit = "count"``) and ``rate`` (in ``unit``
    per ``rate_per``, averaged since the previous read).  Pulses do not
    trigger pushes: they can come hundreds of times a second.

    The count survives restarts: the bridge saves it (:meth:`state`) in
    its storage directory after each push and at stop, and gives it back
    (:meth:`restore`) at start.  A power cut or ``kill -9`` loses at most
    the pulses counted since the last push; the count never goes back
    below what the agent was sent.
    """

    name = "pulse_counter"
    summary = "pulse counter (rain gauge, flow meter, anemometer): count, total and rate"
    options = {
        "pin": pin_option(),
        "pull_up": Option((bool, str), True, PULL_HELP),
        "bounce_time": Option((float, type(None)), None, "ignore further edges for this many seconds (reed switches: 0.005)"),
        "factor": Option(float, 1.0, "what one pulse is worth, in unit"),
        "unit": Option(str, "count", "unit of the total: count, mm, L, m, ..."),
        "rate_per": Option(str, "s", "time base of the rate: s, min or h"),
    }
    #: With the default unit; with e.g. unit = "mm" it also reports total [mm] and rate is in mm/h.
    provides = (
        Quantity("count", "count", "pulses counted (kept across restarts)"),
        Quantity("rate", "Hz", "pulses per second since the previous read"),
    )

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        check_pin(sensor, "pin", self.config["pin"])
        check_bounce(sensor, self.config["bounce_time"])
        self._pull_up = pull_up_argument(sensor, self.config["pull_up"])
        unit, per = self.config["unit"], self.config["rate_per"]
        if per not in PERIODS:
            raise OptionError("rate_per", f"sensor {sensor!r}: rate_per must be s, min or h, not {per!r}")
        if unit not in UNITS:
            raise OptionError("unit", f"sensor {sensor!r}: unit {unit!r} is not one of {', '.join(UNITS)}")
        self.rate_unit = RATE_UNITS.get((unit, per), f"{unit}/{per}")
        if self.rate_unit not in UNITS:
            raise OptionError(
                "rate_per",
                f"sensor {sensor!r}: a rate in {self.rate_unit} is not a known unit; "
                "e.g. mm with h, L with min, m with s, count with s or min",
            )
        if self.config["factor"] <= 0:
            raise OptionError("factor", f"sensor {sensor!r}: factor must be positive")
        self._device: Any = None
        self._lock = threading.Lock()
        self._count = 0
        self._last_count = 0
        self._last_time = 0.0

    def quantities(self) -> list[Quantity]:
        unit = self.config["unit"]
        out = [Quantity("count", "count", "pulses counted (kept across restarts)")]
        if unit != "count":
            out.append(Quantity("total", unit, f"count x {self.config['factor']}"))
        out.append(Quantity("rate", self.rate_unit, "since the previous read"))
        return out

    def open(self) -> None:
        self.close()
        self._device = open_input(self.where(), self.pin, self._pull_up, self.config["bounce_time"])
        with self._lock:
            # Reopening after a lost device keeps the count: pulses are only missed, never undone.
            self._last_count = self._count
            self._last_time = time.monotonic()
        self._device.when_activated = self._pulse

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {"count": self._count}

    def restore(self, state: dict[str, Any]) -> None:
        count = state.get("count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"{self.where()}: a saved count must be a whole number of 0 or more, not {count!r}")
        with self._lock:
            self._count = self._last_count = count

    def _pulse(self) -> None:
        # Runs in gpiozero's event thread, once per pulse: keep it tiny.
        with self._lock:
            self._count += 1

    def read(self) -> dict[str, float | int]:
        if self._device is None:
            raise DriverError(f"{self.where()}: read before open() or after close()")
        now = time.monotonic()
        with self._lock:
            count, new = self._count, self._count - self._last_count
            elapsed = now - self._last_time
            self._last_count, self._last_time = count, now
        factor = self.config["factor"]
        per = PERIODS[self.config["rate_per"]]
        rate = new * factor * per / elapsed if elapsed > 0 else 0.0
        values: dict[str, float | int] = {"count": count}
        if self.config["unit"] != "count":
            values["total"] = round(count * factor, 6)
        values["rate"] = round(rate, 6)
        return values

    def close(self) -> None:
        device, self._device = self._device, None
        if device is not None:
            device.close()
