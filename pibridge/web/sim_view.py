"""The simulator's page: what the agent received, like the agent's own dashboard would show it.

``pibridge sim --http 127.0.0.1:8089`` and ``pibridge demo`` serve it.  Clients,
their sensors, metrics with units and last values, and a chart of every pushed
value at its original timestamp: readings buffered during an outage show up as
a gap that fills in when the bridge replays its outbox, and the page marks
the values that arrived late.

Paths:

``/``               the page (polls the two below every second)
``/api/agent``      clients, sensors, metrics (with units and last values), the broker's state
``/api/values``     pushed values with an ``id`` above ``?after=N``, at most :data:`PAGE` per answer;
                    without ``after`` the newest :data:`PAGE`
``/metrics``        values received per client, sensor and metric (Prometheus text format)
``/healthz``        200 while the broker runs and the agent logic is subscribed, else 503
``POST /api/cut-agent``  take the broker away for :data:`CUT_SECONDS` (a fault for the demo); needs
                    the header ``X-Pibridge: 1``

Threading: handlers run in the web server's request threads and read the
simulator's store (which has its own lock); the cut runs in a thread of its own,
as stopping the broker takes a moment.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from pibridge.web.prometheus import CONTENT_TYPE, Exposition
from pibridge.web.server import Response, View, json_response, text_response
from pibridge.web.units import symbol

#: Values per answer of /api/values.
PAGE = 5000
#: How long "cut the agent" takes the broker away.
CUT_SECONDS = 30.0
#: Seconds the /api/agent answer may be old.
REFRESH = 0.5


class SimView(View):
    """Answers for the simulator's page, read from a running :class:`pibridge.sim.Simulator`."""

    page = "sim.html"

    def __init__(self, sim: Any, cut_seconds: float = CUT_SECONDS):
        self.sim = sim
        self.cut_seconds = float(cut_seconds)
        self.cut_until: float | None = None
        self._lock = threading.Lock()
        self._cached: tuple[float, dict] | None = None

    def routes(self):
        return {
            "/api/agent": lambda q: json_response(self.agent()),
            "/api/values": self._values,
            "/metrics": lambda q: text_response(self.metrics(), content_type=CONTENT_TYPE),
            "/healthz": self._healthz,
        }

    def actions(self):
        return {"/api/cut-agent": self._cut}

    # -- data ------------------------------------------------------------------------

    def agent(self) -> dict:
        with self._lock:
            now = time.time()
            if self._cached is not None and now - self._cached[0] < REFRESH:
                return self._cached[1]
            store = self.sim.store
            clients = []
            for client in store.clients():
                sensors = []
                for sensor in store.sensors(client["client_id"]):
                    metrics = store.metrics(client["client_id"], sensor["sensor_id"])
                    for m in metrics:
                        m["unit"] = symbol(m["value_unit"], m["value_annotation"])
                    sensors.append({**sensor, "metrics": metrics})
                clients.append({**client, "sensors": sensors})
            received = sum(row["count"] for row in store.value_counts())
            if self.cut_until is not None and now >= self.cut_until and self.sim.broker_running:
                self.cut_until = None
            data = {
                "clients": clients,
                "received": received,
                "broker_running": self.sim.broker_running,
                "cut_until": self.cut_until,
                "cut_seconds": self.cut_seconds,
                "faults": self.sim.faults.describe(),
                "api": f"{self.sim.host}:{self.sim.api_port}",
            }
            self._cached = (now, data)
            return data

    def _values(self, query: dict) -> Response:
        try:
            after = int(query["after"][0]) if "after" in query else -1
        except ValueError:
            return text_response("after must be a whole number\n", 400)
        rows = self.sim.store.values_after(after, PAGE)
        values = [[r["id"], r["client_id"], r["sensor_id"], r["metric_id"], r["value"], r["timestamp_ms"],
                   r["received_at"]] for r in rows]
        last = values[-1][0] if values else max(after, 0)
        return json_response({"last_id": last, "more": len(values) == PAGE, "values": values})

    def _healthz(self, query: dict) -> Response:
        agent = self.sim.agent
        ok = self.sim.broker_running and agent is not None and agent.wait_ready(0)
        return text_response("ok\n" if ok else "the simulated agent is not reachable now\n", 200 if ok else 503)

    def cut(self) -> str | None:
        """Take the broker away for :attr:`cut_seconds` (the page's button, the demo's keyboard).

        Returns None once the outage has begun (the broker comes back by itself), else why not.
        Returns at once: the broker is stopped in a thread of its own.
        """
        with self._lock:
            if self.cut_until is not None and time.time() < self.cut_until:
                return f"the agent is cut off already, until {time.strftime('%H:%M:%S', time.localtime(self.cut_until))}"
            if not self.sim.broker_running:
                return "the broker is not running"
            self.cut_until = time.time() + self.cut_seconds
            self._cached = None
        threading.Thread(target=self.sim.drop_api_listener, args=(self.cut_seconds,), name="web-cut",
                         daemon=True).start()
        return None

    def _cut(self) -> Response:
        problem = self.cut()
        if problem:
            return json_response({"cut_until": self.cut_until, "problem": problem}, 409)
        return json_response({"cut_until": self.cut_until, "problem": None})

    def metrics(self) -> str:
        store = self.sim.store
        names: dict[tuple[str, str], tuple[str, str]] = {}
        for client in store.clients():
            for sensor in store.sensors(client["client_id"]):
                for m in store.metrics(client["client_id"], sensor["sensor_id"]):
                    names[(sensor["sensor_id"], m["metric_id"])] = (sensor["name"], m["name"])
        out = Exposition()
        out.family("pibridge_sim_values_received_total", "counter",
                   "Values the simulated agent stored, per client, sensor and metric.")
        for row in store.value_counts():
            sensor_name, metric_name = names.get((row["sensor_id"], row["metric_id"]), ("", ""))
            out.sample("pibridge_sim_values_received_total", row["count"], {
                "client_id": row["client_id"], "sensor_id": row["sensor_id"], "metric_id": row["metric_id"],
                "sensor": sensor_name, "metric": metric_name,
            })
        out.family("pibridge_sim_broker_up", "gauge", "1 while the simulator's broker runs.")
        out.sample("pibridge_sim_broker_up", self.sim.broker_running)
        return out.text()
