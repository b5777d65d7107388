"""Counting the agent's answers to pushes (section 5.1: ``"Sensor was updated."`` on the sensor's
``info/inbox``, errors on its ``error/inbox``), which tells the bridge the agent has handled them.

Real Mosquitto, real mutual TLS; the agent's answers are scripted.
"""

from __future__ import annotations

import json
import threading

from support.agent_broker import CLIENT_ID, wait_until

PREFIX = f"/v1.0/{CLIENT_ID}"
PUSH = f"{PREFIX}/sensor/+/metric/pushValues"


def sensor_of(topic: str) -> str:
    return topic.split("/")[4]


class Answers:
    """What ``on_push_answered`` reported, per sensor: the latest count."""

    def __init__(self, client):
        self.counts = None
        self.latest: dict[str, int] = {}
        self.calls = 0
        self._lock = threading.Lock()
        client.on_push_answered = self

    def __call__(self, counts, sensor_id, n):
        with self._lock:
            self.counts = counts
            self.calls += 1
            assert n == self.latest.get(sensor_id, 0) + 1, "answers are reported one at a time"
            self.latest[sensor_id] = n


def test_each_answer_and_each_error_counts_once_per_sensor(client, agent):
    refuse = {"b": 1}

    def answer_or_refuse(topic, payload):
        sensor = sensor_of(topic)
        value = json.loads(payload)["metrics"][0]["value"]
        if sensor in refuse and value == refuse[sensor]:
            return [(f"{PREFIX}/sensor/{sensor}/error/inbox",
                     json.dumps({"errorMessage": "bad", "errorcode": 27, "metrics": ["m"]}))]
        return [(f"{PREFIX}/sensor/{sensor}/info/inbox", json.dumps("Sensor was updated."))]

    agent.on(PUSH, answer_or_refuse)
    seen = Answers(client)
    refused = []
    client.on_push_error = lambda sensor_id, error: refused.append((sensor_id, error.code))
    tickets = [client.publish_values(s, {"m": i}, 1_700_000_000_000 + i) for i in range(3) for s in ("a", "b")]
    wait_until(lambda: seen.latest == {"a": 3, "b": 3}, 5, "three answers for each sensor")
    assert [number for _, number in tickets] == [0, 0, 1, 1, 2, 2]
    assert all(counts is seen.counts for counts, _ in tickets)
    assert refused == [("b", 27)]


def test_no_more_answers_are_counted_than_pushes_were_sent(client, agent):
    """A stray or stale message on the answer topic must not make a later push look handled."""
    agent.on(PUSH, lambda t, p: [(t.rsplit("/metric/", 1)[0] + "/info/inbox", b"Sensor was updated.")] * 3)
    seen = Answers(client)
    client.publish_values("a", {"m": 1}, 1_700_000_000_000)
    client.publish_values("a", {"m": 2}, 1_700_000_000_001)
    wait_until(lambda: seen.latest.get("a") == 2, 5, "both pushes answered")
    # The four extra answers are on their way behind the counted ones; a ping's echo comes after them.
    agent.on(f"{PREFIX}/ping", lambda t, p: [(t + "/info/inbox", json.dumps({"answer": json.loads(p)["request"]}))])
    client.ping()
    assert seen.latest == {"a": 2} and seen.calls == 2


def test_an_answer_that_is_not_text_is_not_counted(client, agent, caplog):
    answers = iter([b"\xff\xfe not text", b'"Sensor was updated."'])
    agent.on(PUSH, lambda t, p: [(t.rsplit("/metric/", 1)[0] + "/info/inbox", next(answers))])
    seen = Answers(client)
    client.publish_values("a", {"m": 1}, 1_700_000_000_000)
    client.publish_values("a", {"m": 2}, 1_700_000_000_001)
    wait_until(lambda: seen.latest.get("a") == 1, 5, "the readable answer")
    assert "not counted as the answer to a push" in caplog.text


def test_a_new_connection_counts_afresh(make_client, identity, agent, broker):
    agent.on(PUSH, lambda t, p: [(t.rsplit("/metric/", 1)[0] + "/info/inbox", b"Sensor was updated.")])
    client = make_client(identity)
    seen = Answers(client)
    client.start()
    assert client.wait_connected(5)
    first, number = client.publish_values("a", {"m": 1}, 1_700_000_000_000)
    wait_until(lambda: seen.latest.get("a") == 1, 5, "the first answer")
    broker.stop()
    wait_until(lambda: not client.connected, 10, "the client to notice the broker is gone")
    agent._ready.clear()
    broker.start()
    assert agent._ready.wait(10), "the scripted agent did not subscribe again"
    assert client.wait_connected(10)
    seen.latest.clear()
    second, again = client.publish_values("a", {"m": 2}, 1_700_000_000_001)
    wait_until(lambda: seen.latest.get("a") == 1, 5, "the answer on the new connection")
    assert second is not first and number == again == 0
    assert seen.counts is second
