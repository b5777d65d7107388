"""Pushes the simulator stores in one transaction: order, answers after the commit, refusals, revocation, faults.

Every test queues its requests while a second SQLite connection holds the
write lock of ``state.db`` (what ``--dump`` or a stray ``sqlite3`` shell could
do): the simulator's worker cannot commit, so the requests pile up in its
queue and are handled as one batch once the lock is gone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sqlite3
import threading

from pibridge.agent.errors import ErrorCode
from pibridge.sim import Simulator
from tests.support.waiting import wait_until

CELSIUS = {"name": "t", "valueUnit": "SI.Temperature.CELSIUS"}
PERCENT = {"name": "h", "valueUnit": "NoSI.Dimensionless.PERCENT"}


@contextlib.contextmanager
def store_locked(sim: Simulator):
    """Hold the write lock of the simulator's state.db until the ``with`` ends."""
    db = sqlite3.connect(sim.store.path, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        yield
        db.execute("ROLLBACK")
    finally:
        db.close()


class Recorder:
    """Every answer, error and live data the client receives, in the order it arrives, across all its topics.

    *on_answer*, if given, runs for each message on a push's answer topic
    (in the client's network thread) and its result is kept beside the message.
    """

    def __init__(self, client, on_answer=None):
        self.log: list[tuple[str, bytes, object]] = []
        self._cond = threading.Condition()
        self._client = client
        self._on_answer = on_answer
        self._forward = client.mqtt.client.on_message
        client.mqtt.client.on_message = self._on_message

    def _on_message(self, mqtt_client, userdata, message):
        if not message.topic.endswith(("/inbox", "/livedata")):  # the client's own requests, back to it
            self._forward(mqtt_client, userdata, message)
            return
        seen = None
        if self._on_answer is not None and message.topic.endswith("/info/inbox"):
            seen = self._on_answer()
        with self._cond:
            self.log.append((message.topic[len(self._client.base):], bytes(message.payload), seen))
            self._cond.notify_all()
        self._forward(mqtt_client, userdata, message)

    def wait_for(self, count: int, timeout: float = 15.0) -> list[tuple[str, bytes, object]]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.log) >= count, timeout):
                raise TimeoutError(f"{len(self.log)} of {count} messages arrived: {[t for t, _, _ in self.log]}")
            return list(self.log)


def push_body(values: dict, timestamp: int) -> dict:
    return {"metrics": [{"metricId": m, "value": v} for m, v in values.items()], "timestamp": timestamp}


def publish_all(client, requests: list[tuple[str, object]]) -> None:
    """Publish (path, payload) pairs in order; return once the broker has every one (PUBACK)."""
    infos = []
    for path, payload in requests:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload)
        infos.append(client.mqtt.client.publish(client.base + path, raw, qos=1))
    for info in infos:
        info.wait_for_publish(10)
        assert info.is_published()


def barrier(client) -> None:
    """Return once the simulator has handled everything this client sent before (it answers in order)."""
    assert client.call("/ping", {"request": "done?"}, "/ping/info/inbox", "/ping/error/inbox") == (
        "answer", {"answer": "done?"})


def test_queued_pushes_are_stored_in_order_and_each_answered_once_after_its_values_are_stored(
        client, shared_sim, caplog):
    caplog.set_level(logging.DEBUG, logger="pibridge.sim")
    sid = client.create_sensor("porch")
    t, h = client.create_metrics(sid, CELSIUS, PERCENT)
    answers = Recorder(client, on_answer=lambda: len(shared_sim.store.values(client.id, sid)))
    n = 150
    with store_locked(shared_sim):
        publish_all(client, [(f"/sensor/{sid}/metric/pushValues", push_body({t: i, h: i / 2}, 1_700_000_000_000 + i))
                             for i in range(n)])
        # Nothing can be committed yet, so nothing may be answered.
        assert client.mqtt.quiet(f"{client.base}/sensor/{sid}/info/inbox", 0.3)
    client.mqtt.expect(f"{client.base}/sensor/{sid}/info/inbox", timeout=15, count=n)
    barrier(client)

    values = shared_sim.store.values(client.id, sid)
    assert [(v["metric_id"], v["value"], v["timestamp_ms"]) for v in values] == [
        (m, value, 1_700_000_000_000 + i) for i in range(n) for m, value in ((t, i), (h, i / 2))]
    pushed = [entry for entry in answers.log if entry[0] == f"/sensor/{sid}/info/inbox"]
    assert len(pushed) == n
    assert all(json.loads(payload) == "Sensor was updated." for _, payload, _ in pushed)
    # The k-th answer came once the k-th push's two values (and all before) could be read back.
    assert all(seen >= 2 * (k + 1) for k, (_, _, seen) in enumerate(pushed)), [seen for _, _, seen in pushed]
    # Live data (QoS 0) comes in request order too, once per push.
    live = [json.loads(p)["timestamp"] for topic, p, _ in answers.log if topic == f"/sensor/{sid}/livedata"]
    assert live == [1_700_000_000_000 + i for i in range(n)]

    batches = [tuple(map(int, re.match(r"batch of (\d+) push\(es\): (\d+) stored", r.getMessage()).groups()))
               for r in caplog.records if r.getMessage().startswith("batch of ")]
    assert sum(stored for _, stored in batches) == n
    assert max(size for size, _ in batches) > 1, batches
    assert shared_sim.store.metric(client.id, sid, t)["last_value"] == n - 1
    assert shared_sim.store.metric(client.id, sid, t)["last_updated_us"] == (1_700_000_000_000 + n - 1) * 1000


