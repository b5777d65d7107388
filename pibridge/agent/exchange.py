"""The request machinery of :class:`~pibridge.agent.client.AgentClient`: one request, its answer.

:meth:`Exchange._request` subscribes to where a request is answered,
publishes it and waits for the answer or the error, one request at a time
per answer topic (the agent's answers carry no request ID), and remembers
which of the reference's and the vendor agent's topics an agent answers on.

The state all of this uses is set up in ``AgentClient.__init__``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

from pibridge.agent import topics
from pibridge.agent.answers import snippet
from pibridge.agent.errors import AgentConnectionLost, AgentError, AgentTimeout, ErrorCode, printable
from pibridge.agent.pending import Signal, Waiter

# Every part logs as the client, so one logger name still selects all it says.
log = logging.getLogger("pibridge.agent.client")

# Strict in what is sent: NaN or infinity raise rather than become JSON the agent cannot read.
ENCODE = json.JSONEncoder(allow_nan=False, separators=(",", ":"), ensure_ascii=False).encode


class Exchange:
    """Sending a request and waiting for its answer; a part of ``AgentClient``."""

    # Called from paho's network thread (Connection._on_message) for a
    # message no waiter takes.
    def _unexpected(self, topic: str, payload: bytes) -> None:
        with self._waiters_lock:
            waiters = set(self._waiters.values())
        for waiter in waiters:
            if topic == waiter.route.request:
                return  # our own request, seen through the request's wildcard subscription
            if topic.startswith(waiter.route.request + "/"):
                waiter.ignore(topic, (
                    f"the agent answered on {topic}, but the API reference answers this request on "
                    f"{waiter.route.answer} (errors on {waiter.route.error}): {snippet(payload)}"
                ))
                return
        log.debug("ignoring a message on %s: no request waits for it", printable(topic))

    def _fail_waiters(self, error: BaseException) -> None:
        with self._waiters_lock:
            waiters = set(self._waiters.values())
        for waiter in waiters:
            waiter.fail(error)

    def _topic_lock(self, topic: str) -> threading.Lock:
        with self._topic_locks_guard:
            lock = self._topic_locks.get(topic)
            if lock is None:
                lock = self._topic_locks[topic] = threading.Lock()
            return lock

    def _subscribe(self, wanted: list[str], deadline: float) -> None:
        """Subscribe to the topics of *wanted* not yet subscribed on this connection; wait for the SUBACK."""
        with self._sub_lock:
            covered = set(self._subscribed)
        missing = []
        # A topic already matched by a wildcard we hold is not subscribed again:
        # with overlapping subscriptions MQTT 3.1.1 lets a broker deliver an
        # answer twice, and the second copy could pass for the next one's.
        for topic in wanted:
            wildcards = (sub for sub in covered if "+" in sub or "#" in sub)
            if topic in covered or any(mqtt.topic_matches_sub(sub, topic) for sub in wildcards):
                continue
            missing.append(topic)
            covered.add(topic)
        if not missing:
            return
        signal = Signal()
        self._subacks.begin()
        try:
            rc, mid = self._mqtt.subscribe([(t, 1) for t in missing])
        except BaseException:
            self._subacks.abort()
            raise
        if rc != mqtt.MQTT_ERR_SUCCESS:
            self._subacks.abort()
            raise AgentConnectionLost(f"cannot subscribe to {missing[0]}: {mqtt.error_string(rc)}")
        early, codes = self._subacks.register(mid, signal)
        if early:
            signal.set(codes)
        if not signal.event.wait(max(0.0, deadline - time.monotonic())):
            self._subacks.drop(mid)
            raise AgentTimeout(f"the broker did not confirm the subscription to {missing[0]} in time")
        if signal.error is not None:
            raise signal.error
        refused = [t for t, code in zip(missing, signal.value) if code.is_failure]
        if refused:
            raise AgentError(ErrorCode.FORBIDDEN_ACCESS, f"the broker refused the subscription to {refused[0]}")
        with self._sub_lock:
            self._subscribed.update(missing)

    def _request(
        self,
        route: topics.Route,
        body: object,
        parse: Callable[[bytes, str], object],
        *,
        kind: str,
        watch_request: bool = True,
    ) -> object:
        """Publish *body* on the route's request topic and wait for its answer or error.

        Requests sharing an answer or error topic run one at a time: the
        agent's answers carry no request ID.  The answer is awaited on the
        reference's topic and the vendor agent's; once an agent has answered a
        *kind* of request on one of them, later ones wait there only (an agent
        answering on both would otherwise answer the next request with the
        copy of the last answer).  With *watch_request*, messages on topics
        below the request topic, where no answer belongs, are reported.
        Answers that cannot be understood are logged and skipped; if no
        understood one comes in time, the error says what came instead.
        """
        deadline = time.monotonic() + self.timeout
        self._require_connection(route.request)
        payload = ENCODE(body).encode()
        answer_topics = self._expected(kind, "answer", route.answers)
        error_topics = self._expected(kind, "error", route.errors)
        every = set(route.answers) | set(route.errors)
        locks = [self._topic_lock(t) for t in sorted(every)]
        held: list[threading.Lock] = []
        try:
            for lock in locks:
                if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    raise AgentTimeout(f"another request on {route.answer} did not finish within {self.timeout:g} s")
                held.append(lock)
            wanted = [route.request + "/#"] if watch_request else []
            wanted += [*answer_topics, *error_topics]
            self._subscribe(wanted, deadline)
            waiter = Waiter(route, answer_topics, error_topics, parse, self._complaints)
            with self._waiters_lock:
                for topic in every:
                    self._waiters[topic] = waiter
            try:
                # QoS 0: the answer is the acknowledgement.  paho would keep a
                # QoS 1 request across a reconnect and send it again after
                # the caller had already been told the connection was lost.
                info = self._mqtt.publish(route.request, payload, qos=0)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    raise AgentConnectionLost(f"cannot send {route.request}: {mqtt.error_string(info.rc)}")
                if not waiter.event.wait(max(0.0, deadline - time.monotonic())):
                    if waiter.elsewhere:
                        # What was learned (perhaps from a stray message) is wrong: listen everywhere again.
                        self._learned.pop((kind, "answer"), None)
                        self._learned.pop((kind, "error"), None)
                    raise waiter.no_answer(self.timeout)
            finally:
                with self._waiters_lock:
                    for topic in every:
                        if self._waiters.get(topic) is waiter:
                            del self._waiters[topic]
        finally:
            for lock in reversed(held):
                lock.release()
        self._learn(kind, route, waiter.answered_on)
        if waiter.error is not None:
            raise waiter.error
        return waiter.value

    def _expected(self, kind: str, which: str, candidates: tuple[str, ...]) -> tuple[str, ...]:
        index = self._learned.get((kind, which))
        if index is not None and index < len(candidates):
            return (candidates[index],)
        return candidates

    def _learn(self, kind: str, route: topics.Route, topic: str | None) -> None:
        if topic is None:
            return
        for which, candidates in (("answer", route.answers), ("error", route.errors)):
            if topic in candidates and len(candidates) > 1 and (kind, which) not in self._learned:
                self._learned[(kind, which)] = candidates.index(topic)
                if topic not in (route.answer, route.error):
                    log.info("the agent answers %s requests on the vendor SDK topic %s", kind, topic)
