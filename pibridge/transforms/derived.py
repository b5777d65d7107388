"""Derived values: extra metrics a sensor computes from its own quantities.

Declared per sensor, next to the driver's options::

    [[sensors]]
    name = "Outside air"
    driver = "bme280"
    interval = 60
    derived = ["dew_point", "sea_level_pressure"]
    altitude = 250          # metres above sea level, for sea_level_pressure

Each derived value is a named formula (:data:`FORMULAS`) with the
quantities it needs from the driver (``temperature`` in °C, ``humidity`` in
%RH, ``pressure`` in hPa or Pa), the sensor keys it needs (``altitude``,
``reference_pressure``) and the canonical unit of its result.  The config
loader checks that the sensor's driver provides the inputs, as it checks a
driver's quantities; the result becomes one more quantity of the sensor,
with its own ``[sensors.metric.<name>]`` table and filters.

The formulas, with their sources (docs/configuration.md has the same list):

* saturation vapour pressure, Magnus form with the coefficients of Alduchov
  & Eskridge (1996), "Improved Magnus form approximation of saturation vapor
  pressure", J. Appl. Meteor. 35, 601-609: over water (AERK)
  ``e_w = 6.1094 exp(17.625 t / (243.04 + t))`` hPa, within 0.4 % of the
  Wexler/Sonntag values for -40..50 °C; over ice (AEKI)
  ``e_i = 6.1121 exp(22.587 t / (273.86 + t))`` hPa, for -80..0 °C;
* ``dew_point``: the inverse of e_w at ``e = RH/100 * e_w(t)``;
  ``frost_point``: the inverse of e_i at the same e (below 0 °C; above it
  equals the dew point);
* ``absolute_humidity``: ``e / (R_v T)``, R_v = 461.5 J/(kg K), in kg/m³;
* ``heat_index``: the US National Weather Service algorithm (Rothfusz 1990,
  NWS SR 90-23, with the NWS adjustments for low and high humidity and the
  simple formula below 80 °F);
* ``humidex``: Masterton & Richardson (1979), Environment Canada:
  ``t + 0.5555 (6.11 exp(5417.7530 (1/273.16 - 1/T_d)) - 10)``;
* ``sea_level_pressure`` and ``altitude``: the barometric formula of the
  ICAO / US Standard Atmosphere 1976 troposphere (T0 = 288.15 K, lapse rate
  0.0065 K/m): ``p0 = p (1 - h/44330.77)^-5.25588`` (the BMP180/BMP280
  datasheets' ``44330`` and ``5.255`` rounded);
* ``vpd``: vapour-pressure deficit ``e_w(t) (1 - RH/100)``, FAO-56 (Allen et
  al. 1998) chapter 3, in kPa.

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

#: Where the formulas hold (°C): Alduchov & Eskridge 1996, section 4 (AERK, AEKI).
WATER_RANGE = (-40.0, 50.0)
ICE_RANGE = (-80.0, 0.0)
#: Standard sea-level pressure (hPa), ICAO / US Standard Atmosphere 1976.
STANDARD_PRESSURE = 1013.25
#: Specific gas constant of water vapour, J/(kg K).
R_VAPOUR = 461.5
_T0 = 273.15
# Barometric formula, ICAO standard troposphere: T0 / L and g M / (R L).
_SCALE_HEIGHT = 288.15 / 0.0065
_EXPONENT = 9.80665 * 0.0289644 / (8.3144598 * 0.0065)


class OutsideRange(ValueError):
    """The inputs are outside the range where a formula holds; the message says which and why."""


def saturation_vapour_pressure(t: float) -> float:
    """Over water, hPa, for -40..50 °C (Alduchov & Eskridge 1996, AERK)."""
    _within(t, WATER_RANGE, "temperature")
    return 6.1094 * math.exp(17.625 * t / (243.04 + t))


def saturation_vapour_pressure_ice(t: float) -> float:
    """Over ice, hPa, for -80..0 °C (Alduchov & Eskridge 1996, AEKI)."""
    _within(t, ICE_RANGE, "temperature")
    return 6.1121 * math.exp(22.587 * t / (273.86 + t))


def vapour_pressure(t: float, rh: float) -> float:
    """The water vapour's partial pressure, hPa, from temperature (°C) and relative humidity (%)."""
    return _humidity(rh) / 100.0 * saturation_vapour_pressure(t)


