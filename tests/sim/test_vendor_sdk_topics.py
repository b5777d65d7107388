"""The older topic forms of TeamViewer's SDKs (the request table in docs/agent-client.md), in the vendor dialect.

The requests below are the ones ``TVCMI_client`` builds: provisioning on
``/createConnector`` with a CSR carrying a BasicConstraints extension,
``/inventory`` for the sensor list, ``.../metric`` for metric creation, and
its answer and error topics for describe and delete; and the Node.js SDK's
push to the sensor's own topic and its metric-delete topics.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from pibridge.sim import Simulator
from tests.support.mqtt_client import Mqtt, make_key
from tests.support.sim import free_port


@pytest.fixture(scope="module")
def shared_sim(tmp_path_factory):
    simulator = Simulator(tmp_path_factory.mktemp("vendor-sim"), provision_port=free_port(), api_port=free_port(),
                          dialect="vendor")
    simulator.start()
    yield simulator
    simulator.stop()


def test_provisioning_on_create_connector(shared_sim):
    key = make_key()
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "python_sdk_client")]))
           .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    digest = hashlib.sha256(csr).hexdigest()
    client = Mqtt(shared_sim.host, shared_sim.provision_port, shared_sim.ca_file).connect()
    try:
        client.subscribe(f"/certBack/{digest}", f"/certBack/{digest}/error")
        kind, body = client.request("/createConnector", csr, f"/certBack/{digest}", f"/certBack/{digest}/error")
    finally:
        client.close()
    assert kind == "answer"
    cert = x509.load_pem_x509_certificate(body)
    client_id = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert {"client_id": client_id, "name": "python_sdk_client"}.items() <= \
        next(c for c in shared_sim.store.clients() if c["client_id"] == client_id).items()


def test_list_on_inventory(client):
    sid = client.create_sensor("python_sdk_sensor")
    kind, listing = client.call("/inventory", "{}", "/inventory/inbox", "/inventory/error/inbox")
    assert kind == "answer" and [s["sensorId"] for s in listing] == [sid]


def test_metric_create_on_metric(client):
    sid = client.create_sensor("s")
    metrics = {"metrics": [
        {"matchingId": "1", "name": "metric1_name", "valueAnnotation": "unit1", "valueType": "string"},
        {"matchingId": "2", "name": "metric2_name", "valueAnnotation": "unit2", "valueType": "integer"},
    ]}
    kind, created = client.call(f"/sensor/{sid}/metric", metrics, f"/sensor/{sid}/metric/inbox",
                                f"/sensor/{sid}/metric/error/inbox")
    assert kind == "answer" and [m["matchingId"] for m in created] == ["1", "2"]


def test_metric_definitions_sent_as_json_strings_are_understood(client):
    """The SDK document's create_metric example puts each definition in the array as a JSON string."""
    sid = client.create_sensor("s")
    metrics = {"metrics": ['{"matchingId": 1, "name": "metric1_name", "valueAnnotation": "u", "valueType": "string"}']}
    kind, created = client.call(f"/sensor/{sid}/metric", metrics, f"/sensor/{sid}/metric/inbox",
                                f"/sensor/{sid}/metric/error/inbox")
    assert kind == "answer" and created[0]["matchingId"] == 1


def test_describe_error_also_on_the_sensor_inventory_error_topic(client):
    sid = client.create_sensor("s")
    kind, body = client.call(f"/sensor/{sid}/metric/nope/inventory", "{}", None,
                             f"/sensor/{sid}/inventory/error/inbox")
    assert kind == "error" and body["errorcode"] == 16


def test_metric_delete_answers_also_on_the_sdk_topics_and_errors_only_there(client):
    sid = client.create_sensor("s")
    first, second = client.create_metrics(sid, {"name": "a", "valueUnit": "SI.Power.WATT"},
                                          {"name": "b", "valueUnit": "SI.Power.WATT"})
    kind, body = client.call(f"/sensor/{sid}/metric/delete", {"metrics": [{"metricId": first}]},
                             f"/sensor/{sid}/delete/info/inbox", None)
    assert (kind, body) == ("answer", "All metrics were successfully deleted.")
    assert client.mqtt.expect_json(f"{client.base}/sensor/{sid}/metric/delete/inbox") == body
    kind, body = client.call(f"/sensor/{sid}/metric/delete", {"metrics": [{"metricId": first}]}, None,
                             f"/sensor/{sid}/delete/error/inbox")
    assert kind == "error" and body["errorcode"] == 16
    assert client.mqtt.expect_json(f"{client.base}/sensor/{sid}/metric/delete/error/inbox") == body
    # The answer also where the reference's own example listens; the error not on the reference's metric
    # error topic, which the Python SDK listens on too (it would report the failure twice).
    assert client.mqtt.count(f"{client.base}/sensor/{sid}/metric/delete/info/inbox") == 1
    assert f"{client.base}/sensor/{sid}/metric/error/inbox" not in client.mqtt.messages


def test_node_sdk_push_to_the_sensor_topic_is_stored_and_answered(shared_sim, client):
    body = {"metrics": [{"metricId": "temp", "value": 21.5}], "timestamp": 1590394246545}
    kind, answer = client.call("/sensor/nodesensor", body, "/sensor/nodesensor/info/inbox",
                               "/sensor/nodesensor/error/inbox")
    assert (kind, answer) == ("answer", "Sensor was updated.")
    assert [(v["sensor_id"], v["metric_id"], v["value"]) for v in shared_sim.store.values(client.id)] == \
        [("nodesensor", "temp", 21.5)]


@pytest.mark.parametrize("dialect", ["reference", "both"])
def test_the_reference_dialect_answers_only_on_reference_topics_and_both_on_all(sim_factory, client_factory,
                                                                                 dialect):
    simulator = sim_factory(dialect=dialect)
    client = client_factory(simulator)
    sid = client.create_sensor("s")
    (metric,) = client.create_metrics(sid, {"name": "a", "valueUnit": "SI.Power.WATT"})
    kind, _ = client.call(f"/sensor/{sid}/metric/delete", {"metrics": [{"metricId": metric}]},
                          f"/sensor/{sid}/metric/delete/info/inbox", None)
    assert kind == "answer"
    # A ping answered after the delete: every copy of the delete's answer has arrived by then.
    client.call("/ping", {"request": "after"}, "/ping/info/inbox", None)
    vendor = [f"{client.base}/sensor/{sid}/delete/info/inbox", f"{client.base}/sensor/{sid}/metric/delete/inbox"]
    assert [t in client.mqtt.messages for t in vendor] == [dialect == "both"] * 2


def test_the_reference_dialect_does_not_serve_vendor_request_topics(sim_factory, client_factory, caplog):
    caplog.set_level("INFO", logger="pibridge.sim")
    simulator = sim_factory(dialect="reference")
    client = client_factory(simulator)
    client.mqtt.publish(f"{client.base}/inventory", json.dumps({}))
    client.mqtt.publish(f"{client.base}/sensor/nodesensor", json.dumps({"metrics": [{"metricId": "t", "value": 1}]}))
    client.call("/ping", {"request": "after"}, "/ping/info/inbox", None)
    assert f"{client.base}/inventory/inbox" not in client.mqtt.messages
    assert simulator.store.values(client.id) == []
    served = [r.getMessage() for r in caplog.records if r.getMessage().startswith("not served")]
    assert len(served) == 2 and f"{client.base}/inventory" in served[0], served
