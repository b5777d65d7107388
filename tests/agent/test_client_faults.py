"""AgentClient against a scripted agent that answers what each test wants, including garbage.

Real Mosquitto, real mutual TLS; only the agent's answers are scripted.
"""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest

from pibridge.agent.client import MAX_ANSWER_BYTES, Backoff, MetricUpdate, SensorState
from pibridge.agent.errors import AgentConnectionLost, AgentError, AgentTimeout, ErrorCode, ProtocolError
from pibridge.units import MetricDefinition, ValueType, ValueUnit
from support.agent_broker import CLIENT_ID, Pki, answer, issue_identity, wait_until

PREFIX = f"/v1.0/{CLIENT_ID}"


def echo_ping(topic, payload):
    return [(topic + "/info/inbox", json.dumps({"answer": json.loads(payload)["request"]}))]


# ---------------------------------------------------------------- what is sent, what comes back


def test_ping_sends_the_reference_request_and_returns_the_echo(client, agent):
    agent.on(f"{PREFIX}/ping", echo_ping)
    assert client.ping("are you there") == "are you there"
    assert json.loads(agent.requests_on("/ping")[0]) == {"request": "are you there"}


def test_create_metrics_returns_ids_in_the_given_order_matched_by_matching_id(client, agent):
    def reversed_answer(topic, payload):
        metrics = json.loads(payload)["metrics"]
        return [(topic.rsplit("/", 1)[0] + "/inbox",
                 json.dumps([{"matchingId": m["matchingId"], "metricId": f"id-{m['name']}"} for m in metrics[::-1]]))]

    agent.on(f"{PREFIX}/sensor/+/metric/create", reversed_answer)
    ids = client.create_metrics("s1", [
        MetricDefinition("temperature", ValueUnit.CELSIUS),
        MetricDefinition("light", value_type=ValueType.DOUBLE, annotation="lx"),
    ])
    assert ids == ["id-temperature", "id-light"]
    sent = json.loads(agent.requests_on("/metric/create")[0])["metrics"]
    assert sent[0]["valueUnit"] == "SI.Temperature.CELSIUS" and "valueType" not in sent[0]
    assert sent[1]["valueType"] == "double" and sent[1]["valueAnnotation"] == "lx"
    assert len({m["matchingId"] for m in sent}) == 2


def test_update_sensor_sends_name_and_state(client, agent):
    agent.on(f"{PREFIX}/sensor/+/update", answer("/info/inbox", "Sensor was changed."))
    assert client.update_sensor("s1", name="porch", state=SensorState.OFFLINE) == "Sensor was changed."
    assert json.loads(agent.requests_on("/s1/update")[0]) == {"name": "porch", "state": 1}


def test_update_metrics_sends_only_what_changes(client, agent):
    agent.on(f"{PREFIX}/sensor/+/metric/update", answer("/info/inbox", "All metrics were successfully modified."))
    client.update_metrics("s1", [MetricUpdate("m1", name="t"), MetricUpdate("m2", annotation="lx")])
    assert json.loads(agent.requests_on("/metric/update")[0]) == {
        "metrics": [{"metricId": "m1", "name": "t"}, {"metricId": "m2", "valueAnnotation": "lx"}]}


def test_push_values_sends_all_metrics_with_one_timestamp(client, agent):
    agent.on(f"{PREFIX}/sensor/+/metric/pushValues",
             lambda t, p: [(t.rsplit("/metric/", 1)[0] + "/info/inbox", json.dumps("Sensor was updated."))])
    client.push_values("weather", {"temp": 21.5, "door": True, "label": "ok", "count": 3}, timestamp_ms=1590394246545)
    assert json.loads(agent.requests_on("/weather/metric/pushValues")[0]) == {
        "metrics": [{"metricId": "temp", "value": 21.5}, {"metricId": "door", "value": True},
                    {"metricId": "label", "value": "ok"}, {"metricId": "count", "value": 3}],
        "timestamp": 1590394246545}


