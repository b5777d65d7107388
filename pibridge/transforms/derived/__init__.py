"""Derived values: extra metrics a sensor computes from its own quantities.

Declared per sensor, next to the driver's options::

    [[sensors]]
    name = "Outside air"
    driver = "bme280"
    interval = 60
    derived = ["dew_point", "sea_level_pressure"]
    altitude = 250          # metres above sea level, for sea_level_pressure

Each derived value is a named formula (:data:`FORMULAS`, the physics in
:mod:`~pibridge.transforms.derived.formulas`) with the quantities it needs
from the driver (``temperature`` in °C, ``humidity`` in %RH, ``pressure`` in
hPa or Pa), the sensor keys it needs (``altitude``, ``reference_pressure``)
and the canonical unit of its result.  :func:`read_derived` checks that the
sensor's driver provides the inputs, as the config loader checks a driver's
quantities; the result becomes one more quantity of the sensor, with its own
``[sensors.metric.<name>]`` table and filters.

A value outside a formula's range is not computed: the derived metric's
reading is dropped and counted (cause ``outside_formula_range``), never
made up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from pibridge.readings import Quantity, Value
from pibridge.settings import BAD, MISSING, Table, did_you_mean, in_range, number, show, type_name
from pibridge.transforms.derived.formulas import (
    STANDARD_PRESSURE,
    OutsideRange,
    absolute_humidity,
    altitude,
    dew_point,
    frost_point,
    heat_index,
    humidex,
    sea_level_pressure,
    vpd,
)

__all__ = ["FORMULAS", "SENSOR_KEYS", "Derived", "Formula", "OutsideRange", "read_derived"]

# --- what a sensor may declare -------------------------------------------------------------

#: The inputs a formula takes and the units a driver may report them in.
INPUT_UNITS = {"temperature": ("°C",), "humidity": ("%RH", "%"), "pressure": ("hPa", "Pa")}


@dataclass(frozen=True)
class Formula:
    """One derived value: its name, result unit, driver quantities and sensor keys it needs.

    ``compute`` takes the inputs in the order of ``inputs``, then the values
    of ``keys`` (fields of :class:`Derived` of the same names).
    """

    name: str
    unit: str
    inputs: tuple[str, ...]
    compute: Callable[..., float]
    description: str
    keys: tuple[str, ...] = ()


_TH = ("temperature", "humidity")

#: Every derived value, by the name used in ``derived = [...]``.
FORMULAS: dict[str, Formula] = {
    f.name: f
    for f in (
        Formula("dew_point", "°C", _TH, dew_point, "dew point (Magnus, Alduchov & Eskridge 1996)"),
        Formula("frost_point", "°C", _TH, frost_point, "frost point over ice (dew point above 0 °C)"),
        Formula("absolute_humidity", "kg/m³", _TH, absolute_humidity, "water vapour per cubic metre of air"),
        Formula("heat_index", "°C", _TH, heat_index, "NWS heat index (Rothfusz with adjustments)"),
        Formula("humidex", "°C", _TH, humidex, "Environment Canada humidex"),
        Formula("vpd", "kPa", _TH, vpd, "vapour-pressure deficit (FAO-56)"),
        Formula("sea_level_pressure", "hPa", ("pressure",), sea_level_pressure,
                "pressure reduced to sea level (standard atmosphere)", ("altitude",)),
        Formula("altitude", "m", ("pressure",), altitude,
                "altitude from the pressure and a sea-level reference pressure", ("reference_pressure",)),
    )
}

#: Sensor keys this module reads.
SENSOR_KEYS = ("derived", "altitude", "reference_pressure")


@dataclass(frozen=True)
class Derived:
    """One derived value of one sensor, ready to compute from a reading's values."""

    formula: Formula
    #: Canonical unit of each input as the driver reports it (pressure may come in Pa).
    input_units: tuple[str, ...]
    altitude: float | None = None
    reference_pressure: float = STANDARD_PRESSURE

    @property
    def name(self) -> str:
        return self.formula.name

    @property
    def quantity(self) -> Quantity:
        return Quantity(self.formula.name, self.formula.unit, self.formula.description)

    def compute(self, values: dict[str, Value]) -> float | None:
        """The derived value from the inputs in *values*; None when an input is missing.

        Raises :class:`OutsideRange` when the inputs are outside the formula's range.
        """
        args = []
        for name, unit in zip(self.formula.inputs, self.input_units):
            value = values.get(name)
            if value is None or isinstance(value, (bool, str)):
                return None
            if unit == "Pa":
                value = value / 100.0
            args.append(float(value))
        args.extend(getattr(self, key) for key in self.formula.keys)
        try:
            result = self.formula.compute(*args)
        except (OverflowError, ZeroDivisionError, ValueError) as e:
            if isinstance(e, OutsideRange):
                raise
            raise OutsideRange(f"the inputs {', '.join(f'{a:g}' for a in args)} are outside the formula's range") from None
        if not math.isfinite(result):
            raise OutsideRange("the result is not a finite number")
        return result


