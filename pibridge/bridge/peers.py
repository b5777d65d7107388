"""One sensor using another sensor's readings: a gas sensor compensating for the air.

Some chips measure better when told the air's temperature, humidity or
pressure (ENS160, SGP40, SCD4x).  Their drivers take the name of another
sensor of the same config (``compensate_from = "hallway"``) and say so in
:meth:`Driver.peer_needs`.  Two things here make that work:

* :func:`peer_problems` checks at config time that every named sensor
  exists, is enabled and reports the quantities in the units needed;
* :class:`LatestValues` is the read-only look-up the bridge hands each
  driver (:meth:`Driver.peers`): a sensor's last good raw values, in the
  driver's canonical units, before any metric scaling or offset.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Iterable, Mapping

from pibridge.readings import Value

if TYPE_CHECKING:
    from pibridge.bridge.config import SensorConfig
    from pibridge.bridge.scheduler import SensorReader


class LatestValues:
    """``latest(name)``: the most recent good values of sensor *name*, or None.

    None before the sensor's first good read, while it is offline, or when
    no such sensor runs.  Threading: readers are added by the thread that
    builds the bridge before any reader starts, and added (replacing one of
    the same name) or removed by a config reload in the control thread;
    calls come from any read worker and only copy a dict the owning reader
    replaces whole, so they never block.
    """

    def __init__(self) -> None:
        self._readers: dict[str, SensorReader] = {}

    def add(self, reader: SensorReader) -> None:
        self._readers[reader.name] = reader

    def remove(self, name: str) -> None:
        self._readers.pop(name, None)

    def __call__(self, name: str) -> dict[str, Value] | None:
        reader = self._readers.get(name)
        if reader is None:
            return None
        health = reader.health
        values = health.last_values
        if not health.online or not values:
            return None
        return dict(values)


def peer_problems(
    sensors: Iterable[SensorConfig], names: Iterable[str]
) -> list[tuple[SensorConfig, str | None, str, str]]:
    """What is wrong with the peers the enabled *sensors* name: (sensor, key, message, fix) each.

    *names* are all sensor names in the file, including those of tables
    that had errors of their own (those are reported already, so a peer
    among them is not reported again).
    """
    sensors = list(sensors)
    by_name = {s.name: s for s in sensors}
    all_names = set(names)
    problems = []
    for sensor in sensors:
        if not sensor.enabled:
            continue
        try:
            needs = sensor.create_driver().peer_needs()
        except Exception:  # the driver's own checks ran (and were reported) at load time
            continue
        if not _well_formed(needs):
            problems.append((sensor, None, f"driver {sensor.driver!r} describes the sensors it needs wrongly "
                             f"(peer_needs() returned {needs!r})", "report this to the driver's author"))
            continue
        for peer_name, wanted in needs.items():
            key = next((k for k, v in sensor.options.items() if v == peer_name), None)
            problem = _problem(sensor.name, peer_name, wanted, by_name, all_names)
            if problem is not None:
                problems.append((sensor, key, *problem))
    return problems


def _well_formed(needs: object) -> bool:
    return isinstance(needs, dict) and all(
        isinstance(name, str) and isinstance(wanted, dict)
        and all(isinstance(q, str) and isinstance(u, str) for q, u in wanted.items())
        for name, wanted in needs.items()
    )


def _problem(
    me: str, peer_name: str, wanted: Mapping[str, str], by_name: dict[str, SensorConfig], all_names: set[str]
) -> tuple[str, str] | None:
    what = " and ".join(wanted)
    if peer_name == me:
        return (
            "names this sensor itself as the source of the air's " + what,
            "name another sensor that measures " + what + ", e.g. a BME280 next to this chip",
        )
    peer = by_name.get(peer_name)
    if peer is None:
        if peer_name in all_names:
            return None
        close = difflib.get_close_matches(peer_name, sorted(all_names - {me}), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return (
            f"there is no sensor called {peer_name!r} in this config",
            f"{hint}name a [[sensors]] entry that measures {what}, or remove the option to use the chip's defaults",
        )
    if not peer.enabled:
        return (
            f"sensor {peer_name!r} is disabled (enabled = false), so it would never give its {what}",
            f"enable {peer_name!r} or name another sensor that measures {what}",
        )
    units = {q.name: q.unit for q in peer.quantities}
    for quantity, unit in wanted.items():
        if quantity not in units:
            reported = ", ".join(units) or "nothing"
            return (
                f"sensor {peer_name!r} (driver {peer.driver!r}) does not measure {quantity}; it reports: {reported}",
                f"name a sensor that measures {what} (bme280, sht4x, sht3x, ...)",
            )
        if units[quantity] != unit:
            return (
                f"sensor {peer_name!r} reports {quantity} in {units[quantity]}, but compensation needs {unit}",
                f"name a sensor that reports {quantity} in {unit}",
            )
    return None
