"""Making the agent's sensors and metrics match the config, without ever creating duplicates.

Run on every (re)connection, before any value is pushed.  For each enabled
sensor in the config :func:`reconcile`

* keeps the remembered sensor ID if the agent still has it (renaming the
  sensor back if the agent lost its name, which happens when a push
  re-created it on the fly with name = ID);
* otherwise adopts an agent sensor with the config's name (the registry was
  lost, or the bridge crashed between "create" and saving the ID);
* otherwise creates the sensor;

and then for its metrics drops remembered IDs the agent no longer has,
adopts agent metrics whose name matches a configured one, creates the
missing ones in one request, and renames the ones whose name changed in the
config.  Metrics removed from the config are left on the agent with their
history.  The registry is saved after every change, so a crash halfway
leaves nothing the next run cannot find again by name.

A sensor whose remembered IDs the agent's list confirms (the sensor and a
metric for every configured quantity) can take readings at once: ``on_ready``
is called with those names right after the list, before any other request,
so a slow or failing rename never holds up delivery.  A rename the agent
refuses or does not answer is noted in ``report.deferred`` and tried again
later; the sensor is delivered meanwhile.  When the agent stops answering
(timeout) or answers what the client cannot understand, the remaining
sensors are not tried (each would wait another timeout) and are noted in
``report.failed``.

Threading: blocking agent requests; run it in the control thread, never in
paho's callbacks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from pibridge.agent.errors import AgentConnectionLost, AgentError, PibridgeAgentError
from pibridge.bridge.registry import MetricEntry, Registry
from pibridge.units import MetricDefinition

log = logging.getLogger("pibridge.reconcile")


@dataclass
class ReconcileReport:
    """What one reconciliation changed on the agent, by config sensor name.

    ``ready`` names the sensors whose IDs the agent confirmed or handed out:
    their readings can be delivered.  ``failed`` (sensor -> why) are not set
    up; ``deferred`` (sensor -> why) are set up, but a rename is still owed.
    """

    created_sensors: list[str] = field(default_factory=list)
    adopted_sensors: list[str] = field(default_factory=list)
    created_metrics: dict[str, list[str]] = field(default_factory=dict)
    adopted_metrics: dict[str, list[str]] = field(default_factory=dict)
    renamed_metrics: dict[str, list[str]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    deferred: dict[str, str] = field(default_factory=dict)
    ready: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(
            self.created_sensors or self.adopted_sensors or self.created_metrics
            or self.adopted_metrics or self.renamed_metrics
        )


def _confirmed(registry: Registry, name: str, definitions: dict, by_id: dict) -> bool:
    """True if the agent's list has the remembered sensor and a remembered metric for every quantity."""
    entry = registry.sensor(name)
    info = by_id.get(entry.sensor_id) if entry is not None else None
    if info is None:
        return False
    on_agent = set(info.metric_ids)
    return all(q in entry.metrics and entry.metrics[q].metric_id in on_agent for q in definitions)


def reconcile(
    client: Any,
    registry: Registry,
    sensors: Iterable[tuple[str, dict[str, MetricDefinition]]],
    on_ready: Callable[[list[str]], None] | None = None,
) -> ReconcileReport:
    """Bring the agent in line with *sensors* (pairs of config name and metric definitions by quantity).

    Raises AgentTimeout / AgentConnectionLost / ProtocolError only when the
    sensor list itself cannot be had (try again later); an agent error about
    one sensor is logged, noted in ``report.failed`` and the others are still
    reconciled.  *on_ready(names)* is called once, after the list, with the
    sensors that can be delivered to already.
    """
    from pibridge.agent.client import MetricUpdate

    report = ReconcileReport()
    sensors = list(sensors)
    listed = client.list_sensors()
    by_id = {s.sensor_id: s for s in listed}
    by_name: dict[str, Any] = {}
    for s in listed:
        by_name.setdefault(s.name, s)
    report.ready = [name for name, definitions in sensors if _confirmed(registry, name, definitions, by_id)]
    if on_ready is not None:
        on_ready(list(report.ready))
    for index, (name, definitions) in enumerate(sensors):
        try:
            info, renamed = _sensor(client, registry, name, definitions, by_id, by_name, report)
        except AgentConnectionLost:
            raise
        except PibridgeAgentError as exc:
            report.failed[name] = str(exc)
            log.error("sensor %r could not be set up on the agent: %s", name, exc)
            if not isinstance(exc, AgentError):
                _give_up(sensors[index + 1:], report, exc)
                break
            continue
        if name not in report.ready:
            report.ready.append(name)
        try:
            _rename(client, registry, name, definitions, info, renamed, report, MetricUpdate)
        except AgentConnectionLost:
            raise
        except PibridgeAgentError as exc:
            report.deferred[name] = str(exc)
            log.warning("sensor %r: renaming on the agent failed (%s); its readings are delivered meanwhile "
                        "and the rename is tried again later", name, exc)
            if not isinstance(exc, AgentError):
                _give_up(sensors[index + 1:], report, exc)
                break
    return report