# ---------------------------------------------------------------- the agent's errors


def test_agent_error_carries_code_message_and_metrics(client, agent):
    agent.on(f"{PREFIX}/sensor/+/metric/create", lambda t, p: [(t.rsplit("/", 1)[0] + "/error/inbox", json.dumps(
        {"errorMessage": "Failed to create the following metrics.", "errorcode": 26, "metrics": ["humidity"]}))])
    with pytest.raises(AgentError) as err:
        client.create_metrics("s1", [MetricDefinition("humidity", ValueUnit.PERCENT)])
    assert err.value.code is ErrorCode.CREATE_METRICS_FAILED
    assert err.value.message == "Failed to create the following metrics."
    assert err.value.metrics == ["humidity"]
    assert "26" in str(err.value) and "CREATE_METRICS_FAILED" in str(err.value)


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_error_code_is_typed(client, agent, code):
    agent.on(f"{PREFIX}/sensor/+/delete", answer("/error/inbox", {"errorMessage": "no", "errorcode": int(code)}))
    with pytest.raises(AgentError) as err:
        client.delete_sensor("s1")
    assert err.value.code is code


def test_error_without_message_uses_the_reference_description(client, agent):
    agent.on(f"{PREFIX}/sensor/+/delete", answer("/error/inbox", {"errorcode": 15}))
    with pytest.raises(AgentError, match="The provided sensor ID does not exist"):
        client.delete_sensor("s1")


# ---------------------------------------------------------------- answers as a real agent may send them

TEXT_ENCODINGS = [
    b'"Sensor was deleted."',          # the reference prints it so
    b"Sensor was deleted.",            # bare text, as a third-party client of the real agent expects
    b"  Sensor was deleted.\n",        # what mosquitto_pub -l or a shell echo leaves around it
    b'"Sensor was deleted."\r\n',
    b"\xef\xbb\xbfSensor was deleted.",  # with a UTF-8 byte-order mark
    b"Deleted the sensor",             # other wording: the topic says what is answered
    b"",
]


@pytest.mark.parametrize("payload", TEXT_ENCODINGS)
def test_text_answers_are_accepted_in_any_encoding_and_wording(client, agent, payload):
    agent.on(f"{PREFIX}/sensor/+/delete", answer("/info/inbox", payload))
    expected = payload.decode("utf-8").lstrip("\ufeff").strip().strip('"')
    assert client.delete_sensor("s1") == expected


def test_every_text_answered_request_takes_bare_text(client, agent):
    bare = lambda suffix: lambda t, p: [(t + suffix, b"OK\n")]  # noqa: E731
    agent.on(f"{PREFIX}/update", bare("/info/inbox"))
    agent.on(f"{PREFIX}/sensor/+/update", bare("/info/inbox"))
    agent.on(f"{PREFIX}/sensor/+/metric/update", bare("/info/inbox"))
    agent.on(f"{PREFIX}/sensor/+/metric/delete", bare("/info/inbox"))
    agent.on(f"{PREFIX}/sensor/+/metric/pushValues", lambda t, p: [(t.rsplit("/metric/", 1)[0] + "/info/inbox", b"OK")])
    assert client.update_client_name("New client name") == "OK"
    assert client.update_sensor("s1", name="porch", state=SensorState.ONLINE) == "OK"
    assert client.update_metrics("s1", [MetricUpdate("m1", name="t")]) == "OK"
    assert client.delete_metrics("s1", ["m1"]) == "OK"
    assert client.push_values("s1", {"m1": 1.0}) is None


def test_client_rename_takes_the_references_example_name_and_a_name_answer(client, agent):
    agent.on(f"{PREFIX}/update", lambda t, p: [(t + "/info/inbox", json.dumps({"name": json.loads(p)["name"]}))])
    assert client.update_client_name("New client name") == "New client name"
    assert json.loads(agent.requests_on("/update")[0]) == {"name": "New client name"}


