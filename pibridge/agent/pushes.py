"""Push tracking of :class:`~pibridge.agent.client.AgentClient`: values sent without waiting, live data.

:meth:`Pushes.publish_values` publishes at QoS 1 and reports the broker's
PUBACK through ``on_ack``; the agent's later answers and errors for such
pushes (counted per sensor, :class:`PushCounts`) and the live data it
republishes arrive through paho's network thread
(:meth:`~pibridge.agent.connection.Connection._on_message`).

The state all of this uses is set up in ``AgentClient.__init__``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import paho.mqtt.client as mqtt

from pibridge.agent import answers, topics
from pibridge.agent.answers import decode_answer, snippet
from pibridge.agent.errors import AgentConnectionLost, ProtocolError
from pibridge.agent.exchange import ENCODE
from pibridge.agent.requests import check_id
from pibridge.readings import Value

# Every part logs as the client, so one logger name still selects all it says.
log = logging.getLogger("pibridge.agent.client")


def push_body(values: Mapping[str, Value], timestamp_ms: int | None) -> bytes:
    """The JSON of a pushValues request (section 5.1)."""
    body: dict = {"metrics": [{"metricId": k, "value": v} for k, v in values.items()]}
    if timestamp_ms is not None:
        body["timestamp"] = timestamp_ms
    try:
        return ENCODE(body).encode()
    except TypeError as exc:
        raise ValueError(f"values must be numbers, bools or strings: {exc}") from None


class PushCounts:
    """How many pushes of each sensor one connection sent, and how many of them the agent answered.

    The agent handles a client's messages in order and answers each push once,
    on the sensor's ``info/inbox`` (``"Sensor was updated."``) or its
    ``error/inbox``.  So after *n* answers for a sensor it has handled at least
    the first *n* pushes of that sensor on this connection, whatever it
    answered: an answer it left out only makes the count lag (a later push
    then waits for the owner's next ping), never run ahead.  An answer beyond
    the pushes sent is not counted (a stale or stray message).  A new
    connection starts new counts.

    ``sent`` is written by the pushing thread, ``answered`` by paho's thread.
    """

    __slots__ = ("sent", "answered")

    def __init__(self) -> None:
        self.sent: dict[str, int] = {}
        self.answered: dict[str, int] = {}


class Pushes:
    """Values published without waiting, and the agent's live data and push errors; a part of ``AgentClient``."""

    def publish_values(
        self,
        sensor_id: str,
        values: Mapping[str, Value],
        timestamp_ms: int,
        on_ack: Callable[[], None] | None = None,
    ) -> tuple[PushCounts, int]:
        """Publish one sensor's values (QoS 1) without waiting for any answer.

        ``on_ack()`` is called from paho's thread when the broker confirms it
        has the message (PUBACK), or exceptionally from this thread if the
        confirmation raced ahead of this call.  Errors the agent reports later
        go to :attr:`on_push_error`.  Raises AgentConnectionLost at once when
        not connected, ValueError for a value JSON cannot carry (NaN).

        Returns the connection's :class:`PushCounts` and the number of this
        push among the sensor's pushes counted there (0 for the first): once
        :attr:`on_push_answered` reports more answers than that number for the
        same counts, the agent has handled this push.  Pushes of one sensor
        must come from one thread at a time for the numbers to hold.
        """
        if not self._connected:
            self._require_connection("values")
        topic = self._push_topics.get(sensor_id)
        if topic is None:
            topic = self._push_topics[sensor_id] = topics.push_values(
                self.client_id, check_id("sensor", sensor_id)
            ).request
        payload = push_body(values, timestamp_ms)
        # In this order, against the supervisor's (counts, handlers, client): all three belong to
        # one connection, or the push goes to a closed client and is only counted too many.
        client = self._mqtt
        acks = self._acks
        counts = self._push_counts
        sent = counts.sent
        number = sent.get(sensor_id, 0)
        # Counted before it goes out: its answer may come back before publish returns.
        sent[sensor_id] = number + 1
        if on_ack is None:
            info = client.publish(topic, payload, 1)
            if info.rc:
                raise AgentConnectionLost(f"cannot send values of {sensor_id}: {mqtt.error_string(info.rc)}")
            return counts, number
        acks.begin()
        try:
            info = client.publish(topic, payload, 1)
        except BaseException:
            acks.abort()
            raise
        if info.rc:
            acks.abort()
            raise AgentConnectionLost(f"cannot send values of {sensor_id}: {mqtt.error_string(info.rc)}")
        early, _ = acks.register(info.mid, on_ack)
        if early:
            on_ack()
        return counts, number

    def subscribe_livedata(self, callback: Callable[[str, dict], None], sensor_id: str | None = None) -> None:
        """Call ``callback(sensor_id, payload)`` for every value the agent republishes as live data.

        Without *sensor_id*, for all sensors of this client.  The callback
        runs in paho's thread; the subscription is renewed after reconnects.
        When connected, this waits until the broker confirms the subscription.
        """
        if sensor_id is not None:
            check_id("sensor", sensor_id)
        topic = topics.livedata(self.client_id, sensor_id or "+")
        self._livedata[topic] = callback
        if self._connected:
            self._subscribe([topic], time.monotonic() + self.timeout)

    # The ones below are called from paho's network thread (Connection._on_message)
    # and must not block.

    def _deliver_livedata(self, topic: str, payload: bytes) -> None:
        if not topic.startswith(self._client_prefix):
            return
        sensor_id = topic[len(self._client_prefix):].split("/")[1]
        try:
            body = decode_answer(payload, topic)
        except ProtocolError as exc:
            self._complaints(topic, f"ignoring live data: {exc}")
            return
        if not isinstance(body, dict):
            self._complaints(topic, f"ignoring live data on {topic}: expected a JSON object, got {snippet(payload)}")
            return
        for sub, callback in list(self._livedata.items()):
            if mqtt.topic_matches_sub(sub, topic):
                try:
                    callback(sensor_id, body)
                except Exception:
                    log.exception("a live-data callback raised; ignored")

    def _count_push_answer(self, sensor_id: str, topic: str, payload: bytes) -> None:
        try:
            answers.decode_text(payload, topic)
        except ProtocolError as exc:
            self._complaints(topic, f"not counted as the answer to a push: {exc}")
            return
        self._push_answered(sensor_id)

    def _push_answered(self, sensor_id: str) -> None:
        counts = self._push_counts
        answered = counts.answered.get(sensor_id, 0)
        if answered >= counts.sent.get(sensor_id, 0):
            return
        counts.answered[sensor_id] = answered = answered + 1
        callback = self.on_push_answered
        if callback is not None:
            try:
                callback(counts, sensor_id, answered)
            except Exception:
                log.exception("on_push_answered raised; ignored")

    def _deliver_push_error(self, sensor_id: str, topic: str, payload: bytes) -> None:
        try:
            error = answers.error_answer(payload, topic)
        except ProtocolError as exc:
            self._complaints(topic, f"ignoring a malformed push error: {exc}")
            return
        # Refused or not, the agent has handled the push: it counts as answered.
        self._push_answered(sensor_id)
        callback = self.on_push_error
        if callback is None:
            log.warning("the agent refused values for sensor %r: %s", sensor_id, error)
            return
        try:
            callback(sensor_id, error)
        except Exception:
            log.exception("on_push_error raised; ignored")
