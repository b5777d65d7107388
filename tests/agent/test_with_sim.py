"""Every operation of the API reference, end to end against the agent simulator.

Real Mosquitto with the simulator's TLS listeners (provisioning without
client certificates, API with them), the simulator's API logic and store.
"""

from __future__ import annotations

import re
import threading

import pytest

from pibridge.agent.client import AgentClient, Backoff, MetricUpdate, SensorState
from pibridge.agent.errors import AgentConnectionLost, AgentError, AgentTimeout, ErrorCode
from pibridge.agent.identity import load_identity, provision
from pibridge.sim import Simulator
from pibridge.units import MetricDefinition, ValueType, ValueUnit
from support.agent_broker import free_port, wait_until

FAST = Backoff(initial=0.05, maximum=0.5)


def _provision(sim, directory, name="pi-test"):
    return provision(directory, host="localhost", port=sim.provision_port, ca_file=sim.ca_file,
                     client_name=name, timeout=10, key_type="ec")


def _connect(sim, identity, **kwargs) -> AgentClient:
    kwargs.setdefault("backoff", FAST)
    client = AgentClient(identity, host="localhost", port=sim.api_port, ca_file=sim.ca_file, timeout=5, **kwargs)
    client.start()
    assert client.wait_connected(10), "the client did not connect to the simulator"
    return client


@pytest.fixture(scope="module")
def shared_sim(tmp_path_factory):
    simulator = Simulator(tmp_path_factory.mktemp("sim"), provision_port=free_port(), api_port=free_port())
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def shared_identity(shared_sim, tmp_path_factory):
    return _provision(shared_sim, tmp_path_factory.mktemp("identity"))


@pytest.fixture
def agent(shared_sim, shared_identity):
    client = _connect(shared_sim, shared_identity)
    yield client
    client.stop()
    shared_sim.faults.silent = False
    shared_sim.faults.error_code = None


def _sensor(agent, name):
    return agent.create_sensor(name)


# ---------------------------------------------------------------- provisioning


def test_provisioning_gets_a_32_hex_client_id_and_reuses_it(shared_sim, tmp_path):
    identity = _provision(shared_sim, tmp_path, name="kitchen.pi")
    assert re.fullmatch(r"[0-9a-f]{32}", identity.client_id)
    names = {c["client_id"]: c["name"] for c in shared_sim.store.clients()}
    assert names[identity.client_id] == "kitchen.pi"
    assert _provision(shared_sim, tmp_path, name="kitchen.pi") == identity
    assert len([c for c in shared_sim.store.clients() if c["name"] == "kitchen.pi"]) == 1


def test_rsa_identity_connects_too(shared_sim, tmp_path):
    identity = provision(tmp_path, host="localhost", port=shared_sim.provision_port, ca_file=shared_sim.ca_file,
                         client_name="rsa-pi", timeout=10)
    client = _connect(shared_sim, identity)
    try:
        assert client.ping("rsa") == "rsa"
    finally:
        client.stop()


# ---------------------------------------------------------------- client


def test_ping(agent):
    assert agent.ping("hello agent") == "hello agent"


def test_update_client_name(agent, shared_sim, shared_identity):
    agent.update_client_name("renamed-pi")
    names = {c["client_id"]: c["name"] for c in shared_sim.store.clients()}
    assert names[shared_identity.client_id] == "renamed-pi"


# ---------------------------------------------------------------- sensors


def test_sensor_create_list_update_delete(agent, shared_sim, shared_identity):
    cid = shared_identity.client_id
    sensor = agent.create_sensor("porch")
    assert sensor.name == "porch" and sensor.metric_ids == []
    assert shared_sim.store.sensor(cid, sensor.sensor_id)["name"] == "porch"

    [metric_id] = agent.create_metrics(sensor.sensor_id, [MetricDefinition("temperature", ValueUnit.CELSIUS)])
    listed = {s.sensor_id: s for s in agent.list_sensors()}
    assert listed[sensor.sensor_id].name == "porch" and listed[sensor.sensor_id].metric_ids == [metric_id]

    agent.update_sensor(sensor.sensor_id, name="front porch", state=SensorState.OFFLINE)
    stored = shared_sim.store.sensor(cid, sensor.sensor_id)
    assert stored["name"] == "front porch" and stored["state"] == 1
    agent.update_sensor(sensor.sensor_id, name="front porch", state=SensorState.ONLINE)
    assert shared_sim.store.sensor(cid, sensor.sensor_id)["state"] == 2

    agent.delete_sensor(sensor.sensor_id)
    assert shared_sim.store.sensor(cid, sensor.sensor_id) is None
    with pytest.raises(AgentError) as err:
        agent.delete_sensor(sensor.sensor_id)
    assert err.value.code is ErrorCode.UNKNOWN_SENSOR_ID


