"""The air a gas or CO2 chip compensates for: another sensor's latest values, or the chip's defaults.

A driver that corrects its chip for temperature, humidity or pressure has
the option ``compensate_from = "<another sensor's name>"`` (see
:func:`compensate_from_option`) and keeps an :class:`Ambient`.  The bridge
hands the look-up of other sensors' values to :meth:`Driver.peers`, which
passes it to :meth:`Ambient.connect`; each read asks :meth:`Ambient.values`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Mapping

from . import Latest, Option

log = logging.getLogger("pibridge.drivers")


def compensate_from_option(what: str) -> Option:
    return Option(
        str,
        "",
        f"name of another sensor in this config whose {what} the chip compensates for "
        "(empty: the chip's defaults)",
    )


@dataclass(frozen=True)
class Condition:
    """One quantity the chip compensates for: its canonical unit, the value used without a
    peer, and the range the chip accepts (a peer value outside it is not used)."""

    unit: str
    default: float
    low: float
    high: float


#: The conditions the chips here use; defaults are the chips' own power-on values.
TEMPERATURE = Condition("°C", 25.0, -40.0, 85.0)
HUMIDITY = Condition("%RH", 50.0, 0.0, 100.0)
PRESSURE = Condition("hPa", 1013.25, 700.0, 1200.0)


class Ambient:
    """The latest values of some quantities from the sensor *source*, each falling back to its default.

    *who* names the sensor in log lines.  Without a source, or before the
    source has read, the defaults are used and the log says so once; it
    says so again only after the source's values were used in between.
    """

    def __init__(self, who: str, source: str, conditions: Mapping[str, Condition]):
        self.who = who
        self.source = source
        self.conditions = dict(conditions)
        self._latest: Latest | None = None
        self._on_defaults: bool | None = None

    def needs(self) -> dict[str, dict[str, str]]:
        """For :meth:`Driver.peer_needs`."""
        if not self.source:
            return {}
        return {self.source: {name: c.unit for name, c in self.conditions.items()}}

    def connect(self, latest: Latest) -> None:
        self._latest = latest

    def values(self) -> dict[str, float]:
        """One value per condition, in its unit: the source's where it has a usable one."""
        got = self._latest(self.source) if self.source and self._latest is not None else None
        result: dict[str, float] = {}
        missing = []
        for name, condition in self.conditions.items():
            value = (got or {}).get(name)
            if _usable(value, condition):
                result[name] = float(value)
            else:
                result[name] = condition.default
                missing.append(name)
        self._report(missing, got)
        return result

    def _report(self, missing: list[str], got: Mapping | None) -> None:
        on_defaults = bool(missing)
        if on_defaults == self._on_defaults:
            return
        self._on_defaults = on_defaults
        if not on_defaults:
            log.info("sensor %r: compensating with the readings of sensor %r", self.who, self.source)
            return
        defaults = " and ".join(f"{self.conditions[n].default:g} {self.conditions[n].unit}" for n in missing)
        if not self.source:
            log.info(
                "sensor %r: compensating for %s (the chip's defaults); set compensate_from to a sensor "
                "measuring %s for better accuracy", self.who, defaults, " and ".join(missing),
            )
        elif got is None:
            log.info("sensor %r: no reading from sensor %r yet; compensating for %s meanwhile",
                     self.who, self.source, defaults)
        else:
            log.warning("sensor %r: sensor %r gives no usable %s; compensating for %s meanwhile",
                        self.who, self.source, " and ".join(missing), defaults)


def _usable(value: object, condition: Condition) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and condition.low <= value <= condition.high


class Compensates:
    """Mixed into a driver that keeps an :class:`Ambient` as ``self.ambient``: the bridge's look-up goes to it.

    The config check learns from :meth:`peer_needs` which sensor and quantities
    ``compensate_from`` names; :meth:`peers` hands the look-up of their values over.
    """

    ambient: Ambient

    def peer_needs(self) -> dict[str, dict[str, str]]:
        return self.ambient.needs()

    def peers(self, latest: Latest) -> None:
        self.ambient.connect(latest)
