"""What a driver hands to the bridge: quantities, units and readings.

A driver reports each quantity in one *canonical unit* from :data:`UNITS`
(``"°C"``, ``"hPa"``, ``"%RH"``, ``"lx"``, ...).  The table says how the
bridge turns that unit into an agent metric: a predefined SI unit with a
scale factor (hPa -> Pa is x100), or a custom metric (value type plus
annotation) where the agent has no predefined unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from pibridge.units import MetricDefinition, ValueType, ValueUnit

Value = Union[float, int, bool, str]


@dataclass(frozen=True)
class AgentUnit:
    """How values in one canonical unit are sent to the agent."""

    unit: ValueUnit | None = None
    value_type: ValueType | None = None
    annotation: str | None = None
    factor: float = 1.0

    def definition(self, metric_name: str) -> MetricDefinition:
        return MetricDefinition(metric_name, self.unit, self.value_type, self.annotation)

    def convert(self, value: Value) -> Value:
        if self.factor == 1.0 or isinstance(value, (bool, str)):
            return value
        return value * self.factor


def _si(unit: ValueUnit, factor: float = 1.0) -> AgentUnit:
    return AgentUnit(unit=unit, factor=factor)


def _custom(value_type: ValueType, annotation: str) -> AgentUnit:
    return AgentUnit(value_type=value_type, annotation=annotation)


#: Canonical units a driver may declare, and their agent form.
UNITS: dict[str, AgentUnit] = {
    "°C": _si(ValueUnit.CELSIUS),
    "Pa": _si(ValueUnit.PASCAL),
    "hPa": _si(ValueUnit.PASCAL, 100.0),
    "%RH": _si(ValueUnit.PERCENT),
    "%": _si(ValueUnit.PERCENT),
    "V": _si(ValueUnit.VOLT),
    "mV": _si(ValueUnit.VOLT, 1e-3),
    "A": _si(ValueUnit.AMPERE),
    "mA": _si(ValueUnit.AMPERE, 1e-3),
    "W": _si(ValueUnit.WATT),
    "mW": _si(ValueUnit.WATT, 1e-3),
    "Ω": _si(ValueUnit.OHM),
    "m": _si(ValueUnit.METER),
    "cm": _si(ValueUnit.METER, 1e-2),
    "m/s": _si(ValueUnit.METERS_PER_SECOND),
    "m/s²": _si(ValueUnit.METERS_PER_SQUARE_SECOND),
    "Hz": _si(ValueUnit.HERTZ),
    "s": _si(ValueUnit.SECOND),
    "J": _si(ValueUnit.JOULE),
    "kg": _si(ValueUnit.KILOGRAM),
    "N": _si(ValueUnit.NEWTON),
    "rad": _si(ValueUnit.RADIAN),
    "cd": _si(ValueUnit.CANDELA),
    "dB": _si(ValueUnit.DECIBEL),
    "°lat": _si(ValueUnit.LATITUDE),
    "°lon": _si(ValueUnit.LONGITUDE),
    "lx": _custom(ValueType.DOUBLE, "lx"),
    "ppm": _custom(ValueType.DOUBLE, "ppm"),
    "ppb": _custom(ValueType.DOUBLE, "ppb"),
    "index": _custom(ValueType.INTEGER, "index"),
    "µg/m³": _custom(ValueType.DOUBLE, "µg/m³"),
    "count": _custom(ValueType.INTEGER, "count"),
    "1/0.1L": _custom(ValueType.INTEGER, "particles/0.1 L"),
    "1/min": _custom(ValueType.DOUBLE, "1/min"),
    "L": _custom(ValueType.DOUBLE, "L"),
    "L/min": _custom(ValueType.DOUBLE, "L/min"),
    "mm": _si(ValueUnit.METER, 1e-3),
    "mm/h": _custom(ValueType.DOUBLE, "mm/h"),
    "bool": _custom(ValueType.BOOL, "state"),
    "text": _custom(ValueType.STRING, "text"),
}


@dataclass(frozen=True)
class Quantity:
    """One thing a driver measures, e.g. ``Quantity("temperature", "°C")``."""

    name: str
    unit: str
    description: str = ""

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(
                f"quantity {self.name!r}: unit {self.unit!r} is not a canonical unit; "
                f"use one of {', '.join(UNITS)}"
            )

    @property
    def agent_unit(self) -> AgentUnit:
        return UNITS[self.unit]


@dataclass(frozen=True)
class Reading:
    """The values of one sensor taken at one moment.

    ``timestamp_ms`` is when the device was read (milliseconds since the
    epoch), not when the values are sent: the agent stores them under it.
    """

    sensor: str
    timestamp_ms: int
    values: dict[str, Value] = field(default_factory=dict)
