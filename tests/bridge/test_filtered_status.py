"""Readings the filters hold back or drop are counted by cause, visible in ``pibridge status``, logged once.

A real ``pibridge run`` subprocess against the simulator, with mock sensors.
"""

from __future__ import annotations

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

    def pushed(name):
        sensor = next((s for s in sim.store.sensors(client) if s["name"] == "cellar"), None)
        if sensor is None:
            return []
        metrics = {m["metric_id"]: m["name"] for m in sim.store.metrics(client, sensor["sensor_id"])}
        return [r for r in sim.store.values(client) if metrics.get(r["metric_id"]) == name]

    wait_for(lambda: len(pushed("temperature")) >= 2, 20, "two median temperatures at the agent")
    assert daemon.terminate() == 0  # the state file is written once more at stop
    assert not pushed("pressure")

    not_sent = daemon.state()["sensors"]["cellar"]["not_sent"]
    dropped = not_sent["pressure"]["dropped"]["out_of_range"]
    assert dropped >= 3 and not_sent["pressure"]["held"] == {}
    held = not_sent["temperature"]["held"]
    assert held["window_filling"] == 2  # a window of 3 fills once
    assert held["between_sends"] >= 1 and set(held) == {"window_filling", "between_sends"}

    out = daemon.status().stdout
    assert f"pressure: not sent: dropped {dropped} (out_of_range {dropped})" in out, out
    assert f"temperature: not sent: held {sum(held.values())} (between_sends {held['between_sends']}, window_filling 2)" in out
    log = daemon.log_text()
    assert log.count("is outside valid = [1100, 1200]; the reading is dropped") == 1, log[-2000:]
