"""The older topic forms of TeamViewer's SDKs (table in shared/spec/README.md), as the Python SDK sends them.

The requests below are the ones ``TVCMI_client`` builds: provisioning on
``/createConnector`` with a CSR carrying a BasicConstraints extension,
``/inventory`` for the sensor list, ``.../metric`` for metric creation, and
its answer and error topics for describe and delete.
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from tests.support.mqtt_client import Mqtt, make_key


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


def test_metric_delete_answers_on_the_python_and_node_sdk_topics(client):
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


def test_legacy_answers_can_be_switched_off(sim_factory, client_factory):
    simulator = sim_factory(legacy_answers=False)
    client = client_factory(simulator)
    sid = client.create_sensor("s")
    (metric,) = client.create_metrics(sid, {"name": "a", "valueUnit": "SI.Power.WATT"})
    kind, _ = client.call(f"/sensor/{sid}/metric/delete", {"metrics": [{"metricId": metric}]},
                          f"/sensor/{sid}/metric/delete/info/inbox", None)
    assert kind == "answer"
    assert client.mqtt.quiet(f"{client.base}/sensor/{sid}/delete/info/inbox", 0.2)
    assert f"{client.base}/sensor/{sid}/metric/delete/inbox" not in client.mqtt.messages
