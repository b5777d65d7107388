"""From a driver's reading to what the agent is sent: filters, derived values, units.

One :class:`SensorMapping` per configured sensor.  For every quantity the
driver reports it knows the agent metric (its name and either a predefined
unit or a custom value type with an annotation) and turns raw values into
pushed values in this order:

1. leave out dropped quantities;
2. check the value is of the right kind (a finite number, a whole number,
   true/false or text) — anything else is refused with ValueError;
3. compute the sensor's derived values (dew point, ...) from the inputs
   after their correcting filters (bounds, scale/offset, calibration);
4. run each value through its metric's chain of filters
   (:mod:`pibridge.transforms`): the older keys ``scale``, ``offset``,
   ``round``, ``threshold``/``heartbeat`` and the ``filters`` list, in the
   canonical unit, as the user reads it.  A filter may hold the value back
   (a window filling, a change below the threshold) or drop it (outside
   ``valid``); both are counted by cause (:meth:`counts`);
5. convert to the agent's unit (hPa -> Pa is x100).

It does no I/O and keeps only the filters' own state, so it is cheap and
easy to test.  Not thread-safe: one thread at a time uses it (the read
pool's worker reading the sensor); :meth:`counts` may be read from any thread.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from pibridge.bridge.config import MetricConfig, SensorConfig
from pibridge.readings import Quantity, Reading, Value
from pibridge.transforms import Chain, FilterOverflow, Trace
from pibridge.transforms.chain import Tally
from pibridge.transforms.base import BOOL, INTEGER, TEXT, kind_of
from pibridge.transforms.derived import OutsideRange
from pibridge.units import MetricDefinition

log = logging.getLogger("pibridge.mapping")

#: Longest text value pushed for a text quantity.
TEXT_MAX = 1024


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
class Outcome:
    """What :meth:`SensorMapping.trace` found for one reading, quantity by quantity, for ``pibridge check``.

    ``traces`` maps each quantity (derived ones included) to its way through
    its chain of filters; ``refused`` maps a derived quantity that could not
    be computed to why; ``reading`` is what would be pushed (None: nothing).
    """

    traces: dict[str, Trace]
    refused: dict[str, str]
    reading: Reading | None


class SensorMapping:
    """Maps the readings of one sensor onto its agent metrics.

    *quantities* are what the sensor's driver reports (``driver.quantities()``,
    also in ``sensor.quantities``); the sensor's derived values are added to
    them.  A quantity without an entry in ``sensor.metrics`` gets the
    defaults (metric name = quantity name, no filters).
    """

    def __init__(self, sensor: SensorConfig, quantities: list[Quantity]):
        self.sensor = sensor
        self.derived = {d.name: d for d in sensor.derived}
        self.quantities: dict[str, Quantity] = {q.name: q for q in quantities}
        for d in sensor.derived:
            self.quantities.setdefault(d.name, d.quantity)
        self.metrics: dict[str, MetricConfig] = {
            q: sensor.metrics.get(q) or MetricConfig(q, q) for q in self.quantities
        }
        self.chains: dict[str, Chain] = {
            q: Chain(m.chain(), f"sensor {sensor.name!r}, metric {m.name!r}") for q, m in self.metrics.items()
        }
        #: Derived values not computed because their inputs were outside the formula's range.
        self.refused_derived = Tally()
        self._inputs = {name for d in sensor.derived for name in d.formula.inputs}

    def definitions(self) -> dict[str, MetricDefinition]:
        """quantity -> the agent metric to create for it (dropped quantities left out)."""
        return {
            q: self.quantities[q].agent_unit.definition(m.name) for q, m in self.metrics.items() if not m.drop
        }

    def metric_name(self, quantity: str) -> str:
        return self.metrics[quantity].name

    def check(self, quantity: str, value: Value) -> Value:
        """*value* if it is of the kind *quantity* needs (a bool from 0/1 too); else :class:`BadValue`."""
        q = self._quantity(quantity)
        kind = kind_of(q)
        if kind == BOOL:
            if isinstance(value, bool):
                return value
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise BadValue(self.sensor.name, quantity, value, "expected true/false")
        if kind == TEXT:
            if not isinstance(value, str):
                raise BadValue(self.sensor.name, quantity, value, "expected text")
            if len(value) > TEXT_MAX:
                raise BadValue(self.sensor.name, quantity, value, f"text longer than {TEXT_MAX} characters")
            return value
        if kind == INTEGER and type(value) is int:
            # Counters stay exact: a float would lose whole numbers beyond 2**53.
            return value
        return self._finite(quantity, value)

    def to_agent(self, quantity: str, value: Value) -> Value:
        """A filtered value converted to the unit its agent metric is defined with."""
        q = self._quantity(quantity)
        if kind_of(q) == INTEGER and not isinstance(value, int):
            value = int(round(value))
        agent = q.agent_unit
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

        Values are keyed by quantity name.  *now* (seconds) times the filters
        (heartbeat, windows, throttle); it defaults to the reading's own
        timestamp.  A value of the wrong kind raises :class:`BadValue` (a
        ValueError) naming the sensor and quantity, before any filter's state
        changes; so does a filter whose arithmetic overflows (a polynomial of
        an absurd value), once the quantities before it went through theirs.
        """
        return self.trace(reading, now).reading

    def trace(self, reading: Reading, now: float | None = None) -> Outcome:
        """Like :meth:`apply`, with every value's way through its filters (for ``pibridge check``)."""
        at = reading.timestamp_ms / 1000.0 if now is None else now
        checked: dict[str, Value] = {}
        for quantity, value in reading.values.items():
            self._quantity(quantity)
            if not self.metrics[quantity].drop:
                checked[quantity] = self.check(quantity, value)
            elif quantity in self._inputs:
                # A dropped quantity's garbage must not cost the others their reading; without
                # it the derived values it feeds are not computed.
                try:
                    checked[quantity] = self.check(quantity, value)
                except BadValue:
                    pass
        derived, refused = self._derive(checked)
        checked.update(derived)
        traces: dict[str, Trace] = {}
        out: dict[str, Value] = {}
        for quantity, value in checked.items():
            if self.metrics[quantity].drop:
                continue
            trace = self._overflow_guard(quantity, value, lambda: self.chains[quantity].run(value, at))
            traces[quantity] = trace
            if trace.value is not None:
                out[quantity] = self.to_agent(quantity, trace.value)
        pushed = Reading(reading.sensor, reading.timestamp_ms, out) if out else None
        return Outcome(traces, refused, pushed)

    def counts(self) -> dict[str, dict[str, int]]:
        """Readings that did not go out, per metric name: ``{"held": {cause: n}, "dropped": {cause: n}}``.

        Only metrics with something to report are listed.
        """
        result = {}
        for quantity, chain in self.chains.items():
            held, dropped = chain.held.copy(), chain.dropped.copy()
            if self.refused_derived[quantity]:
                dropped["outside_formula_range"] = self.refused_derived[quantity]
            if held or dropped:
                result[self.metrics[quantity].name] = {"held": held, "dropped": dropped}
        return result

    def _derive(self, checked: dict[str, Value]) -> tuple[dict[str, float], dict[str, str]]:
        if not self.derived:
            return {}, {}
        corrected = {}
        for quantity, value in checked.items():
            if quantity in self._inputs and not isinstance(value, (bool, str)):
                corrected[quantity] = self._overflow_guard(quantity, value, lambda: self.chains[quantity].correct(value))
        values: dict[str, float] = {}
        refused: dict[str, str] = {}
        for name, d in self.derived.items():
            if self.metrics[name].drop:
                continue
            lost = [i for i in d.formula.inputs if i in checked and corrected.get(i) is None]
            if lost:
                # Already counted where it was dropped, under its own metric.
                refused[name] = f"its input {lost[0]!r} was dropped by that metric's filters"
                continue
            try:
                result = d.compute(corrected)
            except OutsideRange as e:
                refused[name] = str(e)
                if self.refused_derived.add(name) == 1:
                    log.warning("sensor %r: %s not computed: %s (counted in `pibridge status`; logged only once)",
                                self.sensor.name, name, e)
                continue
            if result is not None:
                values[name] = result
        return values, refused

    def _overflow_guard(self, quantity: str, value: Value, run):
        try:
            return run()
        except FilterOverflow as e:
            raise BadValue(self.sensor.name, quantity, value, str(e)) from None

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