def read_derived(t: Table, quantities: list[Quantity]) -> tuple[Derived, ...]:
    """The ``derived``, ``altitude`` and ``reference_pressure`` keys of a sensor, checked against its quantities.

    Problems go to *t*'s error list; the derived values that are usable are returned.
    """
    names = t.raw("derived")
    alt = t.get("altitude", number, None, fix="altitude = 250 (metres above sea level)",
                check=in_range(-500.0, 9000.0))
    reference = t.get("reference_pressure", number, STANDARD_PRESSURE,
                      fix="reference_pressure = 1013.25 (hPa at sea level, from the nearest weather station)",
                      check=in_range(800.0, 1100.0))
    if names is MISSING:
        for key in ("altitude", "reference_pressure"):
            if key in t.data:
                t.error(key, "only applies to derived values",
                        f'add derived = ["{"sea_level_pressure" if key == "altitude" else "altitude"}"] or remove {key}')
        return ()
    example = 'derived = ["dew_point", "sea_level_pressure"]'
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        t.error("derived", f"must be a list of names, not {type_name(names)} ({show(names)})", f"write e.g. {example}")
        return ()
    by_name = {q.name: q for q in quantities}
    result: list[Derived] = []
    seen: set[str] = set()
    for name in names:
        formula = FORMULAS.get(name)
        if formula is None:
            t.error("derived", f"there is no derived value called {name!r}",
                    f"{did_you_mean(name, list(FORMULAS))}use some of: {', '.join(FORMULAS)}")
            continue
        if name in seen:
            t.error("derived", f"{name!r} is listed twice", "list each derived value once")
            continue
        seen.add(name)
        if name in by_name:
            t.error("derived", f"the driver already reports a quantity called {name!r}",
                    f"remove {name!r} from derived; the driver's own value is used")
            continue
        units = _input_units(t, formula, by_name)
        if units is None:
            continue
        if "altitude" in formula.keys and alt is None:
            t.error("altitude", f"{name!r} needs the altitude of the sensor", "add altitude = 250 (metres above sea level)")
            continue
        if alt is BAD or reference is BAD:
            continue
        result.append(Derived(formula, units, alt, reference))
    if alt is not None and alt is not BAD and "sea_level_pressure" not in seen:
        t.error("altitude", "only applies to the derived value sea_level_pressure",
                'add "sea_level_pressure" to derived, or remove altitude')
    if "reference_pressure" in t.data and "altitude" not in seen:
        t.error("reference_pressure", "only applies to the derived value altitude",
                'add "altitude" to derived, or remove reference_pressure')
    return tuple(result)


def _input_units(t: Table, formula: Formula, by_name: dict[str, Quantity]) -> tuple[str, ...] | None:
    units = []
    for needed in formula.inputs:
        quantity = by_name.get(needed)
        accepted = INPUT_UNITS[needed]
        if quantity is None:
            t.error("derived", f"{formula.name!r} needs the quantity {needed!r}, which this sensor's driver "
                    f"does not report (it reports: {', '.join(by_name)})",
                    f"remove {formula.name!r}, or use a driver that measures {needed}")
            return None
        if quantity.unit not in accepted:
            t.error("derived", f"{formula.name!r} needs {needed} in {' or '.join(accepted)}, "
                    f"but the driver reports it in {quantity.unit}", f"remove {formula.name!r}")
            return None
        units.append(quantity.unit)
    return tuple(units)