@pytest.mark.parametrize("body, code, message", [
    ({"errorMessage": "gone", "errorcode": "15"}, ErrorCode.UNKNOWN_SENSOR_ID, "gone"),
    ({"errorMessage": "gone", "errorcode": 15.0}, ErrorCode.UNKNOWN_SENSOR_ID, "gone"),
    ({"errorcode": " 16 "}, ErrorCode.UNKNOWN_METRIC_ID, "The provided metric ID does not exist."),
    ({"errorMessage": "new in a later agent", "errorcode": 99}, 99, "new in a later agent"),
    ({"errorMessage": "no code at all"}, None, "no code at all"),
    ({"errorMessage": "x", "errorcode": 23, "metrics": "m1", "detail": {"a": 1}}, ErrorCode.DELETE_METRICS_FAILED, "x"),
    ({"errorMessage": "line one\nforged: line two", "errorcode": 3}, ErrorCode.INTERNAL_ERROR,
     "line one\\nforged: line two"),
])
def test_error_payloads_are_read_liberally(client, agent, body, code, message):
    agent.on(f"{PREFIX}/sensor/+/delete", answer("/error/inbox", body))
    with pytest.raises(AgentError) as err:
        client.delete_sensor("s1")
    assert err.value.code == code and err.value.message == message
    assert "\n" not in str(err.value)


def test_structured_answers_tolerate_extra_and_missing_fields_numbers_and_order(client, agent):
    agent.on(f"{PREFIX}/sensor/list", lambda t, p: [(f"{PREFIX}/inventory/inbox", json.dumps([
        {"sensorId": 7, "name": "porch", "metrics": [{"metricId": 8}, {"metricId": "m2", "extra": 1}], "colour": "red"},
        {"sensorId": "s2", "name": "bare"},
    ]))])
    assert [(s.sensor_id, s.name, s.metric_ids) for s in client.list_sensors()] == [
        ("7", "porch", ["8", "m2"]), ("s2", "bare", [])]

    def numeric_matching_ids_reversed(topic, payload):
        metrics = json.loads(payload)["metrics"]
        return [(topic.rsplit("/", 1)[0] + "/inbox", json.dumps(
            [{"metricId": f"id-{m['name']}", "matchingId": int(m["matchingId"]), "link": "x"} for m in metrics[::-1]]))]

    agent.on(f"{PREFIX}/sensor/+/metric/create", numeric_matching_ids_reversed)
    assert client.create_metrics("s1", [MetricDefinition("a", ValueUnit.WATT), MetricDefinition("b", ValueUnit.VOLT)]) \
        == ["id-a", "id-b"]
    agent.on(f"{PREFIX}/sensor/+/metric/+/inventory", lambda t, p: [(t + "/inbox", json.dumps(
        {"metricId": "m1", "name": "t", "valueUnit": "SI.Illuminance.LUX", "lastUpdated": "1590394246545000"}))])
    info = client.describe_metric("s1", "m1")
    assert (info.name, info.unit, info.last_updated, info.value) == ("t", "SI.Illuminance.LUX", 1590394246545000, None)


@pytest.mark.parametrize("echo", [
    lambda msg: json.dumps({"answer": msg}),
    lambda msg: json.dumps({"request": msg}),
    lambda msg: json.dumps(msg),
    lambda msg: msg + "\n",
    lambda msg: json.dumps({"answer": json.dumps({"request": msg})}),
    lambda msg: json.dumps({"answer": "pong"}),
])
def test_any_echo_carrying_the_ping_counts(client, agent, echo):
    agent.on(f"{PREFIX}/ping", lambda t, p: [(t + "/info/inbox", echo(json.loads(p)["request"]))])
    assert client.ping() in (json.loads(agent.requests_on("/ping")[-1])["request"], "pong")


# ---------------------------------------------------------------- answers nobody can understand