def dew_point(t: float, rh: float) -> float:
    """°C: the temperature at which the air's vapour would saturate over water."""
    e = vapour_pressure(t, rh)
    if e <= 0:
        raise OutsideRange("a relative humidity of 0 % has no dew point")
    g = math.log(e / 6.1094)
    dew = 243.04 * g / (17.625 - g)
    _within(dew, WATER_RANGE, "dew point")
    return dew


def frost_point(t: float, rh: float) -> float:
    """°C: the temperature at which the air's vapour would saturate over ice (the dew point above 0 °C)."""
    e = vapour_pressure(t, rh)
    if e <= 0:
        raise OutsideRange("a relative humidity of 0 % has no frost point")
    g = math.log(e / 6.1121)
    frost = 273.86 * g / (22.587 - g)
    if frost >= 0.0:
        return dew_point(t, rh)
    _within(frost, ICE_RANGE, "frost point")
    return frost


def absolute_humidity(t: float, rh: float) -> float:
    """kg/m³: the mass of water vapour in a cubic metre of air (ideal gas)."""
    return vapour_pressure(t, rh) * 100.0 / (R_VAPOUR * (t + _T0))


def heat_index(t: float, rh: float) -> float:
    """°C: how hot it feels, by the US National Weather Service's algorithm (it works in °F)."""
    rh = _humidity(rh)
    _within(t, (-40.0, 60.0), "temperature")
    f = t * 9.0 / 5.0 + 32.0
    simple = 0.5 * (f + 61.0 + (f - 68.0) * 1.2 + rh * 0.094)
    if (simple + f) / 2.0 < 80.0:
        return (simple - 32.0) * 5.0 / 9.0
    hi = (
        -42.379 + 2.04901523 * f + 10.14333127 * rh - 0.22475541 * f * rh - 6.83783e-3 * f * f
        - 5.481717e-2 * rh * rh + 1.22874e-3 * f * f * rh + 8.5282e-4 * f * rh * rh - 1.99e-6 * f * f * rh * rh
    )
    if rh < 13.0 and 80.0 <= f <= 112.0:
        hi -= (13.0 - rh) / 4.0 * math.sqrt((17.0 - abs(f - 95.0)) / 17.0)
    elif rh > 85.0 and 80.0 <= f <= 87.0:
        hi += (rh - 85.0) / 10.0 * (87.0 - f) / 5.0
    return (hi - 32.0) * 5.0 / 9.0


def humidex(t: float, rh: float) -> float:
    """How hot it feels, Environment Canada's index (a number read like °C)."""
    return humidex_from_dew_point(t, dew_point(t, rh))


def humidex_from_dew_point(t: float, td: float) -> float:
    """The humidex from the air temperature and the dew point (both °C), Masterton & Richardson 1979."""
    e = 6.11 * math.exp(5417.7530 * (1.0 / 273.16 - 1.0 / (td + _T0)))
    return t + 0.5555 * (e - 10.0)


def vpd(t: float, rh: float) -> float:
    """kPa: how much more vapour the air could take before it saturates (FAO-56 e_s - e_a)."""
    return saturation_vapour_pressure(t) * (1.0 - _humidity(rh) / 100.0) / 10.0


def sea_level_pressure(p: float, altitude: float) -> float:
    """hPa at sea level, from the pressure *p* (hPa) measured *altitude* metres up."""
    if p <= 0:
        raise OutsideRange(f"a pressure of {p:g} hPa is not a real air pressure")
    return p * (1.0 - altitude / _SCALE_HEIGHT) ** -_EXPONENT


def altitude(p: float, reference: float = STANDARD_PRESSURE) -> float:
    """Metres above the level where the pressure is *reference* (hPa), from the pressure *p* (hPa)."""
    if p <= 0:
        raise OutsideRange(f"a pressure of {p:g} hPa is not a real air pressure")
    return _SCALE_HEIGHT * (1.0 - (p / reference) ** (1.0 / _EXPONENT))


def _within(value: float, bounds: tuple[float, float], what: str) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise OutsideRange(f"the {what} {value:g} °C is outside the formula's range {low:g} to {high:g} °C")


def _humidity(rh: float) -> float:
    # A capacitive sensor reads a little over 100 % in fog; beyond that it is a fault.
    if not 0.0 <= rh <= 102.0:
        raise OutsideRange(f"a relative humidity of {rh:g} % is impossible")
    return min(rh, 100.0)


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