def test_a_refused_push_in_a_batch_gets_its_error_and_its_neighbours_are_stored_and_answered(client, shared_sim):
    sid = client.create_sensor("shed")
    t, h = client.create_metrics(sid, CELSIUS, PERCENT)
    messages = Recorder(client)
    push = f"/sensor/{sid}/metric/pushValues"
    with store_locked(shared_sim):
        publish_all(client, [
            (push, push_body({t: 1.0, h: 10.0}, 1000)),
            (push, push_body({t: 2.0, h: "damp"}, 2000)),  # h is refused, t is stored
            (push, b"{not json"),
            (push, push_body({t: 4.0, h: 40.0}, 4000)),
        ])
    messages.wait_for(7)
    barrier(client)
    log = [(topic, json.loads(body)) for topic, body, _ in messages.log if "/ping/" not in topic]
    live, answer, error = (f"/sensor/{sid}/{end}" for end in ("livedata", "info/inbox", "error/inbox"))
    assert [topic for topic, _ in log] == [live, answer, live, error, error, live, answer]
    assert log[0][1] == {"metrics": [{"metricId": t, "value": 1.0}, {"metricId": h, "value": 10.0}], "timestamp": 1000}
    assert log[2][1] == {"metrics": [{"metricId": t, "value": 2.0}], "timestamp": 2000}
    assert (log[3][1]["errorcode"], log[3][1]["metrics"]) == (ErrorCode.PUSH_VALUES_FAILED, [h])
    assert log[4][1]["errorcode"] == ErrorCode.INVALID_JSON
    assert log[5][1]["timestamp"] == 4000
    assert log[1][1] == log[6][1] == "Sensor was updated."
    assert [(v["metric_id"], v["value"]) for v in shared_sim.store.values(client.id, sid)] == [
        (t, 1.0), (h, 10.0), (t, 2.0), (t, 4.0), (h, 40.0)]


def test_pushes_in_one_batch_see_the_sensor_and_metrics_an_earlier_one_created(client, shared_sim):
    push = "/sensor/garden/metric/pushValues"
    with store_locked(shared_sim):
        publish_all(client, [
            (push, push_body({"soil": 1.5}, 1000)),
            (push, push_body({"soil": 2.5, "state": "dry"}, 2000)),
            (push, push_body({"soil": 3.5, "state": "wet"}, 3000)),
        ])
    client.mqtt.expect(f"{client.base}/sensor/garden/info/inbox", timeout=15, count=3)
    barrier(client)
    assert client.mqtt.count(f"{client.base}/sensor/garden/error/inbox") == 0
    assert shared_sim.store.sensors(client.id) == [
        {"sensor_id": "garden", "name": "garden", "state": None, "metrics": ["soil", "state"]}]
    metrics = {m["metric_id"]: m for m in shared_sim.store.metrics(client.id, "garden")}
    assert (metrics["soil"]["value_type"], metrics["soil"]["last_value"]) == ("double", 3.5)
    assert (metrics["state"]["value_type"], metrics["state"]["last_value"]) == ("string", "wet")
    assert [v["value"] for v in shared_sim.store.values(client.id, "garden")] == [1.5, 2.5, "dry", 3.5, "wet"]