@pytest.fixture
def quick_client(make_client, identity):
    client = make_client(identity, timeout=0.3)
    client.start()
    assert client.wait_connected(5)
    return client


def test_garbage_before_the_real_answer_is_logged_and_skipped(client, agent, caplog):
    caplog.set_level(logging.WARNING, logger="pibridge.agent.client")
    agent.on(f"{PREFIX}/sensor/list", lambda t, p: [
        (f"{PREFIX}/inventory/inbox", b"\x00\x01 not json"),
        (f"{PREFIX}/inventory/inbox", json.dumps({"sensorId": "x"})),
        (f"{PREFIX}/inventory/inbox", json.dumps([{"sensorId": "s1", "name": "n", "metrics": []}]))])
    assert [s.sensor_id for s in client.list_sensors()] == ["s1"]
    complaints = [r.getMessage() for r in caplog.records if "does not understand" in r.getMessage()]
    assert len(complaints) == 2 and all(f"{PREFIX}/inventory/inbox" in c for c in complaints)
    assert "not json" in complaints[0] and "'sensorId': 'x'" in complaints[1]


@pytest.mark.parametrize("payload, message", [
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b'{"sensorId": ', "not JSON"),
    (b'{"sensorId": "x"}', "unexpected answer"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b"[" + b" " * MAX_ANSWER_BYTES + b"]", "more than the"),
])
def test_only_garbage_is_a_protocol_error_after_one_timeout(quick_client, agent, payload, message):
    agent.on(f"{PREFIX}/sensor/list", lambda t, p: [(f"{PREFIX}/inventory/inbox", payload)])
    started = time.monotonic()
    with pytest.raises(ProtocolError, match=message) as err:
        quick_client.list_sensors()
    assert 0.3 <= time.monotonic() - started < 2.0
    assert "1 ignored" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("method, pattern, suffix, body", [
    ("create_sensor", "/sensor/create", "/../inbox", ["not", "an", "object"]),
    ("list_sensors", "/sensor/list", "/../../inventory/inbox", [{"sensorId": "x", "name": "n", "metrics": "m"}]),
    ("ping", "/ping", "/info/inbox", "ping"),
    ("describe_metric", "/sensor/s1/metric/m1/inventory", "/inbox", {"metricId": "m1"}),
    ("create_metrics", "/sensor/s1/metric/create", "/../inbox", {"matchingId": "1"}),
])
def test_answer_of_the_wrong_shape_is_a_protocol_error(quick_client, agent, method, pattern, suffix, body):
    def handler(topic, payload):
        target = topic + suffix
        while "/../" in target:
            head, tail = target.split("/../", 1)
            target = head.rsplit("/", 1)[0] + "/" + tail
        return [(target, json.dumps(body))]

    agent.on(PREFIX + pattern, handler)
    client = quick_client
    call = {
        "create_sensor": lambda: client.create_sensor("porch"),
        "list_sensors": client.list_sensors,
        "ping": client.ping,
        "describe_metric": lambda: client.describe_metric("s1", "m1"),
        "create_metrics": lambda: client.create_metrics("s1", [MetricDefinition("t", ValueUnit.CELSIUS)]),
    }[method]
    with pytest.raises(ProtocolError, match="unexpected answer"):
        call()


def test_malformed_error_payload_is_not_taken_for_an_error(quick_client, agent):
    agent.on(f"{PREFIX}/sensor/+/delete", answer("/error/inbox", {"errorcode": "seven", "errorMessage": []}))
    with pytest.raises(ProtocolError, match="expected an error object"):
        quick_client.delete_sensor("s1")


def test_answer_on_a_topic_no_agent_uses_is_a_protocol_error(quick_client, agent):
    agent.on(f"{PREFIX}/sensor/+/metric/delete", answer("/result", "All metrics were successfully deleted."))
    with pytest.raises(ProtocolError, match=r"answered on .*/metric/delete/result.*reference answers this request on"):
        quick_client.delete_metrics("s1", ["m1"])


