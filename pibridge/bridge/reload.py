"""Applying a changed config file to the running daemon: ``systemctl reload pibridge`` (SIGHUP).

:func:`diff_configs` compares the running config with the file as it is now,
and :class:`Reloader` applies the difference to a running
:class:`~pibridge.bridge.daemon.Bridge`:

* **Sensors.**  A sensor added gets a reader; a sensor removed (or disabled)
  loses its reader.  A sensor whose ``[[sensors]]`` table changed in any way
  (driver options, interval, ``offline_after``, anything in its metric
  tables) gets a new driver, mapping and reader.  An old reader is stopped and
  waited for before its replacement starts, so its last readings are queued
  for delivery ahead of the new reader's first one; the new reader carries on
  the old one's counts (reads, failures, online).  Stopping only takes the
  old reader out of the schedule: a read it is in the middle of (a hung
  device) is left to finish, and its device is closed when that read
  returns; after ``STOP_TIMEOUT`` the replacement starts anyway.  A sensor
  that did not change keeps its reader, its place in the schedule and its
  open device untouched.
* **Metrics on the agent.**  Metrics added or renamed are set up
  (:mod:`pibridge.bridge.reconcile`, as at start-up) over the connection that
  is already open, before the new readers start.  If the agent refuses or is
  not connected, the readings of those sensors wait in the outbox, in order,
  until the next full set-up.
* **Log level**: at once (unless ``--log-level`` was given: it stays).
* ``[storage]`` ``outbox_max_bytes``, ``outbox_max_age``, ``ack_window``,
  ``commit_interval`` and ``[agent] reprovision``: at once.  Every other
  ``[agent]`` and ``[storage]`` key (host, ports, ``ca_file``,
  ``client_name``, ``timeout``, the storage dir, and with it the client
  identity) needs a restart: the log names each one changed, and the running
  value stays until then.

A file with any problem changes nothing: every problem is logged, as
``pibridge check`` would print it, and the running config stays.

Readings of a removed sensor that still wait (queued, or in the outbox) are
delivered: its agent sensor and IDs are kept, like at start-up.

Threading: everything here runs in the daemon's control thread.  The SIGHUP
handler only sets an event the control loop looks at.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pibridge import sdnotify
from pibridge.bridge.config import Config, ConfigError, SensorConfig, load_config

if TYPE_CHECKING:
    from pibridge.bridge.daemon import Bridge
    from pibridge.bridge.mapping import SensorMapping
    from pibridge.bridge.scheduler import SensorReader

    #: Sensor name -> a reader not started yet and its mapping.
    Fresh = dict[str, tuple[SensorReader, SensorMapping]]

log = logging.getLogger("pibridge")

#: The ``[agent]`` and ``[storage]`` keys a running daemon takes over on reload; all others need a restart.
LIVE_KEYS = {
    "agent": ("reprovision",),
    "storage": ("outbox_max_bytes", "outbox_max_age", "ack_window", "commit_interval"),
}

#: How long the readers of removed and changed sensors may take to finish their current read (seconds).
STOP_TIMEOUT = 3.0


@dataclass(frozen=True)
class Restart:
    """A setting that changed in the file but applies only after a restart."""

    key: str
    running: Any
    wanted: Any

    def describe(self) -> str:
        return f"{self.key} = {_shown(self.wanted)} (running with {_shown(self.running)})"


@dataclass
class ConfigDiff:
    """What differs between the running config and the file; sensors by name, enabled ones only."""

    added: list[SensorConfig] = field(default_factory=list)
    removed: list[SensorConfig] = field(default_factory=list)
    #: (running, new) pairs
    changed: list[tuple[SensorConfig, SensorConfig]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    log_level: str | None = None
    #: live ``[agent]``/``[storage]`` keys with their new values, e.g. ``("storage", "ack_window"): 1.0``
    live: dict[tuple[str, str], Any] = field(default_factory=dict)
    restart: list[Restart] = field(default_factory=list)

    @property
    def sensors_changed(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def diff_configs(running: Config, new: Config) -> ConfigDiff:
    """Compare two validated configs.

    Sensors are compared as whole :class:`SensorConfig` values, so every
    field (those added to the dataclasses later too) counts as a change.
    """
    diff = ConfigDiff()
    old_sensors = {s.name: s for s in running.enabled_sensors}
    new_sensors = {s.name: s for s in new.enabled_sensors}
    for name, sensor in new_sensors.items():
        old = old_sensors.get(name)
        if old is None:
            diff.added.append(sensor)
        elif old != sensor:
            diff.changed.append((old, sensor))
        else:
            diff.unchanged.append(name)
    diff.removed = [s for name, s in old_sensors.items() if name not in new_sensors]
    if new.log_level != running.log_level:
        diff.log_level = new.log_level
    for section in ("agent", "storage"):
        old_part, new_part = getattr(running, section), getattr(new, section)
        for f in dataclasses.fields(old_part):
            before, after = getattr(old_part, f.name), getattr(new_part, f.name)
            if before == after:
                continue
            if f.name in LIVE_KEYS[section]:
                diff.live[(section, f.name)] = after
            else:
                diff.restart.append(Restart(f"[{section}] {f.name}", before, after))
    return diff


def what_changed(old: SensorConfig, new: SensorConfig) -> list[str]:
    """The keys of a sensor that differ, for the log: ``interval``, ``metric.temperature.name``, ..."""
    keys = []
    for f in dataclasses.fields(old):
        if f.name in ("metrics", "quantities"):
            continue
        if getattr(old, f.name) != getattr(new, f.name):
            keys.append(f.name)
    for quantity in dict.fromkeys([*old.metrics, *new.metrics]):
        before, after = old.metrics.get(quantity), new.metrics.get(quantity)
        if before is None or after is None:
            if "options" not in keys:
                keys.append(f"metric.{quantity}")
            continue
        keys += [f"metric.{quantity}.{f.name}" for f in dataclasses.fields(before)
                 if getattr(before, f.name) != getattr(after, f.name)]
    if old.quantities != new.quantities and "options" not in keys:
        keys.append("quantities")
    return keys


def running_config(running: Config, new: Config) -> Config:
    """The config the daemon runs with after the reload: the new file, except what needs a restart."""
    parts = {}
    for section, live in LIVE_KEYS.items():
        old_part, new_part = getattr(running, section), getattr(new, section)
        parts[section] = dataclasses.replace(old_part, **{key: getattr(new_part, key) for key in live})
    return dataclasses.replace(new, path=running.path, **parts)


class Reloader:
    """Re-reads the config file of a running :class:`~pibridge.bridge.daemon.Bridge` and applies it.

    Call :meth:`reload` from the bridge's control thread.  *keep_log_level*
    (the ``--log-level`` given on the command line) wins over ``[log] level``.
    """

    def __init__(self, bridge: Bridge, *, keep_log_level: str | None = None):
        self.bridge = bridge
        self.keep_log_level = keep_log_level

    def reload(self) -> bool:
        """Read, validate, apply.  Returns False (and changes nothing) when the file has problems."""
        sdnotify.reloading()
        try:
            return self._reload()
        except Exception:  # a bug here must not end the control loop, which keeps the readings flowing
            log.exception("reload failed; the daemon carries on with what it had applied so far")
            return False
        finally:
            sdnotify.ready()

    def _reload(self) -> bool:
        bridge = self.bridge
        path = bridge.config.path
        if path is None:
            log.error("reload refused: this bridge was not started from a config file")
            return False
        log.info("reloading the config file %s", path)
        try:
            new = load_config(path)
        except ConfigError as exc:
            count = len(exc.errors)
            log.error("reload refused: %s has %d problem%s; the running config stays:",
                      path, count, "" if count == 1 else "s")
            for problem in exc.errors:
                log.error("  - %s", problem.describe())
            return False
        diff = diff_configs(bridge.config, new)
        fresh = self._build_readers(diff)
        if fresh is None:
            return False
        self._apply_log_level(diff)
        for setting in diff.restart:
            log.warning("reload: %s needs a restart to take effect (sudo systemctl restart pibridge); "
                        "it stays as it is until then", setting.describe())
        self._apply_sensors(diff, fresh)
        bridge.config = running_config(bridge.config, new)
        self._apply_settings(diff)
        log.info("reload done: %s", _summary(diff))
        bridge.write_state()
        return True

    # -- sensors --------------------------------------------------------------------

    def _build_readers(self, diff: ConfigDiff) -> Fresh | None:
        """Readers and mappings for the added and changed sensors, not started; None if one cannot be made."""
        fresh = {}
        for sensor in [*diff.added, *(new for _, new in diff.changed)]:
            try:
                fresh[sensor.name] = self.bridge.new_reader(sensor)
            except Exception as exc:  # validated just now, so only a driver bug gets here
                log.error("reload refused: cannot set up sensor %r: %s: %s; the running config stays",
                          sensor.name, type(exc).__name__, exc)
                return None
        return fresh

    def _apply_sensors(self, diff: ConfigDiff, fresh: Fresh) -> None:
        bridge = self.bridge
        by_name = {reader.name: reader for reader in bridge.readers}
        for name in diff.unchanged:
            log.debug("reload: sensor %r unchanged; its reader #%d keeps its schedule (read by %s)",
                      name, by_name[name].number, by_name[name].read_by)
        if not diff.sensors_changed:
            return
        gone = {s.name for s in diff.removed}
        mappings = {name: m for name, m in bridge.mappings.items() if name not in gone}
        mappings.update({name: mapping for name, (_, mapping) in fresh.items()})
        self._set_up_on_agent({name: mappings[name] for name in fresh})
        # The mappings first: a set-up retried from here on (the control loop) must see the new ones.
        bridge.mappings = mappings
        leaving = [by_name[s.name] for s in diff.removed] + [by_name[old.name] for old, _ in diff.changed]
        finished = _stop_all(leaving)
        for sensor in diff.removed:
            log.info("reload: sensor %r removed; its reader stopped after %d reads (what it read is still delivered)",
                     sensor.name, by_name[sensor.name].health.reads)
        for old, new in diff.changed:
            if finished[old.name]:
                fresh[new.name][0].health = by_name[old.name].health
            log.info("reload: sensor %r changed (%s); its reader starts anew", new.name,
                     ", ".join(what_changed(old, new)))
        for sensor in diff.added:
            log.info("reload: sensor %r added", sensor.name)
        kept = [fresh[r.name][0] if r.name in fresh else r for r in bridge.readers if r.name not in gone]
        bridge.readers = kept + [fresh[s.name][0] for s in diff.added]
        for name in gone:
            bridge.latest.remove(name)
        for name, (reader, _) in fresh.items():
            # Sensors that use this one's values (peers) find the new reader by name from now on.
            bridge.latest.add(reader)
            bridge.restore_state(reader)
            reader.start()
            log.debug("reload: sensor %r has a new reader #%d (read by %s)", name, reader.number, reader.read_by)
            # The agent may still show it offline from before it was removed or changed.
            bridge._online_changed(name, reader.health.online)

    def _set_up_on_agent(self, mappings: dict[str, SensorMapping]) -> None:
        """Create and rename metrics of new and changed sensors on the agent, then route their readings.

        Over the open connection; while it is down (or a full set-up is still due) the
        readings of these sensors wait in the outbox until the next full set-up.
        """
        from pibridge.agent.errors import AgentConnectionLost, PibridgeAgentError
        from pibridge.bridge.reconcile import reconcile

        bridge = self.bridge
        if not bridge.connected or bridge.client is None:
            return  # the next connection sets up every configured sensor
        names = set(mappings)
        if bridge._reconcile_at is not None:
            # A full set-up is due anyway (the agent refused one earlier): it covers these too.
            bridge.delivery.reroute(bridge.registry.routes(), hold=names)
            return
        try:
            report = reconcile(bridge.client, bridge.registry, [(n, m.definitions()) for n, m in mappings.items()])
        except AgentConnectionLost:
            bridge.delivery.reroute(bridge.registry.routes(), hold=names)
            return
        except (PibridgeAgentError, OSError) as exc:
            log.warning("reload: setting up sensors %s on the agent failed (%s); their readings wait in the "
                        "outbox until it works", ", ".join(sorted(names)), exc)
            bridge.delivery.reroute(bridge.registry.routes(), hold=names)
            bridge._reconcile_at = time.monotonic()
            return
        if report.failed:
            bridge._reconcile_at = time.monotonic()
        bridge.delivery.reroute(bridge.registry.routes(), hold=report.failed)

    # -- the rest ---------------------------------------------------------------------

    def _apply_log_level(self, diff: ConfigDiff) -> None:
        # First, so that the rest of the reload is logged at the new level.
        if diff.log_level is None:
            return
        if self.keep_log_level:
            log.info("reload: [log] level = %s, but --log-level %s stays", diff.log_level, self.keep_log_level)
        else:
            logging.getLogger().setLevel(diff.log_level.upper())
            log.info("reload: log level is %s now", diff.log_level)

    def _apply_settings(self, diff: ConfigDiff) -> None:
        bridge = self.bridge
        storage = bridge.config.storage
        # Plain attributes their threads read on every turn.  [agent] reprovision needs nothing:
        # it is read from bridge.config when the agent deletes the client.
        bridge.delivery.ack_window = storage.ack_window
        bridge.outbox.max_bytes = storage.outbox_max_bytes
        bridge.outbox.max_age = storage.outbox_max_age
        bridge.outbox.commit_interval = storage.commit_interval
        for (section, key), value in diff.live.items():
            log.info("reload: [%s] %s = %s from now on", section, key, _shown(value))


def _stop_all(readers: list[SensorReader]) -> dict[str, bool]:
    """Stop readers together and wait for them; name -> whether the reader ended (its device closed)."""
    for reader in readers:
        reader.stop()
    deadline = time.monotonic() + STOP_TIMEOUT
    finished = {}
    for reader in readers:
        finished[reader.name] = reader.join(max(0.1, deadline - time.monotonic()))
        if not finished[reader.name]:
            log.error("reload: the reader of sensor %r did not stop; its device may be hung", reader.name)
    return finished


def _summary(diff: ConfigDiff) -> str:
    parts = [f"sensors: {len(diff.added)} added, {len(diff.removed)} removed, {len(diff.changed)} changed, "
             f"{len(diff.unchanged)} unchanged"]
    if diff.restart:
        parts.append(f"{len(diff.restart)} settings wait for a restart")
    return ", ".join(parts)


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, str):
        return repr(value)
    return str(value)