def test_a_metric_deleted_between_queued_pushes_is_created_again_by_the_later_push(client, shared_sim):
    sid = client.create_sensor("attic")
    (t,) = client.create_metrics(sid, CELSIUS)
    push = f"/sensor/{sid}/metric/pushValues"
    with store_locked(shared_sim):
        publish_all(client, [
            (push, push_body({t: 20.0}, 1000)),
            (f"/sensor/{sid}/metric/delete", {"metrics": [{"metricId": t}]}),
            # A double metric would refuse text; the one created again takes its type from the value.
            (push, push_body({t: "twenty"}, 2000)),
        ])
    client.mqtt.expect(f"{client.base}/sensor/{sid}/info/inbox", timeout=15, count=2)
    barrier(client)
    assert client.mqtt.count(f"{client.base}/sensor/{sid}/error/inbox") == 0
    metric = shared_sim.store.metric(client.id, sid, t)
    assert (metric["name"], metric["value_unit"], metric["value_type"], metric["last_value"]) == (
        t, None, "string", "twenty")
    assert [v["value"] for v in shared_sim.store.values(client.id, sid)] == [20.0, "twenty"]


def test_a_client_deleted_between_queued_pushes_has_only_the_earlier_push_stored(client_factory, shared_sim):
    doomed, other = client_factory(shared_sim, "doomed"), client_factory(shared_sim, "other")
    sid = doomed.create_sensor("cellar")
    (t,) = doomed.create_metrics(sid, CELSIUS)
    push = f"/sensor/{sid}/metric/pushValues"
    with store_locked(shared_sim):
        publish_all(doomed, [(push, push_body({t: 1.0}, 1000)), ("/delete", {}), (push, push_body({t: 2.0}, 2000))])
    # The simulator handles requests in the order the broker passed them on, whichever client sent them.
    barrier(other)
    assert not shared_sim.store.is_active(doomed.id)
    assert [v["value"] for v in shared_sim.store.values(doomed.id)] == [1.0]


def test_faults_apply_to_each_queued_push(client, shared_sim):
    sid = client.create_sensor("roof")
    (t,) = client.create_metrics(sid, CELSIUS)
    push = f"/sensor/{sid}/metric/pushValues"
    error = f"{client.base}/sensor/{sid}/error/inbox"
    try:
        shared_sim.faults.error_code = ErrorCode.INTERNAL_ERROR
        with store_locked(shared_sim):
            publish_all(client, [(push, push_body({t: float(i)}, 1000 + i)) for i in range(3)])
            # Refused pushes store nothing, so their errors need no commit: they come while the file is locked.
            client.mqtt.expect(error, timeout=15, count=3)
        shared_sim.faults.error_code = None
        shared_sim.faults.ignored = frozenset({"push_values"})
        with store_locked(shared_sim):
            publish_all(client, [(push, push_body({t: 9.0}, 9000))])
        barrier(client)
        shared_sim.faults.ignored = frozenset()
        with store_locked(shared_sim):
            publish_all(client, [(push, push_body({t: 10.0}, 10_000))])
        client.mqtt.expect(f"{client.base}/sensor/{sid}/info/inbox", timeout=15)
    finally:
        shared_sim.faults.error_code = None
        shared_sim.faults.ignored = frozenset()
    assert [json.loads(e)["errorcode"] for e in client.mqtt.messages[error]] == [ErrorCode.INTERNAL_ERROR] * 3
    assert client.mqtt.count(f"{client.base}/sensor/{sid}/info/inbox") == 1
    assert [v["value"] for v in shared_sim.store.values(client.id, sid)] == [10.0]


def test_a_batch_that_cannot_be_committed_is_refused_push_by_push_and_nothing_of_it_is_stored(client, shared_sim):
    sid = client.create_sensor("vault")
    (t,) = client.create_metrics(sid, CELSIUS)
    push = f"/sensor/{sid}/metric/pushValues"
    error = f"{client.base}/sensor/{sid}/error/inbox"
    with store_locked(shared_sim):
        publish_all(client, [(push, push_body({t: 1.0}, 1000)), (push, push_body({t: "x"}, 2000)),
                             (push, push_body({t: 3.0}, 3000))])
        # SQLite gives up waiting for the lock after 5 s: the batch fails while the file is still locked.
        client.mqtt.expect(error, timeout=20, count=3)
    errors = [json.loads(e) for e in client.mqtt.messages[error]]
    assert [e["errorcode"] for e in errors] == [
        ErrorCode.INTERNAL_ERROR, ErrorCode.PARAMETER_IS_NOT_A_DOUBLE, ErrorCode.INTERNAL_ERROR]
    assert "locked" in errors[0]["errorMessage"]
    assert client.mqtt.count(f"{client.base}/sensor/{sid}/livedata") == 0
    assert client.mqtt.count(f"{client.base}/sensor/{sid}/info/inbox") == 0
    assert client.push(sid, {t: 4.0}, 4000) == ("answer", "Sensor was updated.")
    assert [v["value"] for v in shared_sim.store.values(client.id, sid)] == [4.0]
    assert shared_sim.store.metric(client.id, sid, t)["last_value"] == 4.0
