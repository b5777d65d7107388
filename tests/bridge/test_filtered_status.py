"""Readings the filters hold back or drop are counted by cause, visible in ``pibridge status``, logged once.

A real ``pibridge run`` subprocess against the simulator, with mock sensors.
"""

from __future__ import annotations

import re

import pytest

from daemon_support import Daemon, wait_for

SENSOR = {
    "name": "cellar", "driver": "mock", "interval": 0.2, "metrics": ["temperature", "pressure"], "seed": 4,
}
TABLES = """
[sensors.metric.pressure]
filters = [{ valid = [1100, 1200] }]

[sensors.metric.temperature]
filters = [{ median = 3, send_every = 2 }]
"""


@pytest.fixture
def daemon(sim, tmp_path):
    d = Daemon(tmp_path, sim, [SENSOR], name="filtered")
    d.config.write_text(d.config.read_text() + TABLES)
    yield d
    d.stop_quietly()


def test_dropped_and_held_readings_are_counted_shown_and_logged_once(daemon, sim):
    daemon.start()
    client = daemon.client_id()

    def counted():
        state = daemon.state() or {}
        not_sent = ((state.get("sensors") or {}).get("cellar") or {}).get("not_sent") or {}
        dropped = (not_sent.get("pressure") or {}).get("dropped", {}).get("out_of_range", 0)
        return dropped >= 5 and not_sent
    not_sent = wait_for(counted, 30, "5 dropped pressure readings in the state file")
    assert set(not_sent["temperature"]["held"]) == {"window_filling", "between_sends"}
    assert not_sent["temperature"]["held"]["window_filling"] == 2  # a window of 3 fills once

    sensor = next(s for s in sim.store.sensors(client) if s["name"] == "cellar")
    metrics = {m["metric_id"]: m["name"] for m in sim.store.metrics(client, sensor["sensor_id"])}
    wait_for(lambda: any(metrics[r["metric_id"]] == "temperature" for r in sim.store.values(client)), 20,
             "a median temperature at the agent")
    assert not any(metrics[r["metric_id"]] == "pressure" for r in sim.store.values(client))

    out = daemon.status().stdout
    line = next(line for line in out.splitlines() if "pressure: not sent" in line)
    assert re.search(r"pressure: not sent: dropped (\d+) \(out_of_range \1\)", line), line
    assert re.search(r"temperature: not sent: held \d+ \(between_sends \d+, window_filling 2\)", out), out
    assert daemon.terminate() == 0
    log = daemon.log_text()
    assert log.count("is outside valid = [1100, 1200]; the reading is dropped") == 1, log[-2000:]
