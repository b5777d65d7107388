"""``pibridge run``: the bridge daemon.

What it does, in order:

1. reads the config (a bad config stops it here, with every problem listed);
2. opens the outbox, starts reading the sensors (the read pool) and the
   delivery thread, and tells systemd it is ready: from here on no reading
   is lost, whether the agent answers or not;
3. gets a client certificate if it has none (``provision``), connects to the
   agent and makes the agent's sensors and metrics match the config
   (:mod:`pibridge.bridge.reconcile`), then delivers buffered and live
   readings.  An unreachable agent is retried for as long as it takes;
4. on SIGHUP reads the config again and applies what changed
   (:mod:`pibridge.bridge.reload`), without reconnecting;
5. on SIGTERM or SIGINT stops the readers, puts every reading the agent has
   not acknowledged into the outbox and exits 0.

Threads: the main thread is the *control thread* (connection events,
reconciliation, provisioning, sensor online/offline updates, the state file
for ``pibridge status``, the systemd watchdog); the read pool's scheduler and
workers (:mod:`pibridge.bridge.read_pool`: one per shared bus and a few more);
the delivery thread; paho's network thread; with ``[http]`` the web page's
threads (:mod:`pibridge.web.bridge_view`, read-only).  Paho's callbacks only
put events on the control queue.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pibridge import sdnotify
from pibridge.agent.cli import identity_directory
from pibridge.bridge.config import Config, ConfigError, SensorConfig, config_path, load_config
from pibridge.bridge.counters import FILE_NAME as COUNTERS_FILE
from pibridge.bridge.counters import CounterStore
from pibridge.bridge.delivery import Delivery
from pibridge.bridge.mapping import SensorMapping
from pibridge.bridge.peers import LatestValues
from pibridge.bridge.read_pool import ReadPool
from pibridge.bridge.registry import FILE_NAME as REGISTRY_FILE
from pibridge.bridge.registry import Registry, RegistryError
from pibridge.bridge import state
from pibridge.bridge.logs import setup_logging
from pibridge.bridge.scheduler import SensorReader
from pibridge.bridge.state import STATE_FILE  # noqa: F401  (where the benches find it)
from pibridge.outbox import OutboxError

log = logging.getLogger("pibridge")

#: The storage directory holds the private key and the readings: the daemon's user only.
STORAGE_MODE = 0o700
#: Everything else the daemon creates (files 0600, directories 0700), whatever the umask it
#: was started with; the systemd unit sets the same (UMask=0077).
UMASK = 0o077

#: Names inside the storage directory.
OUTBOX_FILE = "outbox.db"



#: How often the state file for ``pibridge status`` is rewritten (seconds): rarely, to spare the SD card.
STATE_INTERVAL = 5.0
#: Longest pause between attempts to provision.
RETRY_MAX = 15.0
#: While the same problem persists, one summary line this often (seconds) instead of a line per attempt.
PROBLEM_SUMMARY_EVERY = 600.0
#: Longest pause between attempts to reconnect.
RECONNECT_MAX = 5.0
#: How often the agent is asked to answer a ping while connected (seconds).  The broker
#: acknowledges pushes even when the agent behind it no longer serves us (a deleted
#: client keeps its open connection, but is not heard any more); only an answer proves
#: the agent is there.
PING_INTERVAL = 10.0
#: Pause before setting up sensors again after the agent refused or did not answer (seconds).
RECONCILE_RETRY = 5.0
#: Shortest time between two set-ups the agent's push errors ask for (seconds).  Error 15 or 16
#: for a push means the agent lost a sensor or metric; a burst of them (or of forged ones) asks
#: for one set-up, not one per message.
RESETUP_MIN_INTERVAL = 30.0

class Bridge:
    """The whole daemon, usable in-process (``pibridge demo``, tests) as well as by :func:`main`.

    ``start()`` returns at once; ``run(stop_event)`` is the control loop
    (call it from the thread that owns the bridge, usually the main thread);
    ``close()`` shuts everything down and keeps every unacknowledged reading.
    """

    #: The level from ``--log-level``, which a reload keeps whatever ``[log] level`` says.
    log_level_override: str | None = None

    def __init__(self, config: Config):
        self.config = config
        self.storage = Path(config.storage.dir)
        self.client: Any = None
        self.client_id: str | None = None
        self.connected = False
        self.last_contact: float | None = None
        self.connected_since: float | None = None
        self.connections = 0
        self.problem: str | None = None
        self.revoked = False
        self.started_at = time.time()
        self.readers: list[SensorReader] = []
        #: Reads every sensor: one scheduler thread, one worker per bus, a few shared ones.
        self.pool = ReadPool()
        self.mappings: dict[str, Any] = {}
        self.push_errors = 0
        self._control: queue.SimpleQueue = queue.SimpleQueue()
        self._reported_online: dict[str, bool] = {}
        self._next_attempt = 0.0
        self._backoff = 1.0
        self._problem_since = 0.0
        self._problem_attempts = 0
        self._problem_summary_at = 0.0
        self._reconcile_at: float | None = None
        self._last_reconcile = float("-inf")
        self._next_state = 0.0
        self._next_ping = 0.0
        self._closed = False
        #: Why the daemon must exit with status 1 (a thread died); None while all is well.
        self.failed: str | None = None
        self.outbox: Any = None
        self.registry: Registry | None = None
        self.delivery: Delivery | None = None
        self.counters: CounterStore | None = None
        self.page: Any = None
        self.sink: Any = None

    # -- start ------------------------------------------------------------------

    def start(self) -> None:
        """Open the outbox and registry, start readers and delivery.  Returns at once.

        With a client identity on disk it also starts connecting (in the background);
        without one, provisioning waits for :meth:`run`, as it needs the agent.
        """
        from pibridge.agent.identity import CERT_FILE
        from pibridge.outbox import Outbox

        storage = self.config.storage
        try:
            if not self.storage.is_dir():
                self.storage.mkdir(mode=STORAGE_MODE, parents=True, exist_ok=True)
                os.chmod(self.storage, STORAGE_MODE)  # mkdir's mode is masked by the umask
        except OSError as exc:
            raise StartupError(
                f"cannot create the storage directory {self.storage}: {exc.strerror}; "
                "create it and make it writable for the user pibridge runs as"
            ) from None
        self.registry = Registry(self.storage / REGISTRY_FILE)
        self.outbox = Outbox(
            self.storage / OUTBOX_FILE,
            max_bytes=storage.outbox_max_bytes,
            max_age=storage.outbox_max_age,
            commit_interval=storage.commit_interval,
            offline_commit_interval=storage.offline_commit_interval,
        )
        self._check_room(storage.outbox_max_bytes)
        self.delivery = Delivery(self.outbox, ack_window=storage.ack_window, confirm=True)
        self.delivery.on_confirm_wanted = lambda: self._control.put(("confirm",))
        # Readers hand their readings to delivery, through the page's history when it is on.
        self.sink = self.delivery.submit
        if self.config.http is not None:
            from pibridge.web.bridge_view import BridgePage

            self.page = BridgePage(self, self.config.http)
            self.sink = self.page.history.tap(self.sink)
        self.latest = LatestValues()
        self.counters = CounterStore(self.storage / COUNTERS_FILE)
        for sensor in self.config.enabled_sensors:
            reader, self.mappings[sensor.name] = self.new_reader(sensor)
            self.restore_state(reader)
            self.readers.append(reader)
            self.latest.add(reader)
        log.info(
            "starting %d sensors; the outbox %s holds %d readings",
            len(self.readers),
            self.storage / OUTBOX_FILE,
            self.outbox.stats().depth,
        )
        self.delivery.start()
        if (identity_directory(self.storage) / CERT_FILE).exists():
            # A restart: no network needed for the identity, so start connecting before the
            # readers compete for the CPU; the first push then follows start-up at once.
            self._connect()
        for reader in self.readers:
            reader.start()
        if self.page is not None:
            self.page.start()

    def new_reader(self, sensor: SensorConfig) -> tuple[SensorReader, SensorMapping]:
        """A reader for *sensor*, not started yet, and the mapping it applies (at start and on reload)."""
        driver = sensor.create_driver()
        driver.peers(self.latest)
        mapping = SensorMapping(sensor, list(sensor.quantities) or driver.quantities())
        reader = SensorReader(
            sensor.name,
            driver,
            interval=sensor.interval,
            sink=self.sink,
            mapping=mapping,
            offline_after=sensor.offline_after,
            on_online_change=self._online_changed,
            keep_state=self.counters.save,
            pool=self.pool,
        )
        return reader, mapping

    def restore_state(self, reader: SensorReader) -> None:
        """Give *reader*'s driver what an earlier run (or the reader it replaces) saved.

        Called just before the reader starts, after the one it replaces has stopped and saved.
        """
        name, driver = reader.name, reader.driver
        saved = self.counters.restored(name)
        if saved is None:
            return
        try:
            driver.restore(saved)
        except Exception as exc:  # nonsense in the file, or a third-party driver's bug: start afresh
            log.error("sensor %r: the saved state in %s is not usable (%s: %s); starting from 0",
                      name, self.storage / COUNTERS_FILE, type(exc).__name__, exc)
            return
        log.info("sensor %r: continuing from the saved state %s", name, saved)

    def _check_room(self, max_bytes: int) -> None:
        """A limit the disk cannot hold is no limit: say so (the outbox then drops for the full disk)."""
        try:
            fs = os.statvfs(self.storage)
        except OSError:
            return
        size = fs.f_blocks * fs.f_frsize
        if max_bytes > size:
            log.warning(
                "[storage] outbox_max_bytes = %d bytes is more than the whole file system of %s holds (%d bytes); "
                "when it fills up the outbox drops the oldest readings (counted as disk_full). Fix: set "
                "outbox_max_bytes below %d, or give the storage a larger disk",
                max_bytes, self.storage, size, size // 2,
            )

    # -- control loop -------------------------------------------------------------

    def run(self, stop: threading.Event, reload: threading.Event | None = None) -> None:
        """The control loop: until *stop* is set, keep the connection and the state file going.

        Whenever *reload* is set (SIGHUP), the config file is read again and what changed is applied.
        """
        watchdog = sdnotify.watchdog_interval()
        ping_every = watchdog / 2 if watchdog else None
        next_ping = 0.0
        while not stop.is_set() and self.failed is None:
            if reload is not None and reload.is_set():
                reload.clear()
                self.reload()
            now = time.monotonic()
            if ping_every is not None and now >= next_ping:
                sdnotify.watchdog()
                next_ping = now + ping_every
            self._tick(now)
            due = [self._next_state]
            if self.client is None:
                due.append(self._next_attempt)
            elif self.connected:
                due.append(self._next_ping)
            timeout = max(0.05, min(due) - now)
            if ping_every is not None:
                timeout = min(timeout, max(0.05, next_ping - now))
            try:
                event = self._control.get(timeout=min(timeout, 1.0))
            except queue.Empty:
                continue
            self._handle(event)

    def wake(self) -> None:
        """Make :meth:`run` look at its stop event now (safe from a signal handler)."""
        self._control.put(("wake",))

    def _tick(self, now: float) -> None:
        self._check_threads()
        if self.client is None and not self.revoked and now >= self._next_attempt:
            self._connect()
        elif self.client is not None and self.client.revoked and not self.revoked:
            self._client_revoked()
        if self._reconcile_at is not None and now >= self._reconcile_at and self.connected:
            self._reconcile()
        if self.connected and now >= self._next_ping:
            self._ping()
        if now >= self._next_state:
            self.write_state()
            self._next_state = now + STATE_INTERVAL

    def _check_threads(self) -> None:
        """A daemon with a dead thread would look alive and do nothing: exit instead (status 1)."""
        dead = [f"the reader of sensor {r.name!r}" for r in self.readers if r.ended_unasked()]
        threads = list(self.pool.dead())
        if self.delivery is not None and not self.delivery.is_alive():
            threads.append("delivery")
        if self.outbox is not None and not self.outbox.is_alive():
            threads.append("pibridge-outbox")
        dead += [f"thread {name}" for name in threads]
        if dead and self.failed is None:
            self.failed = f"{', '.join(dead)} ended"
            log.critical("%s; stopping with exit status 1 so that systemd restarts pibridge", self.failed)

    def _handle(self, event: tuple) -> None:
        kind = event[0]
        if kind == "connection":
            client, up = event[1], event[2]
            if client is not self.client:
                return
            if up:
                self.connected = True
                self._next_ping = time.monotonic() + PING_INTERVAL
                self.last_contact = self.connected_since = time.time()
                self.connections += 1
                self.problem = None
                log.info("connected to the agent at %s:%d", self.config.agent.host, self.config.agent.api_port)
                self._reconcile()
            elif self.connected:
                self.connected = False
                self.connected_since = None
                self.delivery.detach()
                log.warning("lost the connection to the agent; buffering readings until it is back")
        elif kind == "confirm":
            if self.connected:
                self._ping()
        elif kind == "online":
            self._report_online(event[1])
        elif kind == "push_error":
            self._push_error(event[1], event[2])

    # -- reload (SIGHUP) ----------------------------------------------------------------

    def reload(self) -> bool:
        """Apply the config file as it is now (:mod:`pibridge.bridge.reload`).  Control thread only.

        Returns False when the file has problems; the running config then stays.
        """
        from pibridge.bridge.reload import Reloader

        return Reloader(self, keep_log_level=self.log_level_override).reload()

    # -- connection -----------------------------------------------------------------

    def _connect(self) -> None:
        from pibridge.agent.client import AgentClient, Backoff
        from pibridge.agent.errors import PibridgeAgentError
        from pibridge.agent.identity import provision

        agent = self.config.agent
        try:
            identity = provision(
                identity_directory(self.storage),
                host=agent.host,
                port=agent.provision_port,
                ca_file=agent.ca_file,
                client_name=agent.client_name,
                timeout=agent.timeout,
            )
        except PibridgeAgentError as exc:
            self._retry_later(f"cannot get a client certificate from the agent: {exc}")
            return
        if self.registry.bind(identity.client_id):
            log.info("client ID changed to %s: sensors and metrics are set up again", identity.client_id)
            self._reported_online.clear()
        self.client_id = identity.client_id
        client = AgentClient(
            identity,
            host=agent.host,
            port=agent.api_port,
            ca_file=agent.ca_file,
            timeout=agent.timeout,
            on_connection_change=lambda up: self._control.put(("connection", client, up)),
            # The agent runs on the same Pi: trying again every few seconds costs nothing
            # and gets buffered readings moving soon after it is back.
            backoff=Backoff(initial=0.5, maximum=RECONNECT_MAX),
        )
        client.on_push_error = lambda sensor_id, error: self._control.put(("push_error", sensor_id, error))
        client.on_push_answered = self.delivery.push_answered
        try:
            client.start()
        except PibridgeAgentError as exc:
            client.stop()
            self._retry_later(f"cannot connect to the agent: {exc}")
            return
        self.client = client
        self._backoff = 1.0

    def _retry_later(self, problem: str) -> None:
        now = time.monotonic()
        if problem != self.problem:
            log.warning("%s; retrying (readings are kept in the outbox meanwhile)", problem)
            self._problem_since, self._problem_attempts = now, 0
            self._problem_summary_at = now + PROBLEM_SUMMARY_EVERY
        elif now >= self._problem_summary_at:
            log.warning("still %s: %d attempts in the last %.0f min; readings are kept in the outbox",
                        problem, self._problem_attempts + 1, (now - self._problem_since) / 60)
            self._problem_summary_at = now + PROBLEM_SUMMARY_EVERY
        self._problem_attempts += 1
        self.problem = problem
        self._next_attempt = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, RETRY_MAX)

    def _reconcile(self) -> None:
        from pibridge.agent.errors import AgentConnectionLost, PibridgeAgentError
        from pibridge.bridge.reconcile import reconcile

        self._reconcile_at = None
        self._last_reconcile = time.monotonic()
        wanted = [(name, mapping.definitions()) for name, mapping in self.mappings.items()]
        attached: list[dict] = []

        def deliver(ready) -> None:
            # Called right after the sensor list: what the agent confirmed flows while the rest is set up.
            routes = {name: r for name, r in self.registry.routes().items() if name in ready}
            if not routes:
                return
            self.delivery.attach(self.client, routes, waiting=[n for n in self.mappings if n not in routes])
            attached.append(routes)

        try:
            report = reconcile(self.client, self.registry, wanted, on_ready=deliver)
        except AgentConnectionLost:
            return
        except (PibridgeAgentError, OSError) as exc:
            log.warning(
                "setting up sensors on the agent failed (%s); readings wait in the outbox, trying again in %g s",
                exc,
                RECONCILE_RETRY,
            )
            self._reconcile_at = time.monotonic() + RECONCILE_RETRY
            return
        if report.failed or report.deferred:
            # The others are delivered meanwhile; the failed ones wait in the outbox and are tried again.
            self._reconcile_at = time.monotonic() + 6 * RECONCILE_RETRY
        elif report.changed:
            log.info("sensors and metrics on the agent match the config now")
        routes = {name: r for name, r in self.registry.routes().items() if name in report.ready}
        if not attached or attached[-1] != routes:
            self.delivery.attach(self.client, routes, waiting=[n for n in self.mappings if n not in routes])
        # Whatever changed while the agent was away (or what a new client has never been told).
        for reader in self.readers:
            self._report_online(reader.name)

    def _resetup_soon(self) -> None:
        """Set the sensors up again: at once, or when the last set-up is RESETUP_MIN_INTERVAL old."""
        when = max(time.monotonic(), self._last_reconcile + RESETUP_MIN_INTERVAL)
        if self._reconcile_at is None or when < self._reconcile_at:
            self._reconcile_at = when

    def _ping(self) -> None:
        """Make sure the agent still answers; if not, connect anew (which also tells whether we were deleted)."""
        from pibridge.agent.errors import AgentConnectionLost, AgentTimeout, PibridgeAgentError, ProtocolError

        self._next_ping = time.monotonic() + PING_INTERVAL
        mark = self.delivery.delivered
        try:
            self.client.ping()
        except AgentConnectionLost:
            return
        except (AgentTimeout, ProtocolError):
            # Only the echo of this ping counts: garbage on its answer topic is no answer.
            log.warning(
                "the agent did not answer a ping within %g s; sending the readings of the last %g s again "
                "and connecting anew",
                self.config.agent.timeout,
                PING_INTERVAL,
            )
            client, self.client = self.client, None
            self.connected = False
            client.stop()
            self.delivery.detach()
            self._next_attempt = 0.0
            return
        except PibridgeAgentError as exc:
            # An error is an answer too: the agent is there and has read everything before it.
            log.warning("the agent answered a ping with an error: %s", exc)
        self.delivery.confirm(mark)
        self.last_contact = time.time()

    def _client_revoked(self) -> None:
        from pibridge.agent.identity import remove_identity

        client, self.client = self.client, None
        self.connected = False
        client.stop()
        self.delivery.detach()
        identity_dir = identity_directory(self.storage)
        if self.config.agent.reprovision:
            log.warning(
                "the agent no longer accepts client %s (it was deleted there); "
                "getting a new certificate because reprovision = true",
                self.client_id,
            )
            remove_identity(client.identity)
            self._next_attempt = 0.0
            return
        self.revoked = True
        self.problem = f"client {self.client_id} was deleted on the agent"
        log.error(
            "the agent no longer accepts client %s (it was deleted there). Readings are kept in the outbox. "
            "To carry on under a new client ID, set reprovision = true in the [agent] section of %s "
            "(or delete %s) and restart pibridge",
            self.client_id,
            self.config.path,
            identity_dir,
        )

    # -- sensor state ---------------------------------------------------------------

    def _online_changed(self, name: str, online: bool) -> None:
        """A read worker: a sensor went offline or recovered."""
        self._control.put(("online", name))

    def _report_online(self, name: str) -> None:
        from pibridge.agent.client import SensorState
        from pibridge.agent.errors import PibridgeAgentError

        reader = next((r for r in self.readers if r.name == name), None)
        entry = self.registry.sensor(name) if self.registry else None
        if reader is None or entry is None or not self.connected:
            return
        online = reader.health.online
        if self._reported_online.get(name, True) == online:
            return
        try:
            self.client.update_sensor(
                entry.sensor_id, name=name, state=SensorState.ONLINE if online else SensorState.OFFLINE
            )
        except PibridgeAgentError as exc:
            log.warning("could not tell the agent that sensor %r is %s: %s", name, "online" if online else "offline", exc)
            return
        self._reported_online[name] = online

    def _push_error(self, sensor_id: str, error: Any) -> None:
        from pibridge.agent.errors import ErrorCode

        self.push_errors += 1
        name = next((n for n, r in self.registry.routes().items() if r.sensor_id == sensor_id), None)
        if self.push_errors <= 10 or self.push_errors % 1000 == 0:
            log.error("the agent refused values of sensor %r: %s (%d refusals so far)", name or sensor_id, error,
                      self.push_errors)
        if name is not None and getattr(error, "code", None) in (ErrorCode.UNKNOWN_SENSOR_ID,
                                                                  ErrorCode.UNKNOWN_METRIC_ID):
            self._resetup_soon()

    # -- state file ---------------------------------------------------------------------

    def snapshot(self) -> dict:
        """What ``pibridge status`` shows, as JSON-ready data (:func:`pibridge.bridge.state.snapshot`)."""
        return state.snapshot(self)

    def write_state(self) -> None:
        state.write(self)

    # -- stop -------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop readers, keep every unacknowledged reading in the outbox, disconnect.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.page is not None:
            self.page.stop()
        for reader in self.readers:
            reader.stop()
        deadline = time.monotonic() + 3.0
        for reader in self.readers:
            reader.join(max(0.1, deadline - time.monotonic()))
        self.pool.stop(max(0.1, deadline - time.monotonic()))
        if self.delivery is not None:
            drain = min(self.config.storage.ack_window, 2.0) if self.connected else 0.0
            if self.connected:
                self._confirm_before_stop(time.monotonic() + drain)
            if not self.delivery.stop(drain_timeout=drain):
                log.error("the delivery thread did not finish in time; the last readings may be lost")
        if self.client is not None:
            self.client.stop()
            self.client = None
        self.connected = False
        if self.outbox is not None:
            depth = self.outbox.stats().depth
            self.write_state()
            self.outbox.close()
            log.info("stopped; %d readings wait in the outbox", depth)


    def _confirm_before_stop(self, deadline: float) -> None:
        """Let the last pushes be acknowledged and confirmed, so a restart does not send them again."""
        from pibridge.agent.errors import PibridgeAgentError

        while self.delivery.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        mark = self.delivery.delivered
        try:
            self.client.ping()
        except PibridgeAgentError:
            return
        self.delivery.confirm(mark)


class StartupError(Exception):
    """The daemon cannot start; the message says why and what to do."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pibridge run", description="Run the bridge until SIGTERM or SIGINT.")
    parser.add_argument("-c", "--config", help="config file (default: $PIBRIDGE_CONFIG or /etc/pibridge/config.toml)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="overrides [log] level")
    args = parser.parse_args(argv)

    stop = threading.Event()
    bridge: Bridge | None = None

    def on_signal(signum, _frame):
        stop.set()
        if bridge is not None:
            bridge.wake()

    os.umask(UMASK)
    reload = threading.Event()

    def on_reload(signum, _frame):
        # The reload itself runs in the control loop, not here.
        reload.set()
        if bridge is not None:
            bridge.wake()

    # Installed first, so a stop request during start-up still ends in an orderly exit 0
    # (and a reload request is not taken for SIGHUP's default, which ends the process).
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_reload)
    path = config_path(args.config)
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"pibridge run: {exc}", file=sys.stderr)
        return 2
    setup_logging(args.log_level or config.log_level)
    bridge = Bridge(config)
    bridge.log_level_override = args.log_level
    try:
        bridge.start()
    except (StartupError, RegistryError, OutboxError) as exc:
        log.error("%s", exc)
        bridge.close()
        return 1
    sdnotify.ready()
    try:
        bridge.run(stop, reload)
    except Exception as exc:
        # A bug in the control thread: keep the readings (close below) and let systemd restart us.
        log.critical("the control thread failed (a bug; please report it); stopping with exit status 1",
                     exc_info=exc)
        bridge.failed = f"control thread: {type(exc).__name__}: {exc}"
    finally:
        log.info("stopping")
        sdnotify.stopping()
        bridge.close()
    return 0 if bridge.failed is None else 1
