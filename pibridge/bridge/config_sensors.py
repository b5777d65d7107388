"""The ``[[sensors]]`` tables of the config: each sensor, its driver's options and its metrics.

:class:`SensorsParser` builds every sensor's driver once (no hardware is
touched) to check its options, quantities, minimum interval and the pins or
addresses it claims, and reports every problem of every sensor in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pibridge.bridge.peers import peer_problems
from pibridge.drivers import Driver, OptionError, available, driver_class
from pibridge.readings import Quantity
from pibridge.settings import (
    BAD,
    MISSING,
    ConfigError,
    Table,
    boolean,
    did_you_mean,
    duration_between,
    in_range,
    integer,
    ordinal,
    parse_seconds,
    show,
    string,
    type_name,
)
from pibridge.transforms import derived as derived_values
from pibridge.transforms.base import Filter, kind_of
from pibridge.transforms.parse import full_chain, read_value_settings

#: Longest sensor or metric name accepted.  The agent takes free text for names given to
#: "create"; this keeps them readable in the TeamViewer web interface and in logs.
NAME_MAX = 64

#: Shortest and longest sensor interval.  The floor holds for every driver, on top of its own
#: (``Driver.min_interval``): below 10 ms the reads alone take a large part of a
#: Pi's core.  The ceiling keeps the next slot on the clock grid computable and sane.
INTERVAL_BOUNDS = (0.01, 86400.0)
#: offline_after: failed reads in a row before the sensor is reported offline.
OFFLINE_AFTER_BOUNDS = (1, 100_000)

SENSOR_KEYS = ("name", "driver", "interval", "enabled", "offline_after", "metric") + derived_values.SENSOR_KEYS
METRIC_KEYS = ("name", "drop", "scale", "offset", "round", "threshold", "heartbeat", "filters")


@dataclass(frozen=True)
class MetricConfig:
    """What happens to one quantity of a sensor on its way to the agent.

    value = raw * scale + offset, in the quantity's canonical unit, then
    the ``filters`` in order, then rounded to ``round`` digits; with a
    ``threshold`` it is pushed only when it moved at least that much since
    the last push, or ``heartbeat`` seconds have passed (None: the default
    of 90 s; infinity: ``heartbeat = false``, never).  :meth:`chain` is
    all of that as one list of filters.
    """

    quantity: str
    name: str
    drop: bool = False
    scale: float = 1.0
    offset: float = 0.0
    round: int | None = None
    threshold: float | None = None
    heartbeat: float | None = None
    filters: tuple[Filter, ...] = ()

    def chain(self) -> tuple[Filter, ...]:
        """Every step a value of this metric goes through, in order (fresh state in each :class:`Chain`)."""
        return full_chain(self.scale, self.offset, self.round, self.threshold, self.heartbeat, self.filters)


@dataclass(frozen=True)
class SensorConfig:
    """One ``[[sensors]]`` table, validated.

    ``options`` are the driver's own options as written in the file;
    ``metrics`` has one entry per quantity the driver reports (dropped ones
    included, marked ``drop``); ``quantities`` are those quantities in the
    driver's order; ``derived`` the values computed from them
    (``derived = [...]``), each with a metric entry of its own.
    """

    name: str
    driver: str
    interval: float
    enabled: bool = True
    offline_after: int = 3
    options: dict = field(default_factory=dict)
    metrics: dict[str, MetricConfig] = field(default_factory=dict)
    quantities: tuple[Quantity, ...] = ()
    derived: tuple[derived_values.Derived, ...] = ()

    def create_driver(self) -> Driver:
        """A fresh driver for this sensor (no hardware touched until ``open()``)."""
        return driver_class(self.driver)(self.name, dict(self.options))


def name_problem(name: Any) -> str | None:
    """Why *name* cannot be a sensor or metric name, or None if it can."""
    if not isinstance(name, str):
        return f"must be a string, not {type_name(name)}"
    if not name.strip():
        return "must not be empty"
    if len(name) > NAME_MAX:
        return f"is {len(name)} characters long; at most {NAME_MAX} are allowed"
    if name != name.strip():
        return "must not start or end with spaces"
    if not name.isprintable():
        return "must not contain control characters (tabs, newlines, ...)"
    return None


def _name(value: Any) -> str:
    problem = name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


class SensorsParser:
    """Reads the ``sensors`` list, appending every problem to *errors*."""

    def __init__(self, file: Path | None, errors: list[ConfigError]):
        self.file = file
        self.errors = errors

    def parse(self, value: Any) -> list[SensorConfig]:
        example = 'a [[sensors]] table with name = "greenhouse", driver = "mock" and interval = 5.0'
        if value is MISSING or value == []:
            self.errors.append(
                ConfigError("no sensors are configured", file=self.file, key="sensors", fix=f"add {example}")
            )
            return []
        if isinstance(value, dict):
            self.errors.append(
                ConfigError(
                    "is a single table, but sensors are a list of tables",
                    file=self.file,
                    key="sensors",
                    fix="start each sensor with [[sensors]] (two brackets), not [sensors]",
                )
            )
            return []
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            what = "an array of other values" if isinstance(value, list) else type_name(value)
            self.errors.append(
                ConfigError(
                    f"must be a list of tables, not {what}",
                    file=self.file,
                    key="sensors",
                    fix=f"describe each sensor in {example}",
                )
            )
            return []
        sensors: list[SensorConfig] = []
        seen: dict[str, int] = {}
        claimed: dict[str, str] = {}
        for index, table in enumerate(value, start=1):
            sensor = self._sensor(index, table, seen, claimed)
            if sensor is not None:
                sensors.append(sensor)
        for sensor, key, message, fix in peer_problems(sensors, seen):
            self.errors.append(ConfigError(message, file=self.file, sensor=sensor.name, key=key, fix=fix,
                                           sensor_index=seen.get(sensor.name)))
        return sensors

    def _sensor(self, index: int, data: dict, seen: dict[str, int], claimed: dict[str, str]) -> SensorConfig | None:
        """One [[sensors]] table; *seen* maps names to table numbers, *claimed* resources to sensors."""
        raw_name = data.get("name")
        usable = isinstance(raw_name, str) and name_problem(raw_name) is None
        label = None if usable else f"#{index} (the {ordinal(index)} [[sensors]] table)"
        t = Table(data, self.errors, self.file, sensor=raw_name if usable else None, sensor_label=label, index=index)
        errors_before = len(self.errors)

        name = t.get("name", _name, fix='name = "greenhouse" (the sensor\'s name in TeamViewer)')
        if name is not BAD:
            if name in seen:
                t.error(
                    "name",
                    f"the name {name!r} is already used by the {ordinal(seen[name])} [[sensors]] table",
                    "give every sensor its own name (the agent needs unique sensor names)",
                )
            else:
                seen[name] = index
        driver_name = t.get("driver", string, fix='driver = "mock" (see `pibridge drivers` for the list)')
        interval = t.get(
            "interval", parse_seconds, fix="interval = 10.0 (seconds between readings)",
            check=duration_between(*INTERVAL_BOUNDS),
        )
        enabled = t.get("enabled", boolean, True, fix="enabled = true")
        offline_after = t.get(
            "offline_after",
            integer,
            3,
            fix="offline_after = 3",
            check=in_range(*OFFLINE_AFTER_BOUNDS),
        )
        metric_tables = t.raw("metric")
        options = {k: v for k, v in data.items() if k not in SENSOR_KEYS}
        t.taken.update(options)

        driver_cls = self._driver_class(t, driver_name)
        if driver_cls is None:
            return None
        # Without a usable name the options are still worth checking, under a stand-in name.
        driver = self._build_driver(t, driver_cls, name if name is not BAD else f"sensor-{index}", options)
        if driver is None:
            # Everything is reported in one pass: the metric tables are checked too, against what
            # the driver reports by default (its options may add quantities, so none is called unknown).
            if driver_cls.provides:
                self._metrics(t, metric_tables, list(driver_cls.provides), driver_name, interval, known_only=True)
            return None
        try:
            quantities = list(driver.quantities())
            min_interval = float(driver.min_interval())
            resources = [str(r) for r in driver.resources()]
        except Exception as e:  # a third-party driver's bug must not become a traceback
            t.error(None, f"driver {driver_name!r} failed to describe itself: {type(e).__name__}: {e}",
                    "report this to the driver's author; check its options meanwhile")
            return None
        if not quantities or not all(isinstance(q, Quantity) for q in quantities):
            t.error(None, f"driver {driver_name!r} reports no quantities with these options",
                    f"check its options: `pibridge drivers` lists what {driver_name!r} accepts")
            return None
        if enabled is not False:
            self._claim(t, resources, options, list(driver_cls.options), claimed)
        if interval is not BAD and interval < min_interval:
            t.error(
                "interval",
                f"driver {driver_name!r} cannot be read more often than every {min_interval:g} s, "
                f"but interval = {interval:g}",
                f"set interval = {min_interval:g} or more",
            )
        derived = derived_values.read_derived(t, quantities)
        metrics = self._metrics(t, metric_tables, quantities + [d.quantity for d in derived], driver_name, interval)
        if len(self.errors) > errors_before or name is BAD:
            return None
        return SensorConfig(
            name=name,
            driver=driver_cls.name,
            interval=interval,
            enabled=enabled,
            offline_after=offline_after,
            options=dict(options),
            metrics=metrics,
            quantities=tuple(quantities),
            derived=derived,
        )

    def _driver_class(self, t: Table, driver_name: Any) -> type[Driver] | None:
        if driver_name is BAD:
            return None
        # Datasheets and board silk say "BME280"; driver names are lower case.  Take it as meant.
        for spelling in dict.fromkeys([driver_name.strip().lower().replace("-", "_"), driver_name]):
            try:
                return driver_class(spelling)
            except KeyError:
                continue
            except Exception as e:  # a broken driver plugin: say so, do not crash
                t.error("driver", f"the drivers could not be loaded: {type(e).__name__}: {e}",
                        "reinstall pibridge or remove the broken driver package")
                return None
        known = list(available())  # discovery has run: driver_class() above got this far
        t.error(
            "driver",
            f"there is no driver called {show(driver_name)}",
            f"{did_you_mean(driver_name, known)}use one of: {', '.join(known) or '(none installed)'}",
        )
        return None

    def _build_driver(self, t: Table, cls: type[Driver], name: str, options: dict) -> Driver | None:
        """The driver for these options, or None after recording why not.

        Unknown keys are reported one by one and left out, so the remaining
        options (and the pins they claim) are still checked in the same pass.
        """
        try:
            declared = list(cls.options)
            for key in options:
                if key not in declared:
                    t.error(
                        key,
                        f"unknown option {key!r} for driver {cls.name!r}; "
                        f"its options are: {', '.join(sorted(declared)) or 'none'}",
                        f"{did_you_mean(key, list(SENSOR_KEYS) + sorted(declared))}remove it, or use one of the "
                        f"sensor keys ({', '.join(SENSOR_KEYS)}) or of the driver's options",
                    )
            return cls(name, {k: v for k, v in options.items() if k in declared})
        except OptionError as e:
            key = str(e.key)
            message = str(e)
            for prefix in (f"sensor {name!r}: ", f"sensor {name}: "):
                if message.startswith(prefix):
                    message = message[len(prefix):]
            if key in cls.options and cls.options[key].help:
                fix = f"{key}: {cls.options[key].help} (`pibridge drivers` lists every option)"
            else:
                fix = f"`pibridge drivers` lists the options of {cls.name!r}"
            t.error(key, message, fix)
        except Exception as e:  # a driver's own checks must not escape as a traceback
            t.error(
                None,
                f"driver {cls.name!r} rejected its options: {type(e).__name__}: {e}",
                "check the options against `pibridge drivers`",
            )
        return None

    def _metrics(
        self, t: Table, tables: Any, quantities: list[Quantity], driver_name: str, interval: Any,
        known_only: bool = False,
    ) -> dict[str, MetricConfig]:
        by_name = {q.name: q for q in quantities}
        reported = ", ".join(by_name)
        if tables is MISSING:
            tables = {}
        if not isinstance(tables, dict):
            t.error("metric", f"must be a table of per-quantity tables, not {type_name(tables)}",
                    "write e.g. [sensors.metric.temperature] followed by name = ..., offset = ...")
            tables = {}
        for quantity in tables:
            if quantity in by_name or known_only:
                continue
            if quantity in derived_values.FORMULAS:
                t.error(f"metric.{quantity}", f"{quantity!r} is a derived value this sensor does not declare",
                        f'add derived = ["{quantity}"] to the sensor, or remove [sensors.metric.{quantity}]')
            else:
                t.error(
                    f"metric.{quantity}",
                    f"driver {driver_name!r} does not report {quantity!r} for this sensor; it reports: {reported}",
                    f"{did_you_mean(quantity, list(by_name))}use one of those quantity names after 'metric.'",
                )
        result: dict[str, MetricConfig] = {}
        for quantity in quantities:
            table = tables.get(quantity.name, {})
            if not isinstance(table, dict):
                t.error(f"metric.{quantity.name}", f"must be a table, not {type_name(table)}",
                        f"write [sensors.metric.{quantity.name}] followed by its keys")
                continue
            m = Table(table, self.errors, self.file, sensor=t.sensor, sensor_label=t.sensor_label,
                      prefix=f"metric.{quantity.name}.", index=t.index)
            result[quantity.name] = self._metric(m, quantity, interval)
        if not known_only:
            self._check_metric_names(t, result)
        return result

    def _metric(self, m: Table, quantity: Quantity, interval: Any) -> MetricConfig:
        q = quantity.name
        name = m.get("name", _name, q, fix=f'name = "{q}"')
        drop = m.get("drop", boolean, False, fix="drop = true")
        errors_before = len(m.errors)
        v = read_value_settings(m, q, kind_of(quantity), quantity.unit, interval)
        m.unknown(METRIC_KEYS, f"[sensors.metric.{q}]")
        if name is BAD or drop is BAD or len(m.errors) > errors_before:
            return MetricConfig(q, q)
        return MetricConfig(q, name, drop, v.scale, v.offset, v.round, v.threshold, v.heartbeat, v.filters)

    def _check_metric_names(self, t: Table, metrics: dict[str, MetricConfig]) -> None:
        if metrics and all(m.drop for m in metrics.values()):
            t.error("metric", "every quantity of this sensor is dropped, so nothing would be sent",
                    "keep at least one quantity, or set enabled = false on the sensor")
        owner: dict[str, str] = {}
        for metric in metrics.values():
            if metric.drop:
                continue
            if metric.name in owner:
                t.error(
                    f"metric.{metric.quantity}.name",
                    f"the metric name {metric.name!r} is also used by quantity {owner[metric.name]!r}",
                    "give every metric of a sensor its own name",
                )
            owner.setdefault(metric.name, metric.quantity)

    def _claim(
        self, t: Table, resources: list[str], options: dict, declared: list[str], claimed: dict[str, str]
    ) -> None:
        """Record the pins/addresses of an enabled sensor; report those another sensor already holds."""
        me = t.sensor if t.sensor is not None else t.sensor_label
        for resource in resources:
            other = claimed.get(resource)
            if other is None:
                claimed[resource] = me
                continue
            t.error(
                _option_for(resource, options, declared),
                f"{resource} is also used by sensor {other!r}",
                "give each sensor its own pin or address (or set enabled = false on one of them)",
            )


def _option_for(resource: str, options: dict, declared: list[str]) -> str | None:
    """The option that most likely chose *resource* (``"gpio:17"`` <- ``pin = 17``), for messages.

    When no given value matches (``"w1:auto"``: no ``device_id`` given), the
    driver's first declared option is the one to set.
    """
    last = resource.rsplit(":", 1)[-1]
    try:
        number = int(last, 0)
    except ValueError:
        number = None
    for key, value in options.items():
        if isinstance(value, bool):
            continue
        if value == number or str(value) == last:
            return key
    return declared[0] if declared else None
