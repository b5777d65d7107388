"""The client against the simulator in every way an agent may answer (tests/support/sim.py ``dialect_sim``).

Plain answers as JSON strings and as bare text, the reference's topics and
the vendor SDKs': every request must succeed the same way, and every refusal
must arrive as the same typed error.
"""

from __future__ import annotations

import pytest

from pibridge.agent.client import AgentClient, Backoff, MetricUpdate, SensorState
from pibridge.agent.errors import AgentError, ErrorCode
from pibridge.agent.identity import provision
from pibridge.units import MetricDefinition, ValueType, ValueUnit
from tests.support.sim import dialect_sim  # noqa: F401  (fixture)


@pytest.fixture
def client(dialect_sim, tmp_path):
    identity = provision(tmp_path / "identity", host="localhost", port=dialect_sim.provision_port,
                         ca_file=dialect_sim.ca_file, client_name="dialects", timeout=10, key_type="ec")
    client = AgentClient(identity, host="localhost", port=dialect_sim.api_port, ca_file=dialect_sim.ca_file,
                         timeout=3, backoff=Backoff(initial=0.05, maximum=0.5))
    client.start()
    assert client.wait_connected(10)
    yield client
    client.stop()


def test_every_request_succeeds_whatever_the_answer_encoding_and_dialect(dialect_sim, client):
    store, cid = dialect_sim.store, client.client_id
    assert client.ping().startswith("pibridge-")
    assert client.update_client_name("New client name")
    assert next(c["name"] for c in store.clients() if c["client_id"] == cid) == "New client name"

    sensor = client.create_sensor("greenhouse")
    temp, light = client.create_metrics(sensor.sensor_id, [
        MetricDefinition("temperature", ValueUnit.CELSIUS),
        MetricDefinition("light", value_type=ValueType.DOUBLE, annotation="lx")])
    client.push_values(sensor.sensor_id, {temp: 21.5, light: 300.0}, timestamp_ms=1590394246545)
    assert [(v["metric_id"], v["value"]) for v in store.values(cid)] == [(temp, 21.5), (light, 300.0)]

    # A rename, as reconciliation does it, and the sensor offline and online again.
    assert client.update_metrics(sensor.sensor_id, [MetricUpdate(temp, name="air temperature")])
    assert client.describe_metric(sensor.sensor_id, temp).name == "air temperature"
    assert client.update_sensor(sensor.sensor_id, name="glasshouse", state=SensorState.OFFLINE)
    assert store.sensor(cid, sensor.sensor_id)["state"] == 1
    assert client.update_sensor(sensor.sensor_id, name="glasshouse", state=SensorState.ONLINE)
    assert store.sensor(cid, sensor.sensor_id)["state"] == 2
    [listed] = client.list_sensors()
    assert (listed.name, sorted(listed.metric_ids)) == ("glasshouse", sorted([temp, light]))

    # Metric delete, twice in a row: an agent answering on several topics must not answer the second
    # delete with a copy of the first answer.
    assert client.delete_metrics(sensor.sensor_id, [light])
    with pytest.raises(AgentError) as err:
        client.delete_metrics(sensor.sensor_id, [light])
    assert err.value.code is ErrorCode.UNKNOWN_METRIC_ID
    assert client.delete_metrics(sensor.sensor_id, [temp])
    assert client.list_sensors()[0].metric_ids == []
    assert client.delete_sensor(sensor.sensor_id)
    assert client.list_sensors() == []


def test_refusals_are_the_same_typed_errors_in_every_dialect(client):
    sensor = client.create_sensor("s")
    with pytest.raises(AgentError) as err:
        client.create_sensor("s")
    assert err.value.code is ErrorCode.SENSOR_NAME_EXISTS_ERROR
    with pytest.raises(AgentError) as err:
        client.describe_metric(sensor.sensor_id, "nosuchmetric")
    assert err.value.code is ErrorCode.UNKNOWN_METRIC_ID
    with pytest.raises(AgentError) as err:
        client.update_sensor("nosuchsensor", name="x")
    assert err.value.code is ErrorCode.UNKNOWN_SENSOR_ID
    # After the errors, answers still reach the right request.
    assert client.describe_metric(sensor.sensor_id, client.create_metrics(
        sensor.sensor_id, [MetricDefinition("t", ValueUnit.CELSIUS)])[0]).name == "t"