def _give_up(rest, report: ReconcileReport, exc: Exception) -> None:
    """The agent stopped answering: note the sensors not tried (those already confirmed stay ready)."""
    for name, _ in rest:
        if name not in report.ready:
            report.failed[name] = f"not tried: {exc}"
        else:
            report.deferred[name] = f"not checked: {exc}"


def _sensor(client, registry, name, definitions, by_id, by_name, report) -> tuple[Any, bool]:
    """Find, adopt or create the sensor and its metrics; returns (agent's info, whether it needs renaming back)."""
    entry = registry.sensor(name)
    info = by_id.get(entry.sensor_id) if entry is not None else None
    if info is None and name in by_name:
        info = by_name[name]
        entry = registry.set_sensor(name, info.sensor_id)
        registry.save()
        report.adopted_sensors.append(name)
        log.info("using the agent's existing sensor %r (%s)", name, info.sensor_id)
    elif info is None:
        info = client.create_sensor(name)
        entry = registry.set_sensor(name, info.sensor_id)
        registry.save()
        by_id[info.sensor_id] = info
        report.created_sensors.append(name)
        log.info("created sensor %r (%s) on the agent", name, info.sensor_id)
    sensor_id = info.sensor_id
    on_agent = set(info.metric_ids)

    changed = False
    for quantity, metric in list(entry.metrics.items()):
        if metric.metric_id not in on_agent:
            del entry.metrics[quantity]
            changed = True
    missing = [q for q in definitions if q not in entry.metrics]
    known = {m.metric_id for m in entry.metrics.values()}
    strangers = sorted(on_agent - known)
    if missing and strangers:
        names: dict[str, str] = {}
        for metric_id in strangers:
            names.setdefault(client.describe_metric(sensor_id, metric_id).name, metric_id)
        for quantity in list(missing):
            metric_id = names.pop(definitions[quantity].name, None)
            if metric_id is not None:
                entry.metrics[quantity] = MetricEntry(metric_id, definitions[quantity].name)
                report.adopted_metrics.setdefault(name, []).append(quantity)
                missing.remove(quantity)
                changed = True
    if changed:
        registry.save()
    if missing:
        ids = client.create_metrics(sensor_id, [definitions[q] for q in missing])
        for quantity, metric_id in zip(missing, ids):
            entry.metrics[quantity] = MetricEntry(metric_id, definitions[quantity].name)
        registry.save()
        report.created_metrics[name] = list(missing)
        log.info("sensor %r: created metrics %s", name, ", ".join(missing))
    return info, info.name != name


def _rename(client, registry, name, definitions, info, renamed_on_agent, report, MetricUpdate) -> None:
    """Give the sensor back its name if the agent lost it, and the metrics the names of the config."""
    if renamed_on_agent:
        # A push re-creates a lost sensor on the fly with name = ID, and its metrics likewise.
        log.info("sensor %r is called %r on the agent; renaming it back", name, info.name)
        client.update_sensor(info.sensor_id, name=name, state=None)
    entry = registry.sensor(name)
    renames = [
        (quantity, metric)
        for quantity, metric in entry.metrics.items()
        if quantity in definitions and (renamed_on_agent or metric.name != definitions[quantity].name)
    ]
    if renames:
        client.update_metrics(
            info.sensor_id, [MetricUpdate(metric.metric_id, name=definitions[q].name) for q, metric in renames]
        )
        for quantity, metric in renames:
            metric.name = definitions[quantity].name
        registry.save()
        report.renamed_metrics[name] = [q for q, _ in renames]
        log.info("sensor %r: renamed metrics %s", name, ", ".join(q for q, _ in renames))
