"""Fault switches (silent, error code, broker outage) and what survives a restart of the simulator."""

from __future__ import annotations

import os
import signal
import socket
import time

import pytest

from pibridge.agent.errors import DESCRIPTIONS, ErrorCode
from tests.support.mqtt_client import Mqtt
from tests.support.waiting import wait_until


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def test_silent_stops_answering_and_applies_nothing(sim, client_factory):
    client = client_factory(sim)
    sim.faults.silent = True
    with pytest.raises(TimeoutError):
        client.call("/sensor/create", {"name": "ignored"}, "/sensor/inbox", "/sensor/error/inbox", timeout=0.5)
    assert sim.store.sensors(client.id) == []
    sim.faults.silent = False
    kind, _ = client.call("/sensor/create", {"name": "heard"}, "/sensor/inbox", "/sensor/error/inbox")
    assert kind == "answer"
    assert [s["name"] for s in sim.store.sensors(client.id)] == ["heard"]


@pytest.mark.parametrize("code", [ErrorCode.NO_BACKEND_CONNECTION, ErrorCode.INTERNAL_ERROR,
                                  ErrorCode.FORBIDDEN_ACCESS, ErrorCode.PUSH_VALUES_FAILED])
def test_error_code_answers_every_request_with_that_error(sim, client_factory, code):
    client = client_factory(sim)
    sim.faults.error_code = code
    kind, body = client.push("s", {"m": 1.0})
    expected = {"errorMessage": DESCRIPTIONS[code], "errorcode": int(code)}
    if code == ErrorCode.PUSH_VALUES_FAILED:
        expected["metrics"] = []
    assert (kind, body) == ("error", expected)
    assert client.call("/ping", {"request": "x"}, "/ping/info/inbox", "/ping/error/inbox")[1]["errorcode"] == code
    assert sim.store.values(client.id) == []
    sim.faults.error_code = None
    assert client.push("s", {"m": 1.0})[0] == "answer"


def test_drop_api_listener_takes_the_broker_away_and_brings_it_back(sim, client_factory):
    client = client_factory(sim)
    pid = sim.broker.pid
    started = time.monotonic()
    sim.drop_api_listener(1.0)
    assert not sim.broker_running
    assert not _port_open(sim.host, sim.api_port), "the broker really is gone"
    assert not _port_open(sim.host, sim.provision_port)
    assert sim.wait_until_ready(10)
    assert time.monotonic() - started >= 1.0
    assert sim.broker.pid != pid
    assert _port_open(sim.host, sim.api_port)
    # A fresh connection works again; the API logic answers.
    again = Mqtt(sim.host, sim.api_port, sim.ca_file, client.identity.cert, client.identity.key).connect()
    try:
        again.subscribe(f"{client.base}/ping/info/inbox")
        again.publish(f"{client.base}/ping", {"request": "back"})
        assert again.expect_json(f"{client.base}/ping/info/inbox") == {"answer": "back"}
    finally:
        again.close()


def test_a_persistent_session_gets_its_answers_after_a_broker_restart(sim, client_factory):
    client = client_factory(sim)
    session = Mqtt(sim.host, sim.api_port, sim.ca_file, client.identity.cert, client.identity.key,
                   client_id="persistent-1", clean_session=False).connect()
    try:
        session.subscribe(f"{client.base}/#")
        sim.stop_broker()
        assert not session.connected.wait(0) or not _port_open(sim.host, sim.api_port)
        sim.start_broker()
        assert session.connected.wait(10), "paho reconnects once the broker is back"
        # The subscription came back from Mosquitto's persistence file, not from a new SUBSCRIBE.
        session.publish(f"{client.base}/ping", {"request": "after restart"})
        assert session.expect_json(f"{client.base}/ping/info/inbox") == {"answer": "after restart"}
    finally:
        session.close()


def test_a_restart_keeps_ca_clients_ids_and_values(sim_factory, client_factory, tmp_path):
    state = tmp_path / "state"
    first = sim_factory(state)
    ca_before = first.ca_file.read_bytes()
    server_before = first.authority.server_cert_file.read_bytes()
    client = client_factory(first)
    sid = client.create_sensor("kept")
    (mid,) = client.create_metrics(sid, {"name": "t", "valueUnit": "SI.Temperature.CELSIUS"})
    client.push(sid, {mid: 19.5}, timestamp=1_700_000_000_000)
    client.close()
    first.stop()

    second = sim_factory(state)
    assert second.ca_file.read_bytes() == ca_before
    assert second.authority.server_cert_file.read_bytes() == server_before
    reconnected = Mqtt(second.host, second.api_port, second.ca_file, client.identity.cert,
                       client.identity.key).connect()
    try:
        reconnected.subscribe(f"{client.base}/#")
        kind, listing = reconnected.request(f"{client.base}/sensor/list", "{}", f"{client.base}/inventory/inbox",
                                            f"{client.base}/inventory/error/inbox")
        assert [(s["sensorId"], s["name"], [m["metricId"] for m in s["metrics"]]) for s in listing] == \
            [(sid, "kept", [mid])]
        kind, described = reconnected.request(
            f"{client.base}/sensor/{sid}/metric/{mid}/inventory", "{}",
            f"{client.base}/sensor/{sid}/metric/{mid}/inventory/inbox", None)
        assert described["value"] == 19.5
    finally:
        reconnected.close()
    assert [(v["value"], v["timestamp_ms"]) for v in second.store.values(client.id)] == [(19.5, 1_700_000_000_000)]


