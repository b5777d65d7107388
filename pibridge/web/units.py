"""How the page and ``/metrics`` name the agent's units.

Values reach the page as they are pushed: in the unit of the agent metric
(``SI.Temperature.CELSIUS``, or a custom type with an annotation such as
``lx``).  The page shows a short symbol; Prometheus wants the base unit, in
plural words, at the end of the metric name (its naming guide), and ratios
instead of percent.
"""

from __future__ import annotations

import re

from pibridge.readings import Quantity

#: The last part of an agent unit name -> (symbol for the page, Prometheus suffix, factor into that unit).
AGENT_UNITS: dict[str, tuple[str, str, float]] = {
    "AMPERE": ("A", "amperes", 1.0),
    "BIT": ("bit", "bits", 1.0),
    "CELSIUS": ("°C", "celsius", 1.0),
    "FARAD": ("F", "farads", 1.0),
    "KILOGRAM": ("kg", "grams", 1000.0),
    "HERTZ": ("Hz", "hertz", 1.0),
    "JOULE": ("J", "joules", 1.0),
    "METER": ("m", "meters", 1.0),
    "METERS_PER_SECOND": ("m/s", "meters_per_second", 1.0),
    "MOLE": ("mol", "moles", 1.0),
    "NEWTON": ("N", "newtons", 1.0),
    "OHM": ("Ω", "ohms", 1.0),
    "PASCAL": ("Pa", "pascals", 1.0),
    "RADIAN": ("rad", "radians", 1.0),
    "SECOND": ("s", "seconds", 1.0),
    "SQUARE_METRE": ("m²", "square_meters", 1.0),
    "VOLT": ("V", "volts", 1.0),
    "WATT": ("W", "watts", 1.0),
    "CANDELA": ("cd", "candela", 1.0),
    "METERS_PER_SQUARE_SECOND": ("m/s²", "meters_per_second_squared", 1.0),
    "PERCENT": ("%", "ratio", 0.01),
    "DECIBEL": ("dB", "decibels", 1.0),
    "LATITUDE": ("°", "degrees_latitude", 1.0),
    "LONGITUDE": ("°", "degrees_longitude", 1.0),
}

#: Custom annotations (``pibridge.readings.UNITS``) as Prometheus suffixes.
ANNOTATION_SUFFIX = {
    "lx": "lux",
    "ppm": "ppm",
    "µg/m³": "micrograms_per_cubic_meter",
    "count": "count",
    "1/min": "per_minute",
    "L": "liters",
    "L/min": "liters_per_minute",
    "mm/h": "millimeters_per_hour",
    "state": "state",
}


def _key(unit: str | None) -> str | None:
    return unit.rsplit(".", 1)[-1] if unit else None


def symbol(unit: str | None, annotation: str | None) -> str:
    """``"°C"`` for ``SI.Temperature.CELSIUS``, the annotation for a custom unit, ``""`` for text."""
    known = AGENT_UNITS.get(_key(unit) or "")
    if known:
        return known[0]
    if annotation in ("state", "text"):
        return ""
    return annotation or ""


def prometheus_suffix(unit: str | None, annotation: str | None) -> tuple[str, float]:
    """The metric-name suffix and the factor that turns a pushed value into that unit."""
    known = AGENT_UNITS.get(_key(unit) or "")
    if known:
        return known[1], known[2]
    if annotation in ANNOTATION_SUFFIX:
        return ANNOTATION_SUFFIX[annotation], 1.0
    cleaned = re.sub(r"[^a-z0-9]+", "_", (annotation or "value").lower()).strip("_")
    return cleaned or "value", 1.0


def quantity_units(quantity: Quantity) -> tuple[str | None, str | None, str | None]:
    """(agent unit name, value type, annotation) of the metric a quantity becomes."""
    agent = quantity.agent_unit
    return (
        agent.unit.value if agent.unit is not None else None,
        agent.value_type.value if agent.value_type is not None else None,
        agent.annotation,
    )
