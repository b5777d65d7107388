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

The client is assembled from one part per job: :mod:`~pibridge.agent.connection`
(connect, reconnect, paho's callbacks), :mod:`~pibridge.agent.exchange`
(send a request, wait for its answer), :mod:`~pibridge.agent.requests` (one
method per request of the reference) and :mod:`~pibridge.agent.pushes`
(values published without waiting, live data); the state they share is set
up here.

Threads: :meth:`start` runs a supervisor thread that connects, and for
each connection paho runs one network thread that calls every callback
(``on_connection_change``, ``on_push_error``, ``on_push_answered``, live-data
callbacks, ``on_ack`` of :meth:`publish_values`).  Those callbacks must return quickly: while one
runs, no answer can arrive.  Request methods may be called from any thread.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

from pibridge.agent import topics
from pibridge.agent.answers import (  # noqa: F401  (part of this module's interface)
    MAX_ANSWER_BYTES,
    MetricInfo,
    SensorInfo,
    decode_answer,
    snippet,
)
from pibridge.agent.connection import Backoff, Connection
from pibridge.agent.errors import AgentError
from pibridge.agent.exchange import Exchange
from pibridge.agent.identity import Identity, tls_context
from pibridge.agent.pending import Complaints, MidTable, Waiter
from pibridge.agent.pushes import PushCounts, Pushes, push_body  # noqa: F401  (push_body: part of this module's interface)
from pibridge.agent.requests import (  # noqa: F401  (part of this module's interface)
    MetricUpdate,
    Requests,
    SensorState,
    check_id,
)


class AgentClient(Requests, Pushes, Exchange, Connection):
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

        self._mqtt_id = f"pibridge-{self.client_id[:12]}-{secrets.token_hex(3)}"
        self._tls = tls_context(self.ca_file, identity.cert_file, identity.key_file)
        self._mqtt = self._new_mqtt()

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
        any_sensor = topics.push_values(self.client_id, "+")
        self._push_reply_topics = (any_sensor.answer, any_sensor.error)
        self._sensors_prefix = f"{self._client_prefix}sensor/"
        self._push_counts = PushCounts()
        #: Called as ``on_push_answered(counts, sensor_id, n)`` from paho's thread when the agent has
        #: answered (or refused) the first *n* pushes of *sensor_id* counted in *counts*
        #: (:meth:`publish_values` returns which count and number each push has).
        self.on_push_answered: Callable[[PushCounts, str, int], None] | None = None
        self._push_topics: dict[str, str] = {}
        self._livedata: dict[str, Callable[[str, dict], None]] = {}
        # Numbers (as strings) that no earlier run is likely to have used: an agent may turn
        # matchingIds into numbers, and a stale answer must not match.
        self._matching = itertools.count(secrets.randbelow(9 * 10**8) + 10**8)
        self._ping_family = f"pibridge-{secrets.token_hex(3)}"
        self._pings = itertools.count(1)
        self._complaints = Complaints()
        self._learned: dict[tuple[str, str], int] = {}