@pytest.mark.parametrize("suffix", ["/inbox", "/../../delete/info/inbox"])
def test_metric_delete_answers_on_the_vendor_sdk_topics_are_accepted(client, agent, suffix):
    def handler(topic, payload):
        target = topic + suffix
        while "/../" in target:
            head, tail = target.split("/../", 1)
            target = head.rsplit("/", 1)[0] + "/" + tail
        return [(target, b"All metrics were successfully deleted.")]

    agent.on(f"{PREFIX}/sensor/+/metric/delete", handler)
    assert client.delete_metrics("s1", ["m1"]) == "All metrics were successfully deleted."
    assert client.delete_metrics("s1", ["m2"]) == "All metrics were successfully deleted."


def test_an_agent_answering_on_every_topic_answers_each_request_once(client, agent):
    """Reference and both vendor topics: the copies of one answer must not answer the next request."""
    answers = iter(f"answer {i}" for i in range(100))

    def everywhere(topic, payload):
        text = next(answers)
        sensor = topic.rsplit("/metric/", 1)[0]
        return [(topic + "/info/inbox", text), (sensor + "/delete/info/inbox", text), (topic + "/inbox", text)]

    agent.on(f"{PREFIX}/sensor/+/metric/delete", everywhere)
    assert [client.delete_metrics("s1", [f"m{i}"]) for i in range(5)] == [f"answer {i}" for i in range(5)]


def test_stale_answer_for_another_request_is_skipped(client, agent):
    agent.on(f"{PREFIX}/ping", lambda t, p: [(t + "/info/inbox", json.dumps({"answer": "an older ping"})),
                                            *echo_ping(t, p)])
    assert client.ping("this one") == "this one"


def test_garbage_while_nobody_waits_is_ignored_and_the_client_carries_on(client, agent, caplog):
    caplog.set_level(logging.DEBUG, logger="pibridge.agent.client")
    agent.on(f"{PREFIX}/ping", echo_ping)
    client.subscribe_livedata(lambda sensor_id, payload: None)
    assert client.ping("first") == "first"
    agent.client.publish(f"{PREFIX}/ping/info/inbox", b"\x00\x01 not json", qos=1)
    agent.client.publish(f"{PREFIX}/sensor/s1/livedata", b"{{{", qos=1)
    agent.client.publish(f"{PREFIX}/sensor/s1/error/inbox", b"[]", qos=1)
    wait_until(lambda: "no request waits for it" in caplog.text and "ignoring live data" in caplog.text
               and "ignoring a malformed push error" in caplog.text, 5, "all three messages handled")
    assert client.ping("second") == "second"
    assert client.connected
    assert "Traceback" not in caplog.text


# ---------------------------------------------------------------- timeouts and lost connections


def test_silent_agent_is_a_timeout_after_the_configured_time(make_client, identity, agent):
    client = make_client(identity, timeout=0.4)
    client.start()
    assert client.wait_connected(5)
    start = time.monotonic()
    with pytest.raises(AgentTimeout, match="no answer"):
        client.list_sensors()
    assert 0.35 < time.monotonic() - start < 2.0


def test_request_while_disconnected_fails_at_once(make_client, identity):
    client = make_client(identity)
    start = time.monotonic()
    with pytest.raises(AgentConnectionLost, match="not connected"):
        client.ping()
    with pytest.raises(AgentConnectionLost):
        client.publish_values("s1", {"m": 1.0}, 1)
    assert time.monotonic() - start < 0.5


