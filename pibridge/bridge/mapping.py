"""From a driver's reading to what the agent is sent: calibration, units, thresholds.

One :class:`SensorMapping` per configured sensor.  For every quantity the
driver reports it knows the agent metric (its name and either a predefined
unit or a custom value type with an annotation) and turns raw values into
pushed values in this order:

1. leave out dropped quantities;
2. check the value is of the right kind (a finite number, a whole number,
   true/false or text) — anything else is refused with ValueError;
3. calibrate in the canonical unit: ``value * scale + offset``;
4. round to ``round`` digits (still in the canonical unit, as the user reads it);
5. with a ``threshold``, leave out values that moved less than the threshold
   since the last push, unless ``heartbeat`` seconds have passed;
6. convert to the agent's unit (hPa -> Pa is x100).

It does no I/O and keeps only the last pushed value of each thresholded
quantity, so it is cheap and easy to test.  Not thread-safe: one thread at
a time uses it (the sensor's reader thread).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pibridge.bridge.config import MetricConfig, SensorConfig
from pibridge.readings import Quantity, Reading, Value
from pibridge.units import MetricDefinition, ValueType

#: Longest text value pushed for a text quantity.
TEXT_MAX = 1024

# Threshold comparisons tolerate float noise: 21.2 - 21.1 is 0.0999999...
_TOLERANCE = 1e-9


class BadValue(ValueError):
    """A driver handed over a value of the wrong kind (NaN, inf, text where a number belongs, ...)."""

    def __init__(self, sensor: str, quantity: str, value: object, problem: str):
        self.sensor = sensor
        self.quantity = quantity
        self.value = value
        self.problem = problem
        shown = repr(value)
        if len(shown) > 40:
            shown = shown[:37] + "..."
        super().__init__(f"sensor {sensor!r}: quantity {quantity!r}: {problem}, got {shown}; reading not sent")


@dataclass(frozen=True)
class _Last:
    value: Value
    at: float


class SensorMapping:
    """Maps the readings of one sensor onto its agent metrics.

    *quantities* are what the sensor's driver reports (``driver.quantities()``,
    also in ``sensor.quantities``); a quantity without an entry in
    ``sensor.metrics`` gets the defaults (metric name = quantity name).
    """

    def __init__(self, sensor: SensorConfig, quantities: list[Quantity]):
        self.sensor = sensor
        self.quantities: dict[str, Quantity] = {q.name: q for q in quantities}
        self.metrics: dict[str, MetricConfig] = {
            q.name: sensor.metrics.get(q.name) or MetricConfig(q.name, q.name) for q in quantities
        }
        self._last: dict[str, _Last] = {}

    def definitions(self) -> dict[str, MetricDefinition]:
        """quantity -> the agent metric to create for it (dropped quantities left out)."""
        return {
            q: self.quantities[q].agent_unit.definition(m.name) for q, m in self.metrics.items() if not m.drop
        }

    def metric_name(self, quantity: str) -> str:
        return self.metrics[quantity].name

    def calibrate(self, quantity: str, value: Value) -> Value:
        """*value* checked, calibrated and rounded, still in the quantity's canonical unit.

        Raises :class:`BadValue` (a ValueError) for a value of the wrong kind.
        """
        q = self._quantity(quantity)
        metric = self.metrics[quantity]
        kind = _kind(q)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise BadValue(self.sensor.name, quantity, value, "expected true/false")
        if kind == "text":
            if not isinstance(value, str):
                raise BadValue(self.sensor.name, quantity, value, "expected text")
            if len(value) > TEXT_MAX:
                raise BadValue(self.sensor.name, quantity, value, f"text longer than {TEXT_MAX} characters")
            return value
        if kind == "integer" and type(value) is int and metric.scale == 1.0 and metric.offset == 0.0:
            # Counters stay exact: a float would lose whole numbers beyond 2**53.
            return value if metric.round is None else round(value, metric.round)
        number = self._finite(quantity, value)
        if metric.scale != 1.0 or metric.offset != 0.0:
            number = number * metric.scale + metric.offset
            if not math.isfinite(number):
                raise BadValue(self.sensor.name, quantity, value, "calibration (scale/offset) overflows")
        if metric.round is not None:
            number = round(number, metric.round)
        if kind == "integer":
            return int(round(number))
        return number

    def to_agent(self, quantity: str, value: Value) -> Value:
        """A calibrated value converted to the unit its agent metric is defined with."""
        agent = self._quantity(quantity).agent_unit
        if isinstance(value, (bool, str)) or agent.factor == 1.0:
            return value
        converted = value * agent.factor
        if not math.isfinite(converted):
            raise BadValue(self.sensor.name, quantity, value, f"too large to convert to {agent.unit.value}")
        # x0.001 or x0.01 in binary floats leaves noise (3300 mV x 0.001 = 3.3000000000000003 V);
        # 15 significant digits is all a double holds reliably anyway.
        return float(f"{converted:.15g}")

    def apply(self, reading: Reading, now: float | None = None) -> Reading | None:
        """The reading as the agent should get it, or None when nothing is due to be pushed.

        Values are keyed by quantity name.  *now* (seconds) times the
        heartbeat; it defaults to the reading's own timestamp.  A value of the
        wrong kind raises :class:`BadValue` (a ValueError) naming the sensor
        and quantity, before any threshold state changes.
        """
        at = reading.timestamp_ms / 1000.0 if now is None else now
        calibrated: dict[str, Value] = {}
        for quantity, value in reading.values.items():
            self._quantity(quantity)
            if not self.metrics[quantity].drop:  # a dropped quantity's garbage must not cost the others
                calibrated[quantity] = self.calibrate(quantity, value)
        due = {q: v for q, v in calibrated.items() if self._due(q, v, at)}
        out = {q: self.to_agent(q, v) for q, v in due.items()}
        for quantity, value in due.items():
            if self.metrics[quantity].threshold is not None:
                self._last[quantity] = _Last(value, at)
        if not out:
            return None
        return Reading(reading.sensor, reading.timestamp_ms, out)

    def _due(self, quantity: str, value: Value, at: float) -> bool:
        metric = self.metrics[quantity]
        if metric.threshold is None:
            return True
        last = self._last.get(quantity)
        if last is None:
            return True
        if metric.heartbeat is not None and at - last.at >= metric.heartbeat:
            return True
        return abs(value - last.value) >= metric.threshold * (1 - _TOLERANCE)

    def _quantity(self, quantity: str) -> Quantity:
        try:
            return self.quantities[quantity]
        except KeyError:
            known = ", ".join(self.quantities)
            raise BadValue(
                self.sensor.name, quantity, None, f"the driver does not declare this quantity (it declares {known})"
            ) from None

    def _finite(self, quantity: str, value: Value) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadValue(self.sensor.name, quantity, value, "expected a number")
        try:
            number = float(value)
        except OverflowError:
            raise BadValue(self.sensor.name, quantity, value, "number too large") from None
        if not math.isfinite(number):
            raise BadValue(self.sensor.name, quantity, value, "expected a finite number")
        return number


def _kind(quantity: Quantity) -> str:
    """"number", "integer", "bool" or "text": what values of *quantity* must be."""
    value_type = quantity.agent_unit.value_type
    if value_type is ValueType.BOOL:
        return "bool"
    if value_type is ValueType.STRING:
        return "text"
    if value_type is ValueType.INTEGER:
        return "integer"
    return "number"
