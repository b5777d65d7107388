"""The connection part of :class:`~pibridge.agent.client.AgentClient`: connect, reconnect, paho's callbacks.

A supervisor thread (:meth:`Connection.start`) connects, waits while the
connection lasts and tries again after a :class:`Backoff` delay; it tells a
broker that cannot be reached from one that refuses our certificate
(:attr:`Connection.revoked`).  paho's network thread calls every ``_on_*``
callback here; :meth:`Connection._on_message` hands each message to the
request that waits for it, to live data, or to the counting of push answers
and errors.

The state all of this uses is set up in ``AgentClient.__init__``.
"""

from __future__ import annotations

from typing import Self

import logging
import random
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from pibridge.agent.errors import AgentConnectionLost
from pibridge.agent.identity import describe_tls_failure
from pibridge.agent.pending import MidTable
from pibridge.agent.pushes import PushCounts

# Every part logs as the client, so one logger name still selects all it says.
log = logging.getLogger("pibridge.agent.client")

#: QoS 1 messages paho keeps unacknowledged on the wire at once (the bridge's replay window is below it).
MAX_INFLIGHT = 512

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


class Connection:
    """Connecting and staying connected, and the paho callbacks; a part of ``AgentClient``."""

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

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _new_mqtt(self) -> mqtt.Client:
        """A paho client for one connection attempt.

        Each attempt gets a fresh one because paho sends the QoS 1 messages an
        earlier connection left unacknowledged again, ahead of anything new: the
        agent's answers to those would then be counted for our new pushes
        (:class:`~pibridge.agent.pushes.PushCounts`).  What was not confirmed is
        sent again by its owner instead (the bridge, from its outbox).
        """
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self._mqtt_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
            reconnect_on_failure=False,
        )
        client.suppress_exceptions = True
        # paho's default of 20 unacknowledged messages on the wire, not the bridge's own windows,
        # would set the pace of a replay.
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.tls_set_context(self._tls)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_log = self._on_log
        client.on_socket_open = self._on_socket_open
        return client

    def _supervise(self) -> None:
        delays = self._backoff.delays()
        first = True
        while not self._stopping.is_set():
            self._wake.clear()
            self._attempt_error = None
            self._attempt_reported = False
            self._session_up = False
            looping = False
            with self._connect_lock:
                if self._stopping.is_set():
                    break
                if not first:
                    # Handlers of the last connection's pushes would never be called, and paho
                    # numbers messages from 1 again.  Counts and handlers before the client: a
                    # push that finds the new client then finds the new counts too.
                    self._push_counts = PushCounts()
                    self._acks = MidTable()
                    self._mqtt = self._new_mqtt()
                first = False
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
        persistent = [*self._push_reply_topics, *self._livedata]
        # The agent's replies to pushes come at QoS 0: one a push, and each at QoS 1 would cost a
        # PUBACK back.  Only a connection that drops loses one, and then the pushes go again anyway.
        client.subscribe([(t, 0 if t in self._push_reply_topics else 1) for t in persistent])
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
            else:
                # One message per push comes here: plain string tests, not paho's topic matcher.
                sensor_id, tail = "", ""
                if topic.startswith(self._sensors_prefix):
                    sensor_id, _, tail = topic[len(self._sensors_prefix):].partition("/")
                if not sensor_id:
                    self._unexpected(topic, message.payload)
                elif tail == "info/inbox":
                    self._count_push_answer(sensor_id, topic, message.payload)
                elif tail == "error/inbox":
                    self._deliver_push_error(sensor_id, topic, message.payload)
                else:
                    self._unexpected(topic, message.payload)
        except Exception:
            log.exception("could not handle a message from the agent; ignored")

    def _require_connection(self, what: str) -> None:
        if not self._connected:
            if self._revoked:
                raise AgentConnectionLost(
                    f"cannot send {what}: the agent refuses our client certificate; run `pibridge provision`"
                )
            raise AgentConnectionLost(f"cannot send {what}: not connected to the agent at {self.host}:{self.port}")