def test_bad_arguments_are_refused_before_sending(client, agent):
    with pytest.raises(ValueError, match="sensor ID 'a/b' is not valid"):
        client.delete_sensor("a/b")
    with pytest.raises(ValueError, match="NaN"):
        client.push_values("s1", {"m": float("nan")})
    with pytest.raises(ValueError, match="unknown valueUnit 'SI.Mass.GRAM'"):
        client.create_metrics("s1", [MetricDefinition("w", "SI.Mass.GRAM")])
    with pytest.raises(ValueError, match="is not a MetricDefinition"):
        client.create_metrics("s1", [{"name": "w"}])
    with pytest.raises(ValueError, match="metric ID '#' is not valid"):
        client.delete_metrics("s1", ["#"])
    assert agent.requests == []


# ---------------------------------------------------------------- concurrency


def test_concurrent_requests_on_one_topic_each_get_their_own_answer(make_client, identity, agent):
    # Requests on one topic queue behind each other; the timeout covers the wait in the queue.
    client = make_client(identity, timeout=20)
    client.start()
    assert client.wait_connected(5)

    def slow_echo(topic, payload):
        time.sleep(0.01)
        return echo_ping(topic, payload)

    agent.on(f"{PREFIX}/ping", slow_echo)
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def worker(n):
        try:
            for i in range(5):
                results[n * 100 + i] = client.ping(f"worker {n} call {i}")
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert results == {n * 100 + i: f"worker {n} call {i}" for n in range(6) for i in range(5)}


