"""The ID registry: what survives a restart, and what a new client ID throws away."""

import json

import pytest

from pibridge.bridge.registry import MetricEntry, Registry, RegistryError, Route


def test_ids_survive_a_reload(tmp_path):
    path = tmp_path / "registry.json"
    registry = Registry(path)
    registry.bind("client1")
    entry = registry.set_sensor("greenhouse", "s1")
    entry.metrics["temperature"] = MetricEntry("m1", "air temperature")
    registry.save()

    again = Registry(path)
    assert again.client_id == "client1"
    assert again.routes() == {"greenhouse": Route("s1", {"temperature": "m1"})}
    assert again.sensor("greenhouse").metrics["temperature"].name == "air temperature"


def test_a_new_client_id_forgets_the_old_ids(tmp_path):
    path = tmp_path / "registry.json"
    registry = Registry(path)
    registry.bind("client1")
    registry.set_sensor("greenhouse", "s1")
    registry.save()
    assert Registry(path).bind("client1") is False
    reloaded = Registry(path)
    assert reloaded.bind("client2") is True
    assert reloaded.routes() == {}
    assert Registry(path).client_id == "client2"


def test_same_sensor_id_keeps_metrics_a_new_one_drops_them(tmp_path):
    registry = Registry(tmp_path / "r.json")
    entry = registry.set_sensor("door", "s1")
    entry.metrics["contact"] = MetricEntry("m1", "contact")
    assert registry.set_sensor("door", "s1").metrics == {"contact": MetricEntry("m1", "contact")}
    assert registry.set_sensor("door", "s2").metrics == {}


def test_saving_leaves_no_temporary_file(tmp_path):
    registry = Registry(tmp_path / "registry.json")
    registry.bind("c")
    registry.set_sensor("a", "s")
    registry.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["registry.json"]
    assert json.loads((tmp_path / "registry.json").read_text())["sensors"]["a"]["sensor_id"] == "s"


@pytest.mark.parametrize("text", ["{not json", '{"sensors": {"a": {"metrics": {}}}}', '{"sensors": []}'])
def test_a_damaged_file_names_itself_and_the_fix(tmp_path, text):
    path = tmp_path / "registry.json"
    path.write_text(text)
    with pytest.raises(RegistryError) as info:
        Registry(path)
    assert str(path) in str(info.value)
    assert "delete it" in str(info.value)
