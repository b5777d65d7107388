"""The daemon's page: agent connection, outbox, sensors with live charts, ``/metrics``.

``[http]`` in the config turns it on (see :mod:`pibridge.web.settings`);
:class:`pibridge.bridge.daemon.Bridge` creates a :class:`BridgePage`, taps the
readers' sink into its :class:`~pibridge.web.history.History` and starts it.

Paths (all read-only):

``/``             the page (polls the three below every second)
``/api/status``   the same JSON as ``pibridge status --json``, live
``/api/sensors``  per sensor: driver, interval, health, metrics with units and last values
``/api/history``  chart points newer than ``?after=N`` (a sequence number the answer carries)
``/metrics``      Prometheus text format
``/healthz``      200 "ok" while the agent is connected and the outbox is writable, else 503 with the reasons

Threading: the handlers run in the web server's request threads.  They read
the bridge's counters (plain attributes) and ask the outbox for its figures
at most once per :data:`REFRESH` seconds, whatever the number of requests, so
a busy page cannot slow the delivery thread down.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from pibridge.web.history import History, chartable
from pibridge.web.prometheus import CONTENT_TYPE, Exposition
from pibridge.web.server import Response, View, WebServer, json_response, text_response
from pibridge.web.settings import HttpSettings
from pibridge.web.units import prometheus_suffix, quantity_units, symbol

log = logging.getLogger("pibridge.web")

#: Seconds an answer's figures may be old.
REFRESH = 0.5


def resident_bytes() -> int | None:
    """This process's resident memory (RSS), from /proc; None where there is no /proc."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class BridgeView(View):
    """Answers for the daemon's page, from a running :class:`~pibridge.bridge.daemon.Bridge`."""

    page = "bridge.html"

    def __init__(self, bridge: Any, history: History):
        self.bridge = bridge
        self.history = history
        self._lock = threading.Lock()
        self._cached: tuple[float, dict] | None = None
        self._sensors = self._describe_sensors()

    # -- data --------------------------------------------------------------------------

    def _describe_sensors(self) -> list[dict]:
        out = []
        for sensor in self.bridge.config.enabled_sensors:
            mapping = self.bridge.mappings.get(sensor.name)
            if mapping is None:
                continue
            metrics = []
            for quantity, metric in mapping.metrics.items():
                if metric.drop:
                    continue
                unit, value_type, annotation = quantity_units(mapping.quantities[quantity])
                metrics.append({
                    "quantity": quantity,
                    "name": metric.name,
                    "unit": symbol(unit, annotation),
                    "value_unit": unit,
                    "value_type": value_type,
                    "value_annotation": annotation,
                })
            out.append({"name": sensor.name, "driver": sensor.driver, "interval": sensor.interval,
                        "metrics": metrics})
        return out

    def status(self) -> dict:
        """``pibridge status --json``'s shape: storage_dir, running, state_age_s, state, outbox; at most REFRESH s old."""
        from pibridge.bridge.status import outbox_json

        with self._lock:
            now = time.time()
            if self._cached is not None and now - self._cached[0] < REFRESH:
                return self._cached[1]
            bridge = self.bridge
            try:
                state = bridge.snapshot()
            except RuntimeError:
                # The control thread changed the registry while we copied it; the last answer will do.
                if self._cached is not None:
                    return self._cached[1]
                raise
            stats = bridge.outbox.stats()
            data = {
                "storage_dir": str(bridge.storage),
                "running": True,
                "state_age_s": 0.0,  # the live state, not a file's copy
                "state": state,
                "outbox": {**outbox_json(stats, now), "write_errors": stats.write_errors},
            }
            self._cached = (now, data)
            return data

    def sensors(self) -> list[dict]:
        sensors_state = self.status()["state"]["sensors"]
        out = []
        for sensor in self._sensors:
            health = sensors_state.get(sensor["name"], {})
            metrics = []
            for metric in sensor["metrics"]:
                last = self.history.last(sensor["name"], metric["quantity"])
                metrics.append({**metric, "last_value": last[1] if last else None,
                                "last_timestamp_ms": last[0] if last else None})
            out.append({**sensor, **{k: v for k, v in health.items() if k != "last_values"},
                        "metrics": metrics})
        return out

    def health(self) -> tuple[bool, list[str]]:
        info = self.status()
        problems = []
        agent = info["state"]["agent"]
        if not agent["connected"]:
            problems.append("agent not connected" + (f": {agent['problem']}" if agent.get("problem") else ""))
        if not info["outbox"]["healthy"]:
            problems.append(f"outbox not writable: {info['outbox']['last_error']}")
        return not problems, problems

    # -- answers -------------------------------------------------------------------------

    def routes(self):
        return {
            "/api/status": lambda q: json_response(self.status()),
            "/api/sensors": lambda q: json_response(self.sensors()),
            "/api/history": self._history,
            "/metrics": lambda q: text_response(self.metrics(), content_type=CONTENT_TYPE),
            "/healthz": self._healthz,
        }

    def _history(self, query: dict) -> Response:
        try:
            after = int(query.get("after", ["0"])[0])
        except ValueError:
            return text_response("after must be a whole number\n", 400)
        sequence = self.history.sequence
        return json_response({"sequence": sequence, "window_s": self.history.window_seconds,
                              "points": self.history.since(after)})

    def _healthz(self, query: dict) -> Response:
        ok, problems = self.health()
        return text_response("ok\n" if ok else "\n".join(problems) + "\n", 200 if ok else 503)

    def metrics(self) -> str:
        info = self.status()
        state, outbox = info["state"], info["outbox"]
        agent, delivery = state["agent"], state["delivery"]
        out = Exposition()

        def one(name: str, kind: str, help_text: str, value: float, labels: dict | None = None) -> None:
            out.family(name, kind, help_text)
            out.sample(name, value, labels)

        one("pibridge_agent_connected", "gauge", "1 while connected to the TeamViewer IoT Agent.", agent["connected"])
        one("pibridge_agent_reconnects_total", "counter", "Connections to the agent after the first.",
            agent.get("reconnects", 0))
        if agent.get("last_contact"):
            one("pibridge_agent_last_contact_timestamp_seconds", "gauge", "When the agent last answered (Unix time).",
                agent["last_contact"])
        one("pibridge_agent_refusals_total", "counter", "Pushes the agent answered with an error.",
            delivery.get("refused", 0))
        out.family("pibridge_readings_read_total", "counter", "Successful reads, per sensor.")
        out.family("pibridge_sensor_read_errors_total", "counter", "Failed reads, per sensor.")
        out.family("pibridge_sensor_online", "gauge", "1 while the sensor reads (0 after offline_after failures).")
        out.family("pibridge_sensor_error_streak", "gauge", "Failed reads in a row, per sensor.")
        out.family("pibridge_sensor_last_reading_timestamp_seconds", "gauge", "Time of the last good read.")
        for name, s in state["sensors"].items():
            labels = {"sensor": name}
            out.sample("pibridge_readings_read_total", s["reads"], labels)
            out.sample("pibridge_sensor_read_errors_total", s["failures"], labels)
            out.sample("pibridge_sensor_online", s["online"], labels)
            out.sample("pibridge_sensor_error_streak", s["error_streak"], labels)
            if s.get("last_timestamp_ms"):
                out.sample("pibridge_sensor_last_reading_timestamp_seconds", s["last_timestamp_ms"] / 1000, labels)
        one("pibridge_readings_pushed_total", "counter",
            "Readings the agent's broker acknowledged, live and replayed.", delivery["delivered"])
        one("pibridge_readings_replayed_total", "counter", "Readings acknowledged after a replay from the outbox.",
            delivery.get("replayed", 0))
        one("pibridge_readings_buffered_total", "counter",
            "Readings written to the outbox because the agent was away or slow.", delivery.get("buffered", 0))
        one("pibridge_readings_spilled_total", "counter",
            "Of the buffered readings, those sent once but not acknowledged in time.", delivery["spilled"])
        out.family("pibridge_readings_dropped_total", "counter", "Readings that never reach the agent, by cause.")
        dropped = dict(outbox["dropped_reason"])
        dropped["unroutable"] = delivery.get("unroutable", 0)
        for cause in ("max_bytes", "max_age", "memory_limit", "corrupt", "undecodable", "unroutable"):
            dropped.setdefault(cause, 0)
        for cause, count in sorted(dropped.items()):
            out.sample("pibridge_readings_dropped_total", count, {"cause": cause})
        one("pibridge_outbox_readings", "gauge", "Readings waiting in the outbox.", outbox["depth"])
        one("pibridge_outbox_bytes", "gauge", "Bytes the outbox file's live pages take.", outbox["bytes"])
        one("pibridge_outbox_oldest_reading_age_seconds", "gauge", "Age of the oldest waiting reading (0 when empty).",
            outbox["oldest_age_s"] or 0.0)
        one("pibridge_outbox_write_errors_total", "counter", "Failed writes of the outbox file.",
            outbox.get("write_errors", 0))
        one("pibridge_outbox_healthy", "gauge", "1 while the outbox file can be written.", outbox["healthy"])
        self._values(out)
        rss = resident_bytes()
        if rss is not None:
            one("process_resident_memory_bytes", "gauge", "Resident memory of the pibridge process.", rss)
        one("process_start_time_seconds", "gauge", "Start of the pibridge process (Unix time).", state["started_at"])
        return out.text()

    def _values(self, out: Exposition) -> None:
        for sensor in self._sensors:
            for metric in sensor["metrics"]:
                last = self.history.last(sensor["name"], metric["quantity"])
                number = chartable(last[1]) if last else None
                if number is None:
                    continue
                suffix, factor = prometheus_suffix(metric["value_unit"], metric["value_annotation"])
                name = f"pibridge_sensor_{suffix}"
                out.family(name, "gauge", f"Last value pushed, in {suffix.replace('_', ' ')}.")
                out.sample(name, number * factor, {"sensor": sensor["name"], "metric": metric["name"]})


class BridgePage:
    """The daemon's web page: its history and its server, started and stopped with the bridge."""

    def __init__(self, bridge: Any, settings: HttpSettings):
        self.settings = settings
        self.bridge = bridge
        self.history = History(settings.history_seconds, settings.history_points)
        for sensor in bridge.config.enabled_sensors:
            self.history.plan(sensor.name, sensor.interval)
        self.server: WebServer | None = None

    def start(self) -> None:
        """Listen; a port that cannot be opened is logged and the bridge carries on without its page."""
        s = self.settings
        try:
            self.server = WebServer(BridgeView(self.bridge, self.history), s.host, s.port,
                                    max_connections=s.max_connections)
        except OSError as exc:
            log.error("the web page cannot listen on %s:%d (%s); set another listen address in [http] "
                      "(readings are delivered as usual)", s.host, s.port, exc.strerror or exc)
            return
        self.server.start()
        if s.loopback_only:
            log.info("web page on %s", self.server.url)
        else:
            log.warning("web page on %s:%d, reachable from the network without a password: it shows client ID, "
                        "sensor values and outbox figures (docs/web.md)", s.host, self.server.port)

    @property
    def url(self) -> str | None:
        return self.server.url if self.server is not None else None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
