"""The agent's metric units: the 24 predefined ``valueUnit``s and the custom value types.

A metric is defined either with one of the predefined units (its values are
doubles) or, where the agent has no predefined unit (lux, ppm, counts,
booleans), as a *custom* metric: a ``valueType`` plus a free-text
``valueAnnotation`` such as ``"lx"``.  :class:`MetricDefinition` checks this
locally so a bad definition never reaches the agent.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ValueUnit(str, enum.Enum):
    """The predefined units of the agent API reference, section 5.3.1."""

    AMPERE = "SI.ElectricCurrent.AMPERE"
    BIT = "SI.DataAmount.BIT"
    CELSIUS = "SI.Temperature.CELSIUS"
    FARAD = "SI.ElectricCapacitance.FARAD"
    KILOGRAM = "SI.Mass.KILOGRAM"
    HERTZ = "SI.Frequency.HERTZ"
    JOULE = "SI.Energy.JOULE"
    METER = "SI.Length.METER"
    METERS_PER_SECOND = "SI.Velocity.METERS_PER_SECOND"
    MOLE = "SI.AmountOfSubstance.MOLE"
    NEWTON = "SI.Force.NEWTON"
    OHM = "SI.ElectricResistance.OHM"
    PASCAL = "SI.Pressure.PASCAL"
    RADIAN = "SI.Angle.RADIAN"
    SECOND = "SI.Duration.SECOND"
    SQUARE_METRE = "SI.Area.SQUARE_METRE"
    VOLT = "SI.ElectricPotential.VOLT"
    WATT = "SI.Power.WATT"
    CANDELA = "SI.LuminousIntensity.CANDELA"
    METERS_PER_SQUARE_SECOND = "SI.Acceleration.METERS_PER_SQUARE_SECOND"
    PERCENT = "NoSI.Dimensionless.PERCENT"
    DECIBEL = "NoSI.Dimensionless.DECIBEL"
    LATITUDE = "NoSI.Location.LATITUDE"
    LONGITUDE = "NoSI.Location.LONGITUDE"

    @classmethod
    def parse(cls, text: str) -> "ValueUnit":
        """Return the unit whose agent name is *text*, or raise ValueError naming the valid ones."""
        try:
            return cls(text)
        except ValueError:
            valid = ", ".join(u.value for u in cls)
            raise ValueError(f"unknown valueUnit {text!r}; valid units are: {valid}") from None


class ValueType(str, enum.Enum):
    """The value types a custom metric may have (section 5.3.1)."""

    BOOL = "bool"
    STRING = "string"
    DOUBLE = "double"
    INTEGER = "integer"

    @classmethod
    def parse(cls, text: str) -> "ValueType":
        try:
            return cls(text)
        except ValueError:
            valid = ", ".join(t.value for t in cls)
            raise ValueError(f"unknown valueType {text!r}; valid types are: {valid}") from None


@dataclass(frozen=True)
class MetricDefinition:
    """What the agent needs to create one metric.

    Give either ``unit`` (a predefined unit) or both ``value_type`` and
    ``annotation`` (a custom metric).  Construction fails with ValueError
    otherwise, before anything is sent.
    """

    name: str
    unit: ValueUnit | None = None
    value_type: ValueType | None = None
    annotation: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("a metric needs a non-empty name")
        if self.unit is not None:
            if not isinstance(self.unit, ValueUnit):
                object.__setattr__(self, "unit", ValueUnit.parse(self.unit))
            if self.value_type is not None:
                raise ValueError(
                    f"metric {self.name!r}: give either a predefined unit or a custom "
                    "valueType with an annotation, not both"
                )
            return
        if self.value_type is None or self.annotation is None:
            raise ValueError(
                f"metric {self.name!r}: give a predefined unit, or a valueType "
                "(bool, string, double, integer) together with a valueAnnotation"
            )
        if not isinstance(self.value_type, ValueType):
            object.__setattr__(self, "value_type", ValueType.parse(self.value_type))
        if not isinstance(self.annotation, str):
            raise ValueError(f"metric {self.name!r}: valueAnnotation must be text")

    def to_api(self, matching_id: str) -> dict:
        """The JSON object of a create-metric request (section 5.3.1)."""
        body: dict = {"matchingId": matching_id, "name": self.name}
        if self.unit is not None:
            body["valueUnit"] = self.unit.value
        else:
            body["valueType"] = self.value_type.value
            body["valueAnnotation"] = self.annotation
        return body
