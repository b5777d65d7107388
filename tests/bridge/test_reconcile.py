"""Reconciliation against the simulator: adopt, re-create, add, rename; never a duplicate."""

import pytest

from pibridge.agent.client import AgentClient, Backoff
from pibridge.agent.identity import provision
from pibridge.bridge.reconcile import reconcile
from pibridge.bridge.registry import Registry
from pibridge.readings import UNITS
from pibridge.units import MetricDefinition, ValueUnit


def definitions(**names):
    """quantity -> MetricDefinition with the given metric names (units from the canonical table)."""
    units = {"temperature": "°C", "humidity": "%RH", "pressure": "hPa", "illuminance": "lx"}
    return {q: UNITS[units[q]].definition(name) for q, name in names.items()}


@pytest.fixture
def client(sim, tmp_path):
    identity = provision(tmp_path / "identity", host="127.0.0.1", port=sim.provision_port, ca_file=sim.ca_file,
                         client_name="reconcile")
    c = AgentClient(identity, host="127.0.0.1", port=sim.api_port, ca_file=sim.ca_file, timeout=5.0,
                    backoff=Backoff(initial=0.05, maximum=0.5))
    c.start()
    assert c.wait_connected(10)
    yield c
    c.stop()


def agent_view(sim, client):
    """sensor name -> {metric name: unit or annotation} as the simulator stores them."""
    out = {}
    for s in sim.store.sensors(client.client_id):
        metrics = sim.store.metrics(client.client_id, s["sensor_id"])
        assert s["name"] not in out, f"duplicate sensor {s['name']!r}"
        names = [m["name"] for m in metrics]
        assert len(names) == len(set(names)), f"duplicate metrics in {s['name']!r}: {names}"
        out[s["name"]] = sorted(names)
    return out


def test_first_run_creates_and_a_restart_creates_nothing(sim, client, tmp_path):
    wanted = [("greenhouse", definitions(temperature="temperature", humidity="humidity")),
              ("cellar", definitions(pressure="pressure"))]
    registry = Registry(tmp_path / "registry.json")
    registry.bind(client.client_id)
    report = reconcile(client, registry, wanted)
    assert sorted(report.created_sensors) == ["cellar", "greenhouse"]
    assert agent_view(sim, client) == {"greenhouse": ["humidity", "temperature"], "cellar": ["pressure"]}
    routes = registry.routes()

    again = Registry(tmp_path / "registry.json")
    report = reconcile(client, again, wanted)
    assert not report.changed
    assert again.routes() == routes
    assert agent_view(sim, client) == {"greenhouse": ["humidity", "temperature"], "cellar": ["pressure"]}


def test_a_lost_registry_adopts_sensors_and_metrics_by_name(sim, client, tmp_path):
    wanted = [("greenhouse", definitions(temperature="temperature", humidity="humidity"))]
    first = Registry(tmp_path / "one.json")
    reconcile(client, first, wanted)
    fresh = Registry(tmp_path / "two.json")
    report = reconcile(client, fresh, wanted)
    assert report.adopted_sensors == ["greenhouse"]
    assert sorted(report.adopted_metrics["greenhouse"]) == ["humidity", "temperature"]
    assert not report.created_sensors and not report.created_metrics
    assert fresh.routes() == first.routes()


def test_a_crash_between_create_and_save_leaves_nothing_to_duplicate(sim, client, tmp_path):
    # What a crash right after the agent answered would leave: the sensor and metrics exist, no IDs saved.
    info = client.create_sensor("greenhouse")
    client.create_metrics(info.sensor_id, [MetricDefinition("temperature", ValueUnit.CELSIUS)])
    registry = Registry(tmp_path / "registry.json")
    reconcile(client, registry, [("greenhouse", definitions(temperature="temperature", humidity="humidity"))])
    assert registry.routes()["greenhouse"].sensor_id == info.sensor_id
    assert agent_view(sim, client) == {"greenhouse": ["humidity", "temperature"]}