def test_duplicate_sensor_name_is_error_28(agent):
    agent.create_sensor("twin")
    with pytest.raises(AgentError) as err:
        agent.create_sensor("twin")
    assert err.value.code is ErrorCode.SENSOR_NAME_EXISTS_ERROR


# ---------------------------------------------------------------- metrics


def test_metric_create_describe_update_delete(agent, shared_sim, shared_identity):
    sensor = agent.create_sensor("weather")
    temp, light, door = agent.create_metrics(sensor.sensor_id, [
        MetricDefinition("temperature", ValueUnit.CELSIUS),
        MetricDefinition("light", value_type=ValueType.DOUBLE, annotation="lx"),
        MetricDefinition("door", value_type=ValueType.BOOL, annotation="open"),
    ])
    assert len({temp, light, door}) == 3

    info = agent.describe_metric(sensor.sensor_id, temp)
    assert (info.metric_id, info.name, info.unit, info.value_type) == (temp, "temperature", ValueUnit.CELSIUS, None)
    info = agent.describe_metric(sensor.sensor_id, light)
    assert (info.unit, info.value_type, info.annotation) == (None, ValueType.DOUBLE, "lx")

    agent.update_metrics(sensor.sensor_id, [MetricUpdate(light, name="illuminance", annotation="lux")])
    info = agent.describe_metric(sensor.sensor_id, light)
    assert (info.name, info.annotation) == ("illuminance", "lux")

    agent.delete_metrics(sensor.sensor_id, [door])
    with pytest.raises(AgentError) as err:
        agent.describe_metric(sensor.sensor_id, door)
    assert err.value.code is ErrorCode.UNKNOWN_METRIC_ID
    stored = shared_sim.store.sensors(shared_identity.client_id)
    assert [s["metrics"] for s in stored if s["sensor_id"] == sensor.sensor_id] == [[temp, light]]


def test_creating_metrics_on_an_unknown_sensor_is_error_15(agent):
    with pytest.raises(AgentError) as err:
        agent.create_metrics("nosuchsensor", [MetricDefinition("t", ValueUnit.CELSIUS)])
    assert err.value.code is ErrorCode.UNKNOWN_SENSOR_ID


# ---------------------------------------------------------------- values


def test_push_values_many_metrics_one_timestamp(agent, shared_sim, shared_identity):
    sensor = agent.create_sensor("garden")
    temp, hum = agent.create_metrics(sensor.sensor_id, [MetricDefinition("t", ValueUnit.CELSIUS),
                                                         MetricDefinition("h", ValueUnit.PERCENT)])
    agent.push_values(sensor.sensor_id, {temp: 18.25, hum: 61.0}, timestamp_ms=1_700_000_000_123)
    rows = shared_sim.store.values(shared_identity.client_id, sensor.sensor_id)
    assert [(r["metric_id"], r["value"], r["timestamp_ms"]) for r in rows] == [
        (temp, 18.25, 1_700_000_000_123), (hum, 61.0, 1_700_000_000_123)]
    info = agent.describe_metric(sensor.sensor_id, temp)
    assert info.value == 18.25 and info.last_updated == 1_700_000_000_123_000


def test_publish_values_is_acknowledged_and_stored(agent, shared_sim, shared_identity):
    sensor = agent.create_sensor("fast")
    [metric] = agent.create_metrics(sensor.sensor_id, [MetricDefinition("v", ValueUnit.VOLT)])
    acks = []
    lock = threading.Lock()
    for i in range(50):
        agent.publish_values(sensor.sensor_id, {metric: i / 10}, 1_700_000_000_000 + i,
                             on_ack=lambda i=i: (lock.acquire(), acks.append(i), lock.release()))
    wait_until(lambda: len(acks) == 50, 10, "50 PUBACKs")
    rows = shared_sim.store.wait_for_values(shared_identity.client_id, 50, 10, sensor_id=sensor.sensor_id)
    assert [r["timestamp_ms"] for r in rows] == [1_700_000_000_000 + i for i in range(50)]
    assert [r["value"] for r in rows] == [i / 10 for i in range(50)]


