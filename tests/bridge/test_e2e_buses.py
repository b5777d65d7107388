"""End to end on the new buses: a real ``pibridge run`` reads a PMS5003 stand-in over a pseudo-terminal, and
the bridge in-process reads an MCP3008 and a MAX31865 on SPI stand-ins; both push to the simulator's agent
as they do for any other sensor."""

from __future__ import annotations

import threading

import pytest

from daemon_support import Daemon, wait_for
from pibridge.bridge.config import parse_config
from pibridge.bridge.daemon import Bridge
from tests.support.chips.max31865 import MAX31865Chip
from tests.support.chips.mcp3008 import MCP3008Chip
from tests.support.chips.pms5003 import PMS5003StandIn
from tests.support.spidev_fake import spi_factory


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
        metrics = wait_for(lambda: {m["name"]: m for m in sim.store.metrics(cid, sensor["sensor_id"])}
                           if len(sim.store.metrics(cid, sensor["sensor_id"])) == 12 else None, 30,
                           "the sensor's twelve metrics")
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


def test_spi_sensors_reach_the_agent(sim, tmp_path, monkeypatch):
    spi = spi_factory(monkeypatch)
    adc = spi.add(MCP3008Chip(volts=[1.0, 2.0] + [0.0] * 6), device=0)
    rtd = spi.add(MAX31865Chip(resistance=138.51, reference=430.0), device=1)  # Table 9: 100 °C
    config = parse_config(f"""
[agent]
host = "127.0.0.1"
provision_port = {sim.provision_port}
api_port = {sim.api_port}
ca_file = "{sim.ca_file}"
client_name = "spi-e2e"
timeout = 3.0
[storage]
dir = "{tmp_path / 'storage'}"
ack_window = 1.0
[[sensors]]
name = "probes"
driver = "mcp3008"
interval = 0.2
channels = {{ soil = "CH0", light = "CH1" }}
[[sensors]]
name = "boiler"
driver = "max31865"
interval = 0.2
device = 1
[sensors.metric.resistance]
drop = true
""")
    bridge = Bridge(config)
    stop = threading.Event()
    bridge.start()
    thread = threading.Thread(target=bridge.run, args=(stop,))
    thread.start()
    try:
        wait_for(lambda: bridge.connected and bridge.delivery.mode == "live", 20, "a live connection")
        cid = bridge.client_id

        def latest():
            sensors = {s["sensor_id"]: s["name"] for s in sim.store.sensors(cid)}
            out = {}
            for sensor_id, name in sensors.items():
                for m in sim.store.metrics(cid, sensor_id):
                    if m["last_value"] is not None:
                        out[(name, m["name"])] = (m["last_value"], m["value_unit"])
            return out

        wait_for(lambda: len(latest()) == 3, 20, "values of all three metrics")
        values = latest()
        assert values[("probes", "soil")][1] == "SI.ElectricPotential.VOLT"
        assert values[("probes", "soil")][0] == pytest.approx(1.0, abs=3.3 / 1024)
        assert values[("probes", "light")][0] == pytest.approx(2.0, abs=3.3 / 1024)
        assert values[("boiler", "temperature")] == (pytest.approx(100.0, abs=0.05), "SI.Temperature.CELSIUS")
        rtd.resistance = 175.86  # Table 9: 200 °C
        wait_for(lambda: abs(latest()[("boiler", "temperature")][0] - 200.0) < 0.05, 20, "the new temperature")
        assert adc.conversions and rtd.conversions >= 2
    finally:
        stop.set()
        bridge.wake()
        thread.join(10)
        bridge.close()
