"""The formulas behind the derived values, each with its source.  Pure functions, SI-ish units.

Temperatures in °C, relative humidity in %, pressures in hPa, altitudes in
metres.  A value outside a formula's range raises :class:`OutsideRange`
instead of giving a number nobody can trust.

* saturation vapour pressure, Magnus form with the coefficients of Alduchov
  & Eskridge (1996), "Improved Magnus form approximation of saturation vapor
  pressure", J. Appl. Meteor. 35, 601-609: over water (AERK)
  ``e_w = 6.1094 exp(17.625 t / (243.04 + t))`` hPa, within 0.4 % of the
  reference values for -40..50 °C; over ice (AEKI)
  ``e_i = 6.1121 exp(22.587 t / (273.86 + t))`` hPa, for -80..0 °C;
* dew point: the inverse of e_w at ``e = RH/100 * e_w(t)``; frost point:
  the inverse of e_i at the same e (below 0 °C; above it equals the dew point);
* absolute humidity: ``e / (R_v T)``, R_v = 461.5 J/(kg K), in kg/m³;
* heat index: the US National Weather Service algorithm (Rothfusz 1990,
  NWS SR 90-23, with the NWS adjustments for low and high humidity and the
  simple formula below 80 °F);
* humidex: Masterton & Richardson (1979), Environment Canada:
  ``t + 0.5555 (6.11 exp(5417.7530 (1/273.16 - 1/T_d)) - 10)``;
* sea-level pressure and altitude: the barometric formula of the ICAO / US
  Standard Atmosphere 1976 troposphere (T0 = 288.15 K, lapse rate
  0.0065 K/m): ``p0 = p (1 - h/44330.77)^-5.25588`` (the BMP180/BMP280
  datasheets' ``44330`` and ``5.255`` rounded), h in geopotential metres;
* VPD: vapour-pressure deficit ``e_w(t) (1 - RH/100)``, FAO-56 (Allen et
  al. 1998) chapter 3, in kPa.
"""

from __future__ import annotations

import math

#: Where the formulas hold (°C): Alduchov & Eskridge 1996 (AERK over water, AEKI over ice).
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