def test_live_data_arrives_for_pushed_values(agent):
    sensor = agent.create_sensor("live")
    [metric] = agent.create_metrics(sensor.sensor_id, [MetricDefinition("v", ValueUnit.VOLT)])
    seen = []
    agent.subscribe_livedata(lambda sensor_id, payload: seen.append((sensor_id, payload)), sensor.sensor_id)
    agent.push_values(sensor.sensor_id, {metric: 3.3}, timestamp_ms=1_700_000_000_000)
    wait_until(lambda: seen, 5, "live data")
    sensor_id, payload = seen[0]
    assert sensor_id == sensor.sensor_id
    assert {"metricId": metric, "value": 3.3} in payload["metrics"]


# ---------------------------------------------------------------- faults


@pytest.mark.parametrize("code", [ErrorCode.NO_BACKEND_CONNECTION, ErrorCode.INTERNAL_ERROR,
                                  ErrorCode.PUSH_VALUES_FAILED])
def test_agent_error_codes_reach_the_caller(agent, shared_sim, code):
    shared_sim.faults.error_code = code
    with pytest.raises(AgentError) as err:
        agent.list_sensors()
    assert err.value.code is code
    with pytest.raises(AgentError) as err:
        agent.push_values("anysensor", {"m": 1.0}, timestamp_ms=1)
    assert err.value.code is code


def test_asynchronous_push_error_reaches_on_push_error(agent, shared_sim):
    errors = []
    agent.on_push_error = lambda sensor_id, error: errors.append((sensor_id, error.code))
    agent.ping("subscriptions are in place")
    shared_sim.faults.error_code = ErrorCode.PUSH_VALUES_FAILED
    agent.publish_values("async", {"m": 1.0}, 1_700_000_000_000)
    wait_until(lambda: errors, 5, "the push error")
    assert errors == [("async", ErrorCode.PUSH_VALUES_FAILED)]


def test_silent_agent_is_a_timeout(shared_sim, shared_identity):
    client = AgentClient(shared_identity, host="localhost", port=shared_sim.api_port, ca_file=shared_sim.ca_file,
                         timeout=0.5, backoff=FAST)
    client.start()
    try:
        assert client.wait_connected(10)
        shared_sim.faults.silent = True
        with pytest.raises(AgentTimeout):
            client.ping()
    finally:
        shared_sim.faults.silent = False
        client.stop()


# ---------------------------------------------------------------- outages and deletion


def test_broker_restart_mid_session_the_client_carries_on(sim, tmp_path):
    identity = _provision(sim, tmp_path)
    changes = []
    client = _connect(sim, identity, on_connection_change=changes.append)
    try:
        sensor = client.create_sensor("restart")
        [metric] = client.create_metrics(sensor.sensor_id, [MetricDefinition("v", ValueUnit.VOLT)])
        sim.stop_broker()
        wait_until(lambda: not client.connected, 5, "the client to notice")
        with pytest.raises(AgentConnectionLost):
            client.push_values(sensor.sensor_id, {metric: 1.0})
        sim.start_broker()
        assert client.wait_connected(10), "no reconnect after the broker restart"
        client.push_values(sensor.sensor_id, {metric: 2.0}, timestamp_ms=1_700_000_000_000)
        assert [r["value"] for r in sim.store.values(identity.client_id, sensor.sensor_id)] == [2.0]
        assert changes == [True, False, True]
    finally:
        client.stop()


def test_deleted_client_loses_its_identity_and_is_refused(sim, tmp_path, caplog):
    identity = _provision(sim, tmp_path)
    client = _connect(sim, identity)
    try:
        client.create_sensor("doomed")
        client.delete_client()
        assert load_identity(tmp_path) is None
        wait_until(lambda: not sim.store.is_active(identity.client_id), 5, "the simulator to delete the client")
        sim.stop_broker()
        sim.start_broker()
        wait_until(lambda: client.revoked, 10, "the refusal of the deleted certificate")
        assert not client.connected
        assert "refused our client certificate" in caplog.text
    finally:
        client.stop()
    fresh = _provision(sim, tmp_path)
    assert fresh.client_id != identity.client_id
