"""End to end on a serial sensor: a real ``pibridge run`` reads a PMS5003 stand-in over a pseudo-terminal
and pushes its values to the simulator's agent, as it does for any other sensor."""

from __future__ import annotations

import pytest

from daemon_support import Daemon, wait_for
from tests.support.chips.pms5003 import PMS5003StandIn


@pytest.fixture
def particle_sensor():
    with PMS5003StandIn(period=0.05, pm1_0=4, pm2_5=9, pm10=14, particles_0_3um=1234) as stand_in:
        yield stand_in


def test_pms5003_readings_reach_the_agent(sim, tmp_path, particle_sensor):
    daemon = Daemon(tmp_path / "d", sim, [{"name": "air", "driver": "pms5003", "interval": 1.0,
                                           "port": particle_sensor.path, "timeout": 3.0}])
    daemon.start()
    try:
        cid = daemon.client_id()
        sensor = wait_for(lambda: daemon.alive() and next(
            (s for s in sim.store.sensors(cid) if s["name"] == "air"), None), 30, "the sensor on the agent")
        metrics = {m["name"]: m for m in sim.store.metrics(cid, sensor["sensor_id"])}
        assert metrics["pm2_5"]["value_type"] == "double" and metrics["pm2_5"]["value_annotation"] == "µg/m³"
        assert metrics["particles_0_3um"]["value_annotation"] == "particles/0.1 L"
        by_id = {m["metric_id"]: name for name, m in metrics.items()}
        sim.store.wait_for_values(cid, 2 * len(metrics), timeout=30, sensor_id=sensor["sensor_id"])
        particle_sensor.values["pm2_5"] = 55
        wait_for(lambda: any(by_id[r["metric_id"]] == "pm2_5" and r["value"] == 55
                             for r in sim.store.values(cid, sensor["sensor_id"])), 30, "the new PM2.5 value")
        pushed = {by_id[r["metric_id"]]: r["value"] for r in sim.store.values(cid, sensor["sensor_id"])}
        assert pushed["pm10"] == 14 and pushed["particles_0_3um"] == 1234
        assert daemon.terminate() == 0
    finally:
        daemon.stop_quietly()