def test_a_busy_port_gives_a_clear_error(sim, sim_factory):
    from pibridge.sim import SimulatorError

    with pytest.raises(SimulatorError, match="in use"):
        sim_factory(api_port=sim.api_port)


def test_a_broker_that_dies_is_restarted(sim, client_factory):
    client = client_factory(sim)
    os.kill(sim.broker.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while sim.broker.restarts == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sim.broker.restarts == 1
    assert sim.wait_until_ready(10)
    assert "exited unexpectedly" in sim.broker.log_file.read_text()
    again = Mqtt(sim.host, sim.api_port, sim.ca_file, client.identity.cert, client.identity.key).connect()
    try:
        again.subscribe(f"{client.base}/ping/info/inbox")
        again.publish(f"{client.base}/ping", {"request": "revived"})
        assert again.expect_json(f"{client.base}/ping/info/inbox") == {"answer": "revived"}
    finally:
        again.close()


def test_requests_queued_for_the_api_logic_survive_a_broker_restart(sim, client_factory):
    """The API logic's persistent session and Mosquitto's persistence file keep what it has not read yet."""
    client = client_factory(sim)
    sim.agent.stop()  # disconnects; its session (subscriptions, queue) stays with the broker
    client.mqtt.publish(f"{client.base}/sensor/create", {"name": "queued while away"})
    client.mqtt.publish(f"{client.base}/sensor/queued/metric/pushValues",
                        {"metrics": [{"metricId": "m", "value": 1.5}], "timestamp": 1_700_000_000_000})
    sim.stop_broker()
    sim.broker.start()
    sim.agent.start()
    assert sim.wait_until_ready(10)
    values = sim.store.wait_for_values(client.id, 1, timeout=10)
    assert [(v["sensor_id"], v["value"], v["timestamp_ms"]) for v in values] == [("queued", 1.5, 1_700_000_000_000)]
    assert {s["name"] for s in sim.store.sensors(client.id)} == {"queued while away", "queued"}


def test_the_same_simulator_object_can_start_again(sim, client_factory):
    client = client_factory(sim)
    client.push("s", {"m": 1.0}, timestamp=1)
    sim.stop()
    sim.start()
    again = Mqtt(sim.host, sim.api_port, sim.ca_file, client.identity.cert, client.identity.key).connect()
    try:
        again.subscribe(f"{client.base}/#")
        kind, _ = again.request(f"{client.base}/sensor/s/metric/pushValues",
                                '{"metrics": [{"metricId": "m", "value": 2.0}], "timestamp": 2}',
                                f"{client.base}/sensor/s/info/inbox", f"{client.base}/sensor/s/error/inbox")
        assert kind == "answer"
    finally:
        again.close()
    assert [v["value"] for v in sim.store.values(client.id)] == [1.0, 2.0]


def test_stopping_behind_a_flood_of_pushes_abandons_only_what_it_counts(sim_factory, client_factory, caplog):
    """A stop never fails requests with a traceback; what the API logic took and could not handle is
    counted in one warning, and everything else is stored, now or after a restart (the broker keeps
    the API logic's session)."""
    sim = sim_factory()
    client = client_factory(sim)
    sent = 20_000
    infos = [client.mqtt.client.publish(f"{client.base}/sensor/flood/metric/pushValues",
                                        '{"metrics": [{"metricId": "m", "value": %d}], "timestamp": %d}' % (i, i + 1),
                                        qos=1) for i in range(sent)]
    for info in infos:
        info.wait_for_publish(30)
    assert all(info.is_published() for info in infos)
    with caplog.at_level("WARNING", logger="pibridge.sim"):
        sim.stop()
    assert not [r for r in caplog.records if "could not be handled" in r.getMessage()]
    abandoned = sum(int(r.args[0]) for r in caplog.records if "not yet handled" in r.getMessage())
    sim.start()
    # QoS 1 may hand the API logic a request twice across the restart: count distinct pushes.
    distinct = lambda: {v["timestamp_ms"] for v in sim.store.values(client.id)}  # noqa: E731
    wait_until(lambda: len(distinct()) >= sent - abandoned, 60, "the pushes kept by the broker to be stored", 0.2)
    assert len(distinct()) == sent - abandoned
