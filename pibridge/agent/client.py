"""A blocking, typed client of the TeamViewer IoT Agent's MQTT API.

Give it the :class:`~pibridge.agent.identity.Identity` from
:func:`~pibridge.agent.identity.provision` and the agent's CA file::

    client = AgentClient(identity, ca_file=Path("/var/lib/teamviewer-iot-agent/certs/TeamViewerAuthority.crt"))
    client.start()
    client.wait_connected(10)
    sensor = client.create_sensor("greenhouse")
    [temp_id] = client.create_metrics(sensor.sensor_id, [MetricDefinition("temperature", ValueUnit.CELSIUS)])
    client.push_values(sensor.sensor_id, {temp_id: 21.5})

Every request method publishes, waits for the agent's answer (or its error)
and returns parsed data.  It raises :class:`AgentError` when the agent
refuses (with the agent's error code), :class:`AgentTimeout` when no answer
comes in time, :class:`AgentConnectionLost` when the connection is down or
drops while waiting, and :class:`ProtocolError` when only answers it could
not understand came in time (each is logged and skipped as it arrives, see
:mod:`pibridge.agent.answers` for what is understood).

Threads: :meth:`start` runs a supervisor thread that connects, and for
each connection paho runs one network thread that calls every callback
(``on_connection_change``, ``on_push_error``, live-data callbacks, ``on_ack``
of :meth:`publish_values`).  Those callbacks must return quickly: while one
runs, no answer can arrive.  Request methods may be called from any thread.
"""

from __future__ import annotations

import enum
import itertools
import json
import logging
import math
import random
import re
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt

from pibridge.agent import answers, topics
from pibridge.agent.answers import (  # noqa: F401  (part of this module's interface)
    MAX_ANSWER_BYTES,
    MetricInfo,
    SensorInfo,
    decode_answer,
    snippet,
)
from pibridge.agent.errors import (
    AgentConnectionLost,
    AgentError,
    AgentTimeout,
    ErrorCode,
    ProtocolError,
    printable,
)
from pibridge.agent.identity import Identity, describe_tls_failure, remove_identity, tls_context
from pibridge.agent.pending import Complaints, MidTable, Signal, Waiter
from pibridge.readings import Value
from pibridge.units import MetricDefinition

log = logging.getLogger(__name__)

_ID = re.compile(r"[A-Za-z0-9 _-]{1,32}")
_ENCODE = json.JSONEncoder(allow_nan=False, separators=(",", ":"), ensure_ascii=False).encode

# TLS alerts by which a broker says "your certificate is not acceptable",
# as opposed to "you cannot reach me".
_CERT_REFUSED_ALERTS = (
    "CERTIFICATE_REVOKED",
    "BAD_CERTIFICATE",
    "UNKNOWN_CA",
    "CERTIFICATE_UNKNOWN",
    "CERTIFICATE_EXPIRED",
    "ACCESS_DENIED",
    "CERTIFICATE_REQUIRED",
    "UNSUPPORTED_CERTIFICATE",
    "DECRYPT_ERROR",
)


class SensorState(enum.IntEnum):
    """The state a sensor can be set to with :meth:`AgentClient.update_sensor` (section 5.2.3)."""

    OFFLINE = 1
    ONLINE = 2


@dataclass(frozen=True)
class MetricUpdate:
    """A new name and/or annotation for one metric (section 5.3.3)."""

    metric_id: str
    name: str | None = None
    annotation: str | None = None


@dataclass(frozen=True)
class Backoff:
    """How long to wait between connection attempts.

    The n-th wait is ``initial * factor**n`` capped at ``maximum``, then
    multiplied by a random factor in [1 - jitter, 1] so that many clients
    restarted together do not reconnect in lock-step.
    """

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield delay * (1.0 - self.jitter * random.random())
            delay = min(delay * self.factor, self.maximum)