def test_concurrent_requests_on_different_topics_run_in_parallel(client, agent):
    agent.on(f"{PREFIX}/sensor/create",
             lambda t, p: [(f"{PREFIX}/sensor/inbox", json.dumps({"name": json.loads(p)["name"], "sensorId": "new"}))])
    agent.on(f"{PREFIX}/ping", echo_ping)
    out = {}
    threads = [threading.Thread(target=lambda: out.__setitem__("s", client.create_sensor("porch"))),
               threading.Thread(target=lambda: out.__setitem__("p", client.ping("x")))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert out["s"].sensor_id == "new" and out["s"].name == "porch" and out["p"] == "x"


# ---------------------------------------------------------------- hot path, asynchronous errors, live data


def test_publish_values_calls_on_ack_for_every_push(client, agent):
    acked = []
    lock = threading.Lock()

    def make_ack(i):
        def on_ack():
            with lock:
                acked.append(i)
        return on_ack

    for i in range(300):
        client.publish_values("s1", {"m": float(i)}, 1_700_000_000_000 + i, on_ack=make_ack(i))
    wait_until(lambda: len(acked) == 300, 10, "300 PUBACKs")
    assert sorted(acked) == list(range(300))
    wait_until(lambda: len(agent.requests_on("/s1/metric/pushValues")) == 300, 10, "300 pushes at the agent")
    first = json.loads(agent.requests_on("/s1/metric/pushValues")[0])
    assert first == {"metrics": [{"metricId": "m", "value": 0.0}], "timestamp": 1_700_000_000_000}


def test_asynchronous_push_errors_reach_on_push_error(client, agent):
    errors = []
    client.on_push_error = lambda sensor_id, error: errors.append((sensor_id, error))
    agent.on(f"{PREFIX}/sensor/+/metric/pushValues",
             lambda t, p: [(t.rsplit("/metric/", 1)[0] + "/error/inbox",
                            json.dumps({"errorMessage": "Failed to push values to some metrics.", "errorcode": 27,
                                        "metrics": ["m"]}))])
    client.publish_values("porch", {"m": "x"}, 1)
    wait_until(lambda: errors, 5, "the push error")
    [(sensor_id, error)] = errors
    assert sensor_id == "porch" and error.code is ErrorCode.PUSH_VALUES_FAILED and error.metrics == ["m"]


def test_live_data_reaches_the_callback_and_a_raising_callback_harms_nothing(client, agent):
    seen = []

    def callback(sensor_id, payload):
        seen.append((sensor_id, payload))
        raise RuntimeError("a careless callback")

    client.subscribe_livedata(callback, "porch")
    agent.client.publish(f"{PREFIX}/sensor/porch/livedata", json.dumps({"metrics": [{"metricId": "m", "value": 1}]}))
    agent.client.publish(f"{PREFIX}/sensor/other/livedata", json.dumps({"metrics": []}))
    wait_until(lambda: seen, 5, "live data")
    agent.on(f"{PREFIX}/ping", echo_ping)
    assert client.ping("still alive") == "still alive"
    assert seen == [("porch", {"metrics": [{"metricId": "m", "value": 1}]})]


# ---------------------------------------------------------------- TLS: wrong CA, refused certificate


def test_agent_with_a_certificate_from_another_ca_is_never_trusted(make_client, identity, tmp_path, caplog):
    stranger = Pki(tmp_path / "stranger", name="Somebody Else's CA")
    changes = []
    client = make_client(identity, ca_file=stranger.ca_file, on_connection_change=changes.append)
    client.start()
    wait_until(lambda: "does not vouch for" in caplog.text, 5, "the CA warning")
    assert not client.connected and not client.revoked and changes == []


def test_certificate_the_broker_refuses_marks_the_client_revoked(make_client, tmp_path, caplog):
    foreign = issue_identity(Pki(tmp_path / "other-ca", name="Another CA"), tmp_path / "foreign")
    client = make_client(foreign)
    client.start()
    wait_until(lambda: client.revoked, 5, "revoked")
    assert not client.connected
    assert "refused our client certificate" in caplog.text
    with pytest.raises(AgentConnectionLost, match="pibridge provision"):
        client.ping()


# ---------------------------------------------------------------- broker restart


def test_broker_restart_mid_session(make_client, identity, broker, agent, caplog):
    caplog.set_level(logging.INFO)
    changes = []
    live = []
    client = make_client(identity, on_connection_change=changes.append)
    client.start()
    assert client.wait_connected(5)
    client.subscribe_livedata(lambda s, p: live.append(s))
    agent.on(f"{PREFIX}/ping", echo_ping)
    assert client.ping("before") == "before"

    waiting = threading.Event()
    outcome = []

    def slow_request():
        waiting.set()
        try:
            client.list_sensors()
        except BaseException as exc:  # noqa: BLE001 - inspected below
            outcome.append(exc)

    thread = threading.Thread(target=slow_request)
    thread.start()
    waiting.wait(5)
    wait_until(lambda: agent.requests_on("/sensor/list"), 5, "the list request at the agent")
    broker.stop()
    thread.join(5)
    assert len(outcome) == 1 and isinstance(outcome[0], AgentConnectionLost)
    wait_until(lambda: not client.connected, 5, "disconnect noticed")
    broker.start()
    agent.stop()
    agent.start()
    assert client.wait_connected(10), "the client did not reconnect"
    assert client.ping("after") == "after"
    assert changes[:3] == [True, False, True]
    agent.client.publish(f"{PREFIX}/sensor/porch/livedata", json.dumps({"metrics": []}))
    wait_until(lambda: live == ["porch"], 5, "live data after the restart")


def test_pushes_left_unacknowledged_by_a_dead_connection_are_not_sent_again_by_the_client(
        make_client, identity, broker, agent):
    """Their owner sends them again (the bridge, from its outbox).  paho resending them too would put
    them ahead of the new pushes, and the agent's answers to them would be counted for those."""
    import signal

    client = make_client(identity)
    client.start()
    assert client.wait_connected(5)
    acked = []
    broker.process.send_signal(signal.SIGSTOP)  # the broker hangs: nothing is acknowledged
    try:
        for i in range(5):
            client.publish_values("s1", {"m": float(i)}, 1_700_000_000_000 + i, on_ack=lambda i=i: acked.append(i))
    finally:
        broker.process.kill()
        broker.process.wait(5)
    wait_until(lambda: not client.connected, 10, "the client to notice the broker is gone")
    agent._ready.clear()
    broker.start()
    assert agent._ready.wait(10), "the scripted agent did not subscribe again"
    assert client.wait_connected(10)
    client.publish_values("s1", {"m": 99.0}, 1_700_000_000_099, on_ack=lambda: acked.append(99))
    wait_until(lambda: agent.requests_on("/s1/metric/pushValues"), 10, "the new push at the agent")
    wait_until(lambda: acked == [99], 5, "the new push's PUBACK")
    pushed = [json.loads(p)["metrics"][0]["value"] for p in agent.requests_on("/s1/metric/pushValues")]
    assert pushed == [99.0]
    assert acked == [99]


def test_each_answer_arrives_once_so_back_to_back_requests_get_their_own(client, agent):
    outcomes = iter(["ok", "error", "ok", "error"] * 5)

    def alternate(topic, payload):
        if next(outcomes) == "ok":
            return [(topic + "/info/inbox", json.dumps("Sensor was changed."))]
        return [(topic + "/error/inbox", json.dumps({"errorMessage": "no", "errorcode": 15}))]

    agent.on(f"{PREFIX}/sensor/+/update", alternate)
    for _ in range(10):
        assert client.update_sensor("s1", name="a") == "Sensor was changed."
        with pytest.raises(AgentError):
            client.update_sensor("s1", name="a")


def test_error_of_a_blocking_push_is_not_also_reported_as_asynchronous(client, agent):
    reported = []
    client.on_push_error = lambda sensor_id, error: reported.append(sensor_id)
    agent.on(f"{PREFIX}/sensor/+/metric/pushValues",
             lambda t, p: [(t.rsplit("/metric/", 1)[0] + "/error/inbox",
                            json.dumps({"errorMessage": "bad", "errorcode": 27, "metrics": ["m"]}))])
    with pytest.raises(AgentError):
        client.push_values("s1", {"m": 1.0})
    agent.on(f"{PREFIX}/ping", echo_ping)
    assert client.ping("sync point") == "sync point"
    assert reported == []


def test_identity_whose_files_are_gone_is_a_clear_error(identity, pki, broker):
    from pibridge.agent.client import AgentClient
    from pibridge.agent.errors import ProvisioningError

    identity.key_file.unlink()
    with pytest.raises(ProvisioningError, match="run `pibridge provision` again"):
        AgentClient(identity, port=broker.api_port, ca_file=pki.ca_file)


def test_connack_not_authorised_marks_the_client_revoked(pki, identity, tmp_path, caplog):
    from pibridge.agent.client import AgentClient
    from support.agent_broker import Mosquitto

    (tmp_path / "strict").mkdir()
    strict = Mosquitto(tmp_path / "strict", pki, api_authorises_certificates=False)
    strict.start()
    client = AgentClient(identity, port=strict.api_port, ca_file=pki.ca_file, backoff=Backoff(0.05, 0.5))
    try:
        client.start()
        wait_until(lambda: client.revoked, 5, "revoked")
        assert not client.connected and "CONNACK: Not authorized" in caplog.text
    finally:
        client.stop()
        strict.stop()


def test_a_topic_learned_from_a_stray_message_is_unlearned_after_one_timeout(quick_client, agent):
    """A message on a vendor topic first (forged, or from another agent) must not deafen the client for good."""
    client = quick_client
    vendor = lambda t, p: [(t.rsplit("/metric/", 1)[0] + "/delete/info/inbox", b"deleted")]  # noqa: E731
    reference = lambda t, p: [(t + "/info/inbox", b"deleted")]  # noqa: E731
    agent.on(f"{PREFIX}/sensor/+/metric/delete", vendor)
    assert client.delete_metrics("s1", ["m1"]) == "deleted"
    agent.on(f"{PREFIX}/sensor/+/metric/delete", reference)
    with pytest.raises(AgentTimeout):
        client.delete_metrics("s1", ["m1"])
    assert client.delete_metrics("s1", ["m1"]) == "deleted"
