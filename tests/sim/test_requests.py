"""The success path of every request of the API reference (sections 4 and 5), and the store behind it."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from pibridge.sim.agent import NEVER_UPDATED_US
from tests.support.mqtt_client import Mqtt, make_csr, make_key


def test_ping_echoes_the_request(client):
    assert client.call("/ping", {"request": "Some Message"}, "/ping/info/inbox", "/ping/error/inbox") == \
        ("answer", {"answer": "Some Message"})


def test_update_renames_the_client(client, shared_sim):
    kind, body = client.call("/update", {"name": "New client name"}, "/update/info/inbox", "/update/error/inbox")
    assert (kind, body) == ("answer", "Client name was successfully updated.")
    assert next(c for c in shared_sim.store.clients() if c["client_id"] == client.id)["name"] == "New client name"


def test_sensor_create_list_update_delete(client, shared_sim):
    kind, created = client.call("/sensor/create", {"name": "SensorName"}, "/sensor/inbox", "/sensor/error/inbox")
    assert kind == "answer" and created["name"] == "SensorName" and len(created["sensorId"]) == 32
    sid = created["sensorId"]
    metric_ids = client.create_metrics(sid, {"name": "t", "valueUnit": "SI.Temperature.CELSIUS"},
                                       {"name": "h", "valueUnit": "NoSI.Dimensionless.PERCENT"})
    kind, listing = client.call("/sensor/list", {}, "/inventory/inbox", "/inventory/error/inbox")
    assert listing == [{
        "metrics": [{"link": f"{client.base}/sensor/{sid}/metric/{m}/inventory", "metricId": m} for m in metric_ids],
        "name": "SensorName", "sensorId": sid, "store": True,
    }]
    assert client.call(f"/sensor/{sid}/update", {"name": "Renamed", "state": 1}, f"/sensor/{sid}/update/info/inbox",
                       f"/sensor/{sid}/update/error/inbox") == ("answer", "Sensor was changed.")
    assert shared_sim.store.sensor(client.id, sid) == {"sensor_id": sid, "name": "Renamed", "state": 1}
    assert client.call(f"/sensor/{sid}/delete", {}, f"/sensor/{sid}/delete/info/inbox",
                       f"/sensor/{sid}/delete/error/inbox") == ("answer", "Sensor was deleted.")
    assert shared_sim.store.sensors(client.id) == []
    assert shared_sim.store.metrics(client.id, sid) == []


def test_metric_create_describe_update_delete(client, shared_sim):
    sid = client.create_sensor("machine")
    request = {"metrics": [
        {"matchingId": "1", "valueUnit": "NoSI.Dimensionless.PERCENT", "name": "CPUUsage"},
        {"matchingId": "2", "valueUnit": "NoSI.Dimensionless.PERCENT", "name": "CPUIdle"},
        {"matchingId": "3", "valueType": "integer", "valueAnnotation": "goods per minute", "name": "ShopFloor1"},
    ]}
    kind, created = client.call(f"/sensor/{sid}/metric/create", request, f"/sensor/{sid}/metric/inbox",
                                f"/sensor/{sid}/metric/error/inbox")
    assert kind == "answer" and [m["matchingId"] for m in created] == ["1", "2", "3"]
    usage, idle, shop = (m["metricId"] for m in created)
    assert len({usage, idle, shop}) == 3

    def describe(metric_id):
        return client.call(f"/sensor/{sid}/metric/{metric_id}/inventory", {},
                           f"/sensor/{sid}/metric/{metric_id}/inventory/inbox",
                           f"/sensor/{sid}/metric/{metric_id}/inventory/error/inbox")

    assert describe(usage) == ("answer", {"lastUpdated": NEVER_UPDATED_US, "metricId": usage, "name": "CPUUsage",
                                          "value": 0.0, "valueUnit": "NoSI.Dimensionless.PERCENT"})
    client.push(sid, {usage: 42.5}, timestamp=1590394246545)
    assert describe(usage)[1]["value"] == 42.5
    assert describe(usage)[1]["lastUpdated"] == 1590394246545 * 1000, "microseconds, section 5.3.2"
    assert describe(shop)[1] == {"lastUpdated": NEVER_UPDATED_US, "metricId": shop, "name": "ShopFloor1", "value": 0,
                                 "valueType": "integer", "valueAnnotation": "goods per minute"}

    update = {"metrics": [{"metricId": shop, "name": "metric new name", "valueAnnotation": "new description"}]}
    assert client.call(f"/sensor/{sid}/metric/update", update, f"/sensor/{sid}/metric/update/info/inbox",
                       f"/sensor/{sid}/metric/update/error/inbox") == ("answer", "All metrics were successfully modified.")
    assert describe(shop)[1]["name"] == "metric new name"
    assert describe(shop)[1]["valueAnnotation"] == "new description"

    delete = {"metrics": [{"metricId": usage}, {"metricId": idle}]}
    assert client.call(f"/sensor/{sid}/metric/delete", delete, f"/sensor/{sid}/metric/delete/info/inbox",
                       f"/sensor/{sid}/metric/error/inbox") == ("answer", "All metrics were successfully deleted.")
    assert [m["metric_id"] for m in shared_sim.store.metrics(client.id, sid)] == [shop]


def test_describe_also_answers_on_the_describe_topic_of_the_reference_example(client):
    sid = client.create_sensor("s")
    (mid,) = client.create_metrics(sid, {"name": "v", "valueUnit": "SI.ElectricPotential.VOLT"})
    kind, body = client.call(f"/sensor/{sid}/metric/{mid}/describe", {}, f"/sensor/{sid}/metric/{mid}/inventory/inbox",
                             f"/sensor/{sid}/metric/{mid}/inventory/error/inbox")
    assert kind == "answer" and body["metricId"] == mid


# -- section 5.1 push ---------------------------------------------------------------------


def test_push_creates_unknown_sensor_and_metrics_named_by_their_ids(client, shared_sim):
    kind, body = client.push("weather", {"temp": 21.5, "humidity": 40, "raining": False, "sky": "clear"},
                             timestamp=1590394246545)
    assert (kind, body) == ("answer", "Sensor was updated.")
    (sensor,) = shared_sim.store.sensors(client.id)
    assert (sensor["sensor_id"], sensor["name"]) == ("weather", "weather")
    metrics = {m["metric_id"]: m for m in shared_sim.store.metrics(client.id, "weather")}
    assert {k: (m["name"], m["value_type"], m["value_annotation"]) for k, m in metrics.items()} == {
        "temp": ("temp", "double", ""), "humidity": ("humidity", "double", ""),
        "raining": ("raining", "bool", ""), "sky": ("sky", "string", ""),
    }


def test_pushed_values_are_stored_in_arrival_order_with_their_timestamps(client, shared_sim):
    sid = client.create_sensor("s")
    (mid,) = client.create_metrics(sid, {"name": "t", "valueUnit": "SI.Temperature.CELSIUS"})
    stamps = [1_700_000_000_000 + i * 1000 for i in (3, 1, 2)]  # replayed out of time order on purpose
    for i, ts in enumerate(stamps):
        client.mqtt.publish(f"{client.base}/sensor/{sid}/metric/pushValues",
                            {"metrics": [{"metricId": mid, "value": 20.0 + i}], "timestamp": ts})
    before = time.time()
    values = shared_sim.store.wait_for_values(client.id, 3, timeout=5)
    assert [(v["value"], v["timestamp_ms"]) for v in values] == list(zip([20.0, 21.0, 22.0], stamps))
    assert [v["id"] for v in values] == sorted(v["id"] for v in values)
    assert all(before - 5 < v["received_at"] <= time.time() for v in values)
    assert shared_sim.store.metric(client.id, sid, mid)["last_value"] == 22.0


def test_a_push_without_timestamp_gets_the_current_time(client, shared_sim):
    before = int(time.time() * 1000)
    client.push("s1", {"m": 1.0})
    (value,) = shared_sim.store.values(client.id)
    assert before <= value["timestamp_ms"] <= int(time.time() * 1000)


def test_values_can_be_filtered_by_sensor_and_metric(client, shared_sim):
    client.push("a", {"x": 1.0, "y": 2.0}, timestamp=1)
    client.push("b", {"x": 3.0}, timestamp=2)
    store = shared_sim.store
    assert [v["value"] for v in store.values(client.id, "a")] == [1.0, 2.0]
    assert [v["value"] for v in store.values(client.id, metric_id="x")] == [1.0, 3.0]
    assert [v["value"] for v in store.values(client.id, "a", "y")] == [2.0]


def test_push_republishes_the_values_on_livedata(client):
    sid = client.create_sensor("live")
    client.push(sid, {"temp": 21.5, "humidity": 40.0}, timestamp=1590394246545)
    assert client.mqtt.expect_json(f"{client.base}/sensor/{sid}/livedata") == {
        "metrics": [{"metricId": "temp", "value": 21.5}, {"metricId": "humidity", "value": 40.0}],
        "timestamp": 1590394246545,
    }


def test_values_given_as_text_are_accepted_for_typed_metrics(client, shared_sim):
    sid = client.create_sensor("typed")
    number, flag = client.create_metrics(sid, {"name": "n", "valueType": "integer", "valueAnnotation": ""},
                                         {"name": "f", "valueType": "bool", "valueAnnotation": ""})
    assert client.push(sid, {number: "12", flag: "true"})[0] == "answer"


def test_wait_for_values_times_out_with_a_count(client, shared_sim):
    with pytest.raises(TimeoutError, match="got 0"):
        shared_sim.store.wait_for_values(client.id, 1, timeout=0.1)


def test_answers_are_sent_with_qos_1(client):
    client.call("/ping", {"request": "q"}, "/ping/info/inbox", "/ping/error/inbox")
    client.call("/ping", "{", "/ping/info/inbox", "/ping/error/inbox")
    assert client.mqtt.qos[f"{client.base}/ping/info/inbox"] == [1]
    assert client.mqtt.qos[f"{client.base}/ping/error/inbox"] == [1]


def test_a_csr_wrapped_in_quotes_is_signed_too(shared_sim):
    """Section 4.1 step 2 says to wrap the CSR text in quotes; a JSON string holding the PEM is accepted."""
    quoted = json.dumps(make_csr(make_key(), "quoted").decode()).encode()
    digest = hashlib.sha256(quoted).hexdigest()
    provisioning = Mqtt(shared_sim.host, shared_sim.provision_port, shared_sim.ca_file).connect()
    try:
        provisioning.subscribe(f"/certBack/{digest}", f"/certBack/{digest}/error")
        kind, body = provisioning.request("/v1.0/createClient", quoted, f"/certBack/{digest}",
                                          f"/certBack/{digest}/error")
    finally:
        provisioning.close()
    assert kind == "answer" and body.startswith(b"-----BEGIN CERTIFICATE-----")


def test_the_store_stays_readable_after_stop(sim_factory, client_factory):
    simulator = sim_factory()
    client = client_factory(simulator)
    client.push("s", {"m": 3.0}, timestamp=5)
    simulator.stop()
    assert [(v["value"], v["timestamp_ms"]) for v in simulator.store.values(client.id)] == [(3.0, 5)]