def check_id(kind: str, value: str) -> str:
    """*value* if it can be a sensor or metric ID, else ValueError (IDs become topic levels)."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValueError(
            f"{kind} ID {value!r} is not valid: use 1 to 32 letters, digits, spaces, '_' or '-'"
        )
    return value


def _check_value(metric_id: str, value: object) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"metric {metric_id!r}: {value} cannot be sent (JSON has no NaN or infinity)")
    if not isinstance(value, (bool, int, float, str)):
        raise ValueError(f"metric {metric_id!r}: value {value!r} must be a number, a bool or a string")


def push_body(values: Mapping[str, Value], timestamp_ms: int | None) -> bytes:
    """The JSON of a pushValues request (section 5.1)."""
    body: dict = {"metrics": [{"metricId": k, "value": v} for k, v in values.items()]}
    if timestamp_ms is not None:
        body["timestamp"] = timestamp_ms
    try:
        return _ENCODE(body).encode()
    except TypeError as exc:
        raise ValueError(f"values must be numbers, bools or strings: {exc}") from None


# --------------------------------------------------------------------------- the client


class AgentClient:
    """A connection to the agent's API port (mutual TLS) and every request of the API.

    ``on_connection_change(connected)`` is called from paho's network thread
    whenever the connection comes up or goes down; it must not block.
    ``timeout`` is the default time each request waits for its answer.
    ``backoff`` sets the reconnect delays.
    """

    def __init__(
        self,
        identity: Identity,
        *,
        host: str = "localhost",
        port: int = 18884,
        ca_file: Path,
        timeout: float = 10.0,
        keepalive: int = 30,
        on_connection_change: Callable[[bool], None] | None = None,
        backoff: Backoff = Backoff(),
    ) -> None:
        self.identity = identity
        self.client_id = identity.client_id
        self.host, self.port, self.ca_file = host, port, Path(ca_file)
        self.timeout = timeout
        self.keepalive = keepalive
        self.on_connection_change = on_connection_change
        #: Called as ``on_push_error(sensor_id, error)`` from paho's thread when the
        #: agent reports an error for a :meth:`publish_values` push.
        self.on_push_error: Callable[[str, AgentError], None] | None = None
        self._backoff = backoff

        self._mqtt = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"pibridge-{self.client_id[:12]}-{secrets.token_hex(3)}",
            protocol=mqtt.MQTTv311,
            clean_session=True,
            reconnect_on_failure=False,
        )
        self._mqtt.suppress_exceptions = True
        self._mqtt.tls_set_context(tls_context(self.ca_file, identity.cert_file, identity.key_file))
        self._mqtt.on_connect = self._on_connect
        self._mqtt.on_disconnect = self._on_disconnect
        self._mqtt.on_message = self._on_message
        self._mqtt.on_publish = self._on_publish
        self._mqtt.on_subscribe = self._on_subscribe
        self._mqtt.on_log = self._on_log
        self._mqtt.on_socket_open = self._on_socket_open

        self._connected = False
        self._connected_event = threading.Event()
        self._revoked = False
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._connect_lock = threading.Lock()
        self._supervisor: threading.Thread | None = None
        self._attempt_error: str | None = None
        self._attempt_reported = False
        self._session_up = False
        self._last_problem: str | None = None

        self._acks = MidTable()
        self._subacks = MidTable()
        self._sub_lock = threading.Lock()
        self._subscribed: set[str] = set()
        self._topic_locks: dict[str, threading.Lock] = {}
        self._topic_locks_guard = threading.Lock()
        self._waiters: dict[str, Waiter] = {}
        self._waiters_lock = threading.Lock()

        self._client_prefix = f"/{topics.VERSION}/{self.client_id}/"
        self._push_error_topic = topics.push_values(self.client_id, "+").error
        self._push_topics: dict[str, str] = {}
        self._livedata: dict[str, Callable[[str, dict], None]] = {}
        # Numbers (as strings) that no earlier run is likely to have used: an agent may turn
        # matchingIds into numbers, and a stale answer must not match.
        self._matching = itertools.count(secrets.randbelow(9 * 10**8) + 10**8)
        self._ping_family = f"pibridge-{secrets.token_hex(3)}"
        self._pings = itertools.count(1)
        self._complaints = Complaints()
        self._learned: dict[tuple[str, str], int] = {}

    # ------------------------------------------------------------ connection

    @property
    def connected(self) -> bool:
        """True while the agent has accepted our connection."""
        return self._connected

    @property
    def revoked(self) -> bool:
        """True once the agent refused our certificate (client deleted or certificate revoked).

        Cleared again by the next accepted connection.
        """
        return self._revoked

    def start(self) -> None:
        """Connect in the background and keep reconnecting until :meth:`stop`."""
        if self._supervisor is not None:
            return
        self._stopping.clear()
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"pibridge-agent-{self.client_id[:8]}", daemon=True
        )
        self._supervisor.start()

    def wait_connected(self, timeout: float) -> bool:
        """Wait up to *timeout* seconds for the connection; True if connected."""
        return self._connected_event.wait(timeout)

    def stop(self) -> None:
        """Disconnect and stop reconnecting.  Requests still waiting fail with AgentConnectionLost."""
        self._stopping.set()
        with self._connect_lock:
            self._mqtt.disconnect()
        self._wake.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=10)
            self._supervisor = None
        self._mqtt.loop_stop()
        self._set_connected(False)
        self._fail_waiters(AgentConnectionLost("the client was stopped"))
        self._acks.clear()

    def __enter__(self) -> "AgentClient":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _supervise(self) -> None:
        delays = self._backoff.delays()
        while not self._stopping.is_set():
            self._wake.clear()
            self._attempt_error = None
            self._attempt_reported = False
            self._session_up = False
            looping = False
            with self._connect_lock:
                if self._stopping.is_set():
                    break
                try:
                    self._mqtt.connect(self.host, self.port, keepalive=self.keepalive)
                except (OSError, ValueError) as exc:
                    self._connect_failed(exc)
                else:
                    self._mqtt.loop_start()
                    looping = True
            if looping:
                self._wake.wait()
                if self._stopping.is_set():
                    break
                self._mqtt.loop_stop()
            if self._session_up:
                delays = self._backoff.delays()
            delay = next(delays)
            log.debug("next connection attempt to %s:%d in %.2f s", self.host, self.port, delay)
            self._stopping.wait(delay)

    def _report_problem(self, kind: str, text: str) -> None:
        # The same kind of problem on every retry is logged once, then quietly.
        if kind != self._last_problem:
            log.warning("%s; retrying with backoff", text)
            self._last_problem = kind
        else:
            log.debug("%s; retrying", text)

    def _connect_failed(self, exc: BaseException) -> None:
        if isinstance(exc, ssl.SSLError) and not isinstance(exc, ssl.SSLCertVerificationError):
            if any(alert in str(exc).upper() for alert in _CERT_REFUSED_ALERTS):
                self._mark_revoked(str(exc))
                return
        kind = "untrusted agent" if isinstance(exc, ssl.SSLCertVerificationError) else type(exc).__name__
        self._report_problem(kind, describe_tls_failure(exc, self.host, self.port, self.ca_file))

    def _mark_revoked(self, detail: str) -> None:
        if not self._revoked:
            log.error(
                "the agent at %s:%d refused our client certificate %s (%s): the client was deleted "
                "or its certificate revoked; run `pibridge provision` to get a new identity",
                self.host, self.port, self.identity.cert_file, detail,
            )
        self._revoked = True
        self._last_problem = "revoked"

    def _set_connected(self, up: bool) -> None:
        if up == self._connected:
            return
        self._connected = up
        if up:
            self._connected_event.set()
        else:
            self._connected_event.clear()
        callback = self.on_connection_change
        if callback is not None:
            try:
                callback(up)
            except Exception:
                log.exception("on_connection_change raised; ignored")

    # paho callbacks: all run in paho's network thread and must not block.

    @staticmethod
    def _on_socket_open(client, userdata, sock) -> None:
        # paho writes a packet in pieces; with Nagle on, each request then waits for the
        # peer's delayed ACK (about 40 ms) before its answer can come back.
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass

    def _on_log(self, client, userdata, level, text) -> None:
        if level == mqtt.MQTT_LOG_ERR and "failed to receive on socket" in text:
            self._attempt_error = text

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._attempt_reported = True
            if reason_code.getName() in ("Not authorized", "Bad user name or password"):
                self._mark_revoked(f"CONNACK: {reason_code}")
            else:
                self._report_problem(
                    "refused", f"the agent at {self.host}:{self.port} refused the connection: {reason_code}"
                )
            return
        self._session_up = True
        self._last_problem = None
        # Another connection may be another agent (or the same one upgraded).
        self._learned.clear()
        if self._revoked:
            log.info("the agent accepts our certificate again")
        self._revoked = False
        persistent = [self._push_error_topic, *self._livedata]
        client.subscribe([(t, 1) for t in persistent])
        # The broker handles this SUBSCRIBE before any later PUBLISH of ours,
        # so requests may count on these subscriptions without the SUBACK.
        with self._sub_lock:
            self._subscribed = set(persistent)
        log.info("connected to the agent at %s:%d as client %s", self.host, self.port, self.client_id)
        self._set_connected(True)

    def _explain_disconnect(self) -> None:
        if self._attempt_reported or self._stopping.is_set():
            return
        error = self._attempt_error
        if self._session_up:
            log.warning("lost the connection to the agent at %s:%d (%s)", self.host, self.port,
                        error or "the broker closed it")
        elif error and any(alert in error.upper() for alert in _CERT_REFUSED_ALERTS):
            self._mark_revoked(error)
        elif self._revoked:
            # After a refusal the broker often just closes the socket before
            # its alert can be read: still the same refusal.
            log.debug("connection closed again before CONNACK: %s", error)
        elif error:
            self._report_problem("lost", f"connection to {self.host}:{self.port} failed: {error}")
        else:
            self._report_problem(
                "closed", f"the agent at {self.host}:{self.port} closed the connection before accepting it"
            )

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        try:
            self._explain_disconnect()
            with self._sub_lock:
                self._subscribed.clear()
            self._fail_waiters(AgentConnectionLost(f"the connection to the agent at {self.host}:{self.port} was lost"))
            for signal in self._subacks.clear():
                signal.fail(AgentConnectionLost("the connection was lost before the subscription was confirmed"))
            self._set_connected(False)
        finally:
            self._wake.set()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        handler = self._acks.confirm(mid, True)
        if handler is not None:
            try:
                handler()
            except Exception:
                log.exception("an on_ack callback raised; ignored")

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        signal = self._subacks.confirm(mid, reason_codes)
        if signal is not None:
            signal.set(reason_codes)

    def _on_message(self, client, userdata, message) -> None:
        try:
            topic = message.topic
            waiter = self._waiters.get(topic)
            if waiter is not None:
                waiter.offer(topic, message.payload)
            elif topic.endswith("/livedata"):
                self._deliver_livedata(topic, message.payload)
            elif mqtt.topic_matches_sub(self._push_error_topic, topic):
                self._deliver_push_error(topic, message.payload)
            else:
                self._unexpected(topic, message.payload)
        except Exception:
            log.exception("could not handle a message from the agent; ignored")

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

    def _deliver_push_error(self, topic: str, payload: bytes) -> None:
        sensor_id = topic[len(self._client_prefix):].split("/")[1]
        try:
            error = answers.error_answer(payload, topic)
        except ProtocolError as exc:
            self._complaints(topic, f"ignoring a malformed push error: {exc}")
            return
        callback = self.on_push_error
        if callback is None:
            log.warning("the agent refused values for sensor %r: %s", sensor_id, error)
            return
        try:
            callback(sensor_id, error)
        except Exception:
            log.exception("on_push_error raised; ignored")

    def _fail_waiters(self, error: BaseException) -> None:
        with self._waiters_lock:
            waiters = set(self._waiters.values())
        for waiter in waiters:
            waiter.fail(error)

    # ------------------------------------------------------------ request machinery

    def _require_connection(self, what: str) -> None:
        if not self._connected:
            if self._revoked:
                raise AgentConnectionLost(
                    f"cannot send {what}: the agent refuses our client certificate; run `pibridge provision`"
                )
            raise AgentConnectionLost(f"cannot send {what}: not connected to the agent at {self.host}:{self.port}")

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
        payload = _ENCODE(body).encode()
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

    # ------------------------------------------------------------ client requests

    def ping(self, message: str | None = None) -> str:
        """Check the agent is alive; returns the message it echoed (section 4.2).

        Sends ``{"request": message}`` as the reference does; without
        *message*, one unique to this call.  Whatever shape the echo has, it
        counts once it carries the message (without *message*, any
        ``{"answer": ...}`` counts too: an agent that answers without
        echoing); anything else on the answer topic is skipped, so garbage
        there never passes for the agent's answer.
        """
        lenient = message is None
        if lenient:
            message = f"{self._ping_family}-{next(self._pings)}"
        elif not isinstance(message, str) or not message:
            raise ValueError("a ping message must be a non-empty string")
        family = self._ping_family

        def parse(payload: bytes, topic: str) -> object:
            return answers.ping_echo(payload, topic, message, family, lenient)

        return self._request(topics.ping(self.client_id), {"request": message}, parse, kind="ping")

    def update_client_name(self, name: str) -> str:
        """Rename this client on the agent; returns the agent's confirmation (section 4.3).

        The reference asks only for a string (its example: "New client name");
        this is the client's display name, not the certificate's CommonName.
        """
        if not isinstance(name, str):
            raise ValueError(f"a client name must be a string, not {name!r}")

        def parse(payload: bytes, topic: str) -> object:
            is_object, body = False, None
            try:
                body = answers.decode_answer(payload, topic)
                is_object = isinstance(body, dict)
            except ProtocolError:
                pass
            if is_object and isinstance(body.get("name"), str):
                return body["name"]
            return answers.text_answer(payload, topic)

        return self._request(topics.update_client(self.client_id), {"name": name}, parse, kind="update_client")

    def delete_client(self) -> None:
        """Delete this client, its sensors and metrics on the agent, and the local key and certificate.

        The agent does not answer (section 4.4): this waits for the broker to
        take the request (PUBACK).  The certificate is useless afterwards.
        """
        route = topics.delete_client(self.client_id)
        self._require_connection(route.request)
        signal = Signal()
        self._acks.begin()
        try:
            info = self._mqtt.publish(route.request, b"{}", qos=1)
        except BaseException:
            self._acks.abort()
            raise
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self._acks.abort()
            raise AgentConnectionLost(f"cannot send {route.request}: {mqtt.error_string(info.rc)}")
        early, _ = self._acks.register(info.mid, signal.set)
        if early:
            signal.set()
        if not signal.event.wait(self.timeout):
            self._acks.drop(info.mid)
            raise AgentTimeout(f"the broker did not confirm {route.request} within {self.timeout:g} s")
        remove_identity(self.identity)
        log.info("deleted client %s on the agent and its key and certificate", self.client_id)

    # ------------------------------------------------------------ sensors

    def create_sensor(self, name: str) -> SensorInfo:
        """Create a sensor called *name*; returns it with the ID the agent chose (section 5.2.1)."""
        if not isinstance(name, str) or not name:
            raise ValueError("a sensor needs a non-empty name")

        def parse(payload: bytes, topic: str) -> object:
            return answers.created_sensor(payload, topic, name)

        return self._request(topics.create_sensor(self.client_id), {"name": name}, parse, kind="create_sensor")

    def list_sensors(self) -> list[SensorInfo]:
        """Every sensor of this client with its metric IDs (section 5.2.2)."""

        return self._request(topics.list_sensors(self.client_id), {}, answers.sensor_list, kind="list_sensors")

    def update_sensor(self, sensor_id: str, *, name: str, state: SensorState | None = None) -> str:
        """Rename a sensor and optionally set it online or offline (section 5.2.3)."""
        check_id("sensor", sensor_id)
        if not isinstance(name, str) or not name:
            raise ValueError("a sensor needs a non-empty name")
        body: dict = {"name": name}
        if state is not None:
            body["state"] = int(SensorState(state))
        return self._request(topics.update_sensor(self.client_id, sensor_id), body, answers.text_answer,
                             kind="update_sensor")

    def delete_sensor(self, sensor_id: str) -> str:
        """Delete a sensor and its metrics (section 5.2.4)."""
        check_id("sensor", sensor_id)
        return self._request(topics.delete_sensor(self.client_id, sensor_id), {}, answers.text_answer,
                             kind="delete_sensor")

    # ------------------------------------------------------------ metrics

    def create_metrics(self, sensor_id: str, definitions: Sequence[MetricDefinition]) -> list[str]:
        """Create metrics on a sensor; returns their IDs in the order of *definitions* (section 5.3.1)."""
        check_id("sensor", sensor_id)
        if not definitions:
            raise ValueError("create_metrics needs at least one MetricDefinition")
        for definition in definitions:
            if not isinstance(definition, MetricDefinition):
                raise ValueError(f"{definition!r} is not a MetricDefinition")
        matching = [str(next(self._matching)) for _ in definitions]
        names = [d.name for d in definitions]
        body = {"metrics": [d.to_api(m) for d, m in zip(definitions, matching)]}

        def parse(payload: bytes, topic: str) -> object:
            return answers.created_metrics(payload, topic, matching, names)

        return self._request(topics.create_metrics(self.client_id, sensor_id), body, parse, kind="create_metrics")

    def describe_metric(self, sensor_id: str, metric_id: str) -> MetricInfo:
        """The definition and last value of one metric (section 5.3.2)."""
        check_id("sensor", sensor_id)
        check_id("metric", metric_id)

        def parse(payload: bytes, topic: str) -> object:
            return answers.metric_info(payload, topic, metric_id)

        return self._request(topics.describe_metric(self.client_id, sensor_id, metric_id), {}, parse,
                             kind="describe_metric")

    def update_metrics(self, sensor_id: str, updates: Sequence[MetricUpdate]) -> str:
        """Rename metrics and/or change their annotation (section 5.3.3)."""
        check_id("sensor", sensor_id)
        if not updates:
            raise ValueError("update_metrics needs at least one MetricUpdate")
        items = []
        for update in updates:
            check_id("metric", update.metric_id)
            if update.name is None and update.annotation is None:
                raise ValueError(f"metric {update.metric_id!r}: give a new name, a new annotation or both")
            item = {"metricId": update.metric_id}
            if update.name is not None:
                item["name"] = update.name
            if update.annotation is not None:
                item["valueAnnotation"] = update.annotation
            items.append(item)
        return self._request(topics.update_metrics(self.client_id, sensor_id), {"metrics": items},
                             answers.text_answer, kind="update_metrics")

    def delete_metrics(self, sensor_id: str, metric_ids: Sequence[str]) -> str:
        """Delete metrics of a sensor (section 5.3.4)."""
        check_id("sensor", sensor_id)
        if not metric_ids or isinstance(metric_ids, str):
            raise ValueError("delete_metrics needs a list of metric IDs")
        body = {"metrics": [{"metricId": check_id("metric", m)} for m in metric_ids]}
        return self._request(topics.delete_metrics(self.client_id, sensor_id), body, answers.text_answer,
                             kind="delete_metrics")

    # ------------------------------------------------------------ values

    def push_values(self, sensor_id: str, values: Mapping[str, Value], timestamp_ms: int | None = None) -> None:
        """Push values of several metrics of one sensor and wait for "Sensor was updated." (section 5.1).

        Without *timestamp_ms* the agent stamps the values with its own time.
        """
        check_id("sensor", sensor_id)
        if not values:
            raise ValueError("push_values needs at least one metric value")
        for metric_id, value in values.items():
            check_id("metric", metric_id)
            _check_value(metric_id, value)
        if timestamp_ms is not None and (isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int)):
            raise ValueError(f"timestamp_ms must be milliseconds since the epoch as an int, not {timestamp_ms!r}")
        body: dict = {"metrics": [{"metricId": k, "value": v} for k, v in values.items()]}
        if timestamp_ms is not None:
            body["timestamp"] = timestamp_ms
        route = topics.push_values(self.client_id, sensor_id)
        # No wildcard below the request topic: publish_values pushes to the
        # same topic, and every one of them would echo back to us.
        self._request(route, body, answers.text_answer, kind="push_values", watch_request=False)

    def publish_values(
        self,
        sensor_id: str,
        values: Mapping[str, Value],
        timestamp_ms: int,
        on_ack: Callable[[], None] | None = None,
    ) -> None:
        """Publish one sensor's values (QoS 1) without waiting for any answer.

        ``on_ack()`` is called from paho's thread when the broker confirms it
        has the message (PUBACK), or exceptionally from this thread if the
        confirmation raced ahead of this call.  Errors the agent reports later
        go to :attr:`on_push_error`.  Raises AgentConnectionLost at once when
        not connected, ValueError for a value JSON cannot carry (NaN).
        """
        if not self._connected:
            self._require_connection("values")
        topic = self._push_topics.get(sensor_id)
        if topic is None:
            topic = self._push_topics[sensor_id] = topics.push_values(
                self.client_id, check_id("sensor", sensor_id)
            ).request
        payload = push_body(values, timestamp_ms)
        if on_ack is None:
            info = self._mqtt.publish(topic, payload, 1)
            if info.rc:
                raise AgentConnectionLost(f"cannot send values of {sensor_id}: {mqtt.error_string(info.rc)}")
            return
        acks = self._acks
        acks.begin()
        try:
            info = self._mqtt.publish(topic, payload, 1)
        except BaseException:
            acks.abort()
            raise
        if info.rc:
            acks.abort()
            raise AgentConnectionLost(f"cannot send values of {sensor_id}: {mqtt.error_string(info.rc)}")
        early, _ = acks.register(info.mid, on_ack)
        if early:
            on_ack()

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
