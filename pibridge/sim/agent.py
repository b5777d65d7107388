"""The agent's API logic: reads requests from the broker, applies them to the store, answers.

Every request of the API reference is served (sections 4 and 5).  The
*dialect* says which topics (:mod:`pibridge.sim.routing`): ``reference``
serves the reference's request topics and answers only on the reference's
answer and error topics, so a client written from the reference is never
answered on a topic it uses for something else; ``vendor`` also serves the
request topics of the vendor SDKs (Python ``TVCMI_client``, Node.js) and
answers where they listen too; ``both`` answers and reports errors on both.
*text_answers* says how plain answers are encoded: ``json`` as the reference
prints them (``"Sensor was updated."`` with the quotes), ``bare`` without
(``Sensor was updated.``).  What each request does and how it is validated:
:mod:`pibridge.sim.handlers`.

Threading: paho's network thread runs :meth:`AgentLogic._on_message`, which
only puts the message on a queue.  One worker thread takes requests off the
queue in arrival order, validates them, writes SQLite and publishes the
answers (QoS 1), so nothing slow ever runs in the network loop.

Pushes are committed in groups: the worker takes every request already
waiting (up to :data:`BATCH_LIMIT`), handles the pushes among them one by
one inside one transaction (:meth:`pibridge.sim.store.Store.batch`), and
publishes their live data and answers, in request order, only once that
transaction is committed, so a client that sees an answer finds the values
in the store.  Any other request ends the group: what came before it is
committed and answered, then it is handled alone, as it would be without
grouping.  Faults are looked at for each request as it is handled.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path
from typing import Callable

import paho.mqtt.client as mqtt

from pibridge.agent.errors import ErrorCode

from .faults import Faults
from .handlers import (  # noqa: F401  (NEVER_UPDATED_US: part of this module's interface)
    NEVER_UPDATED_US,
    Refusal,
    RequestHandlers,
)
from .pki import Authority
from .routing import DIALECTS, REQUEST_TOPICS, TEXT_ANSWERS, Request, is_answer_topic, parse_topic
from .store import Store

log = logging.getLogger("pibridge.sim")

AGENT_CLIENT_ID = "pibridge-sim-agent"
#: At most this many pushes go into one transaction (and wait for its commit to be answered).
BATCH_LIMIT = 500


class AgentLogic(RequestHandlers):
    """The simulated agent's request handling, connected to the broker's private listener.

    ``start()`` connects (persistent session, QoS 1 subscriptions) and
    starts the worker; :attr:`ready` is set while connected and subscribed.
    ``on_revoke(client_id)`` is called (in the worker thread) after a client
    deletes itself, so the broker can lock its certificate out.  *dialect*
    and *text_answers*: see the module's docstring.  With *verbose* it
    subscribes to every topic, so requests on topics it does not serve are
    logged too, not just never seen.
    """

    def __init__(self, store: Store, authority: Authority, faults: Faults, socket_path: Path,
                 username: str, password: str, on_revoke: Callable[[str], None],
                 dialect: str = "reference", text_answers: str = "json", verbose: bool = False):
        if dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {', '.join(DIALECTS)}, not {dialect!r}")
        if text_answers not in TEXT_ANSWERS:
            raise ValueError(f"text_answers must be one of {', '.join(TEXT_ANSWERS)}, not {text_answers!r}")
        self.store = store
        self.authority = authority
        self.faults = faults
        self.dialect = dialect
        self.text_answers = text_answers
        self.verbose = verbose
        self._on_revoke = on_revoke
        self._socket_path = socket_path
        # SimpleQueue: put() is a C call without the Python-level locking of queue.Queue,
        # and it runs in the network loop once per request.
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.ready = threading.Event()
        self.disconnected = threading.Event()
        self._subscribe_mid: int | None = None
        self._worker: threading.Thread | None = None
        self._stopping = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=AGENT_CLIENT_ID,
                                   clean_session=False, transport="unix", protocol=mqtt.MQTTv311)
        self._client.username_pw_set(username, password)
        self._client.reconnect_delay_set(min_delay=0.05, max_delay=0.5)
        self._client.max_queued_messages_set(0)
        # No window of unacknowledged answers: a batch's answers go to the broker at once, and
        # paho does not look through its queue for the next one to send at every PUBACK.
        self._client.max_inflight_messages_set(0)
        # What handlers publish while a batch is open, per request: held until the batch is committed.
        self._held: list[_Held] | None = None
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def start(self) -> None:
        self._stopping.clear()
        self._worker = threading.Thread(target=self._work, name="sim-agent-worker", daemon=True)
        self._worker.start()
        self._client.connect_async(str(self._socket_path), keepalive=30)
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect (the broker keeps the session and queues requests for it) and end the worker."""
        self._client.disconnect()
        self._client.loop_stop()
        self.ready.clear()
        self.disconnected.set()
        self._queue.put(None)
        if self._worker is not None:
            self._worker.join(10)
            if self._worker.is_alive():
                self._stopping.set()
                self._worker.join(10)

    def wait_ready(self, timeout: float) -> bool:
        return self.ready.wait(timeout)

    # paho callbacks: network thread, must not block.

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("agent logic could not connect to the broker: %s", reason_code)
            return
        self.disconnected.clear()
        # The session is persistent: take back what another mode of an earlier run subscribed.
        if self.verbose:
            client.unsubscribe(REQUEST_TOPICS)
            _, mid = client.subscribe([("#", 1)])
        else:
            client.unsubscribe("#")
            _, mid = client.subscribe([(t, 1) for t in REQUEST_TOPICS])
        self._subscribe_mid = mid

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if mid == self._subscribe_mid:
            self.ready.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.ready.clear()
        self.disconnected.set()

    def _on_message(self, client, userdata, message) -> None:
        topic = message.topic
        if self.verbose and is_answer_topic(topic):
            return  # our own answers, back through the subscription to everything
        self._queue.put((topic, bytes(message.payload)))

    # worker thread

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._stopping.is_set():
                self._abandon_queue(taken=1)
                return
            items, last = self._take_waiting(item)
            pushes: list[Request] = []
            for topic, payload in items:
                req = self._parse(topic, payload)
                if req is None:
                    continue
                if req.kind == "push_values":
                    pushes.append(req)
                    continue
                self._serve_batch(pushes)
                pushes = []
                self._serve_alone(req)
            self._serve_batch(pushes)
            if last:
                return

    def _take_waiting(self, first) -> tuple[list, bool]:
        """*first* and the requests already queued behind it (up to BATCH_LIMIT); True if stop() came too."""
        items = [first]
        while len(items) < BATCH_LIMIT:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return items, True
            items.append(item)
        return items, False

    def _abandon_queue(self, taken: int) -> None:
        # Called when the worker is still far behind the broker (a flood of pushes) after
        # stop() gave it time: the rest would otherwise fail one by one once the store closes.
        left = taken
        while True:
            try:
                if self._queue.get_nowait() is not None:
                    left += 1
            except queue.Empty:
                break
        log.warning("stopped with %d request(s) not yet handled; they get no answer and are not stored", left)

    def _publish(self, topic_names: list[str], payload: bytes, qos: int = 1) -> None:
        if self._held is not None:
            self._held[-1].publications.append((topic_names, payload, qos))
            return
        verbose = log.isEnabledFor(logging.INFO)
        for t in topic_names:
            if verbose:
                log.info("answer on %s: %s", t, _snippet(payload))
            self._client.publish(t, payload, qos=qos)

    def handle(self, topic: str, payload: bytes) -> None:
        """Apply one request and publish its answer or error (worker thread)."""
        req = self._parse(topic, payload)
        if req is not None:
            self._serve_alone(req)

    def _parse(self, topic: str, payload: bytes) -> Request | None:
        """The request on *topic*, or None (logged) if this dialect does not serve it."""
        try:
            req = parse_topic(topic, payload, self.dialect)
        except Exception:
            log.exception("request on %s could not be read", topic)
            return None
        if req is None or (req.vendor_form and self.dialect == "reference"):
            log.info("not served (dialect %s): a message on %s: %s", self.dialect, topic, _snippet(payload))
            return None
        return req

    def _serve_alone(self, req: Request) -> None:
        try:
            self._serve(req)
        except Exception:
            log.exception("request on %s could not be handled", req.topic)

    def _serve_batch(self, pushes: list[Request]) -> None:
        """Handle *pushes* in one transaction, then publish what each published, in order."""
        if not pushes:
            return
        self._held = held = []
        try:
            with self.store.batch() as batch:
                for req in pushes:
                    before = batch.pushes
                    held.append(_Held(req))
                    try:
                        self._serve(req)
                    except Exception:
                        log.exception("request on %s could not be handled", req.topic)
                    held[-1].stored = batch.pushes > before
        except Exception as exc:
            log.exception("%d push(es) could not be stored", len(held))
            # Nothing of the batch is stored: a push that would have stored values is refused instead.
            failed = Refusal(ErrorCode.INTERNAL_ERROR, f"({exc})").payload()
            for h in held:
                if h.stored:
                    h.publications = [(h.req.error_topics, failed, 0)]
        else:
            log.debug("batch of %d push(es): %d stored in one transaction", len(pushes), batch.pushes)
        finally:
            self._held = None
        for h in held:
            for topic_names, payload, qos in h.publications:
                self._publish(topic_names, payload, qos)

    def _serve(self, req: Request) -> None:
        """Apply one parsed request and publish its answer or error."""
        topic = req.topic
        if log.isEnabledFor(logging.INFO):
            log.info("request %s on %s: %s", req.kind, topic, _snippet(req.payload))
        if req.kind != "create_client" and not self.store.is_active(req.client_id):
            # Unknown or deleted clients get no answer: as far as the agent knows, they do not exist.
            log.info("ignored %s from unknown or deleted client %s", req.kind, req.client_id)
            return
        if self.faults.silent or req.kind in self.faults.ignored:
            log.info("fault: dropped %s on %s", req.kind, topic)
            return
        # A push's answer, like its live data, goes at QoS 0: one a push, and a client that counts
        # them (pibridge) subscribes at QoS 0 anyway.  Every other answer stays QoS 1.
        qos = 0 if req.kind == "push_values" else 1
        code = self.faults.error_code
        if code is not None:
            self._publish(req.error_topics, Refusal(code, metrics=[]).payload(), qos)
            return
        try:
            answer = getattr(self, "_" + req.kind)(req)
        except Refusal as refusal:
            log.info("%s on %s refused: %s", req.kind, topic, refusal.message)
            self._publish(req.error_topics, refusal.payload(), qos)
            return
        except Exception as exc:
            log.exception("%s on %s failed", req.kind, topic)
            self._publish(req.error_topics, Refusal(ErrorCode.INTERNAL_ERROR, f"({exc})").payload(), qos)
            return
        if answer is not None:
            self._publish(req.answer_topics, answer, qos)


class _Held:
    """One request of an open batch: what it published (held back) and whether it stored values."""

    __slots__ = ("req", "publications", "stored")

    def __init__(self, req: Request):
        self.req = req
        self.publications: list[tuple[list[str], bytes, int]] = []
        self.stored = False


def _snippet(payload: bytes, size: int = 200) -> str:
    text = payload[:size].decode("utf-8", "replace")
    return repr(text + ("..." if len(payload) > size else ""))