def test_what_the_agent_lost_is_created_again(sim, client, tmp_path):
    wanted = [("greenhouse", definitions(temperature="temperature", humidity="humidity")),
              ("cellar", definitions(pressure="pressure"))]
    registry = Registry(tmp_path / "registry.json")
    reconcile(client, registry, wanted)
    old = registry.routes()
    client.delete_sensor(old["cellar"].sensor_id)
    client.delete_metrics(old["greenhouse"].sensor_id, [old["greenhouse"].metric_ids["humidity"]])

    report = reconcile(client, registry, wanted)
    assert report.created_sensors == ["cellar"]
    assert report.created_metrics["greenhouse"] == ["humidity"]
    new = registry.routes()
    assert new["cellar"].sensor_id != old["cellar"].sensor_id
    assert new["greenhouse"].metric_ids["temperature"] == old["greenhouse"].metric_ids["temperature"]
    assert new["greenhouse"].metric_ids["humidity"] != old["greenhouse"].metric_ids["humidity"]
    assert agent_view(sim, client) == {"greenhouse": ["humidity", "temperature"], "cellar": ["pressure"]}


def test_added_metrics_are_created_and_renamed_ones_updated(sim, client, tmp_path):
    registry = Registry(tmp_path / "registry.json")
    reconcile(client, registry, [("greenhouse", definitions(temperature="temperature"))])
    temperature_id = registry.routes()["greenhouse"].metric_ids["temperature"]

    report = reconcile(client, registry, [("greenhouse", definitions(temperature="air temperature",
                                                                      illuminance="light"))])
    assert report.created_metrics == {"greenhouse": ["illuminance"]}
    assert report.renamed_metrics == {"greenhouse": ["temperature"]}
    assert registry.routes()["greenhouse"].metric_ids["temperature"] == temperature_id
    assert agent_view(sim, client) == {"greenhouse": ["air temperature", "light"]}
    light = [m for m in sim.store.metrics(client.client_id, registry.routes()["greenhouse"].sensor_id)
             if m["name"] == "light"][0]
    assert light["value_annotation"] == "lx"


def test_a_rename_the_agent_does_not_answer_is_deferred_and_the_sensor_ready_at_once(sim, client, tmp_path):
    registry = Registry(tmp_path / "registry.json")
    reconcile(client, registry, [("greenhouse", definitions(temperature="temperature")),
                                 ("cellar", definitions(pressure="pressure"))])
    client.timeout = 0.5
    sim.faults.ignored = frozenset({"update_metrics"})
    ready_when: list[tuple[list[str], int]] = []

    def on_ready(names):
        ready_when.append((names, len(sim.store.sensors(client.client_id))))

    report = reconcile(client, registry, [("greenhouse", definitions(temperature="air temperature")),
                                          ("cellar", definitions(pressure="pressure"))], on_ready=on_ready)
    # Both were confirmed by the list and handed over before the rename was even sent.
    assert ready_when == [(["greenhouse", "cellar"], 2)]
    assert sorted(report.ready) == ["cellar", "greenhouse"]
    assert "within 0.5 s" in report.deferred["greenhouse"]
    # After a request that timed out the rest is left for the next round (each could wait as long).
    assert report.deferred["cellar"].startswith("not checked") and not report.failed
    sim.faults.ignored = frozenset()
    report = reconcile(client, registry, [("greenhouse", definitions(temperature="air temperature"))])
    assert report.renamed_metrics == {"greenhouse": ["temperature"]} and not report.deferred
    assert agent_view(sim, client)["greenhouse"] == ["air temperature"]


def test_a_silent_agent_stops_the_set_up_after_one_timeout(sim, client, tmp_path):
    registry = Registry(tmp_path / "registry.json")
    client.timeout = 0.5
    sim.faults.ignored = frozenset({"create_sensor"})
    wanted = [(name, definitions(temperature="temperature")) for name in ("a", "b", "c")]
    import time
    started = time.monotonic()
    report = reconcile(client, registry, wanted)
    assert time.monotonic() - started < 1.5, "each sensor waited its own timeout"
    assert sorted(report.failed) == ["a", "b", "c"] and report.failed["b"].startswith("not tried")
    assert report.ready == []
