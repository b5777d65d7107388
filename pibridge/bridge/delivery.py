"""The bridge thread: getting every reading to the agent exactly in order, at least once.

:class:`Delivery` is in one of three modes:

``offline``
    No connection, or the bridge does not know its IDs yet.  Every reading
    goes to the outbox.
``replay``
    Connected, but the outbox holds readings.  They are sent oldest first,
    with their original timestamps, at most ``replay_window`` unacknowledged
    at a time so a long backlog does not flood the agent.  New readings are
    appended to the outbox *behind* the backlog, so each sensor's readings
    arrive in the order they were taken.  A reading leaves the outbox only
    when the broker has acknowledged it (QoS 1 PUBACK).
``live``
    Connected and the outbox is empty.  Readings are published at once and
    kept in memory until their PUBACK; nothing touches the disk.  A reading
    not acknowledged within ``ack_window`` seconds (or when the connection
    drops) is written to the outbox together with every younger unacknowledged
    one, and delivery continues in replay mode.

So the outbox, not paho's queue, is the record of what still has to be sent.
A reading acknowledged after it was spilled is sent again from the outbox:
delivery is at-least-once, and the agent stores a repeated (metric,
timestamp) value once more under the same timestamp.

Threading: :meth:`submit` (reader threads), :meth:`attach` / :meth:`detach`
(control thread) and the PUBACK callbacks (paho's network thread) only put
an item on a queue; everything else, including every outbox call, happens
in the delivery thread.  Counters are plain integers other threads may read.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable

from pibridge.agent.errors import AgentConnectionLost, PibridgeAgentError
from pibridge.readings import Reading

log = logging.getLogger("pibridge.delivery")

OFFLINE, REPLAY, LIVE = "offline", "replay", "live"

_ACK, _ATTACH, _DETACH, _STOP, _CALL = range(5)


class Delivery:
    """Moves readings from the readers to the agent, through the outbox when it must.

    *outbox* is a :class:`pibridge.outbox.Outbox` (owned by the caller, who
    closes it after :meth:`stop`).  Call :meth:`attach` with a connected
    client and the routes (:meth:`Registry.routes`) once the IDs are known,
    :meth:`detach` when the connection is lost.
    """

    def __init__(
        self,
        outbox: Any,
        *,
        ack_window: float = 5.0,
        replay_window: int = 64,
    ):
        self.outbox = outbox
        self.ack_window = float(ack_window)
        self.replay_window = max(1, int(replay_window))
        self.mode = OFFLINE
        #: readings acknowledged by the broker (live and replayed)
        self.delivered = 0
        #: readings written to the outbox because they could not be sent or were not acknowledged in time
        self.spilled = 0
        #: readings dropped because no configured sensor or metric matches them
        self.unroutable = 0
        #: readings the agent refused after they were delivered (counted by the daemon)
        self.last_delivered_ms: int | None = None
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._client: Any = None
        self._routes: dict = {}
        self._seq = 0
        self._live: dict[int, tuple[Reading, float]] = {}
        self._replay: dict[int, tuple[int, float]] = {}
        self._replay_after = 0
        self._acked_ids: list[int] = []
        self._pending: list[Reading] = []
        self._warned_routes: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="delivery", daemon=True)

    # -- any thread ---------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, reading: Reading) -> None:
        """Queue a reading for delivery.  Never blocks."""
        self._events.put(reading)

    def attach(self, client: Any, routes: dict) -> None:
        """Start sending through *client* with *routes* (sensor name -> Route)."""
        self._events.put((_ATTACH, client, dict(routes)))

    def detach(self) -> None:
        """The connection is gone: keep everything in the outbox until the next :meth:`attach`."""
        self._events.put((_DETACH,))

    def call(self, func: Callable[[], None]) -> None:
        """Run *func* in the delivery thread (to touch the outbox safely from elsewhere)."""
        self._events.put((_CALL, func))

    @property
    def in_flight(self) -> int:
        return len(self._live) + len(self._replay)

    def stop(self, drain_timeout: float = 2.0, timeout: float = 30.0) -> bool:
        """Finish: wait up to *drain_timeout* for outstanding acknowledgements, put every
        reading not yet acknowledged into the outbox and commit it.  Call after the
        readers have stopped.  Returns True when the thread ended in time."""
        if not self._thread.is_alive():
            return True
        self._events.put((_STOP, drain_timeout))
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- delivery thread ----------------------------------------------------------

    def _run(self) -> None:
        get = self._events.get
        empty = queue.Empty
        while True:
            try:
                item = get(timeout=self._wait_time())
            except empty:
                item = None
            batch = 0
            while item is not None:
                if item.__class__ is Reading:
                    if self.mode is LIVE:
                        self._publish_live(item)
                    else:
                        self._pending.append(item)
                else:
                    kind = item[0]
                    if kind == _ACK:
                        self._acked(item[1])
                    elif kind == _STOP:
                        self._finish(item[1])
                        return
                    else:
                        self._control(item)
                batch += 1
                if batch >= 2000:
                    break
                try:
                    item = get(False)
                except empty:
                    item = None
            self._housekeeping()

    def _wait_time(self) -> float:
        now = time.monotonic()
        wait = 1.0
        if self._live:
            oldest = next(iter(self._live.values()))[1]
            wait = min(wait, oldest + self.ack_window - now)
        return max(wait, 0.001)

    def _control(self, item: tuple) -> None:
        kind = item[0]
        if kind == _ATTACH:
            self._client, self._routes = item[1], item[2]
            self._warned_routes.clear()
            self._forget_replay()
            self.mode = REPLAY
            log.info("delivering to the agent (%d sensors)", len(self._routes))
        elif kind == _DETACH:
            self._go_offline("the connection to the agent is down")
        elif kind == _CALL:
            try:
                item[1]()
            except Exception:
                log.exception("a task in the delivery thread failed")

    def _go_offline(self, why: str) -> None:
        if self.mode is OFFLINE:
            return
        spilled = self._spill_live()
        self._client = None
        self._forget_replay()
        self.mode = OFFLINE
        if spilled:
            log.warning("%s: buffering; %d unacknowledged readings moved to the outbox", why, spilled)
        else:
            log.warning("%s: buffering readings in the outbox", why)

    def _spill_live(self) -> int:
        """Move every unacknowledged live reading, oldest first, in front of the pending ones."""
        if not self._live:
            return 0
        spilled = [reading for reading, _ in self._live.values()]
        self._live.clear()
        self._pending[:0] = spilled
        self.spilled += len(spilled)
        return len(spilled)

    def _values(self, reading: Reading) -> tuple[str, dict] | None:
        route = self._routes.get(reading.sensor)
        if route is None:
            self._unroutable(reading.sensor, "it is not a configured sensor (any more)")
            return None
        ids = route.metric_ids
        values = {ids[q]: v for q, v in reading.values.items() if q in ids}
        if len(values) != len(reading.values):
            missing = sorted(q for q in reading.values if q not in ids)
            self._unroutable(reading.sensor, f"no agent metric for {', '.join(missing)}")
            if not values:
                return None
        return route.sensor_id, values

    def _unroutable(self, sensor: str, why: str) -> None:
        self.unroutable += 1
        if sensor not in self._warned_routes:
            self._warned_routes.add(sensor)
            log.warning("readings of sensor %r cannot be sent and are dropped: %s", sensor, why)

    def _publish_live(self, reading: Reading) -> None:
        target = self._values(reading)
        if target is None:
            return
        self._seq = seq = self._seq + 1
        put = self._events.put
        try:
            self._client.publish_values(
                target[0], target[1], reading.timestamp_ms, on_ack=lambda *_: put((_ACK, seq))
            )
        except AgentConnectionLost:
            self._pending.append(reading)
            self._go_offline("lost the connection to the agent")
            return
        except (PibridgeAgentError, ValueError, TypeError) as exc:
            self.unroutable += 1
            log.error("reading of sensor %r at %d cannot be sent and is dropped: %s", reading.sensor, reading.timestamp_ms, exc)
            return
        self._live[seq] = (reading, time.monotonic())

    def _acked(self, seq: int) -> None:
        entry = self._live.pop(seq, None)
        if entry is not None:
            self.delivered += 1
            self.last_delivered_ms = entry[0].timestamp_ms
            return
        replayed = self._replay.pop(seq, None)
        if replayed is not None:
            self._acked_ids.append(replayed[0])
            self.delivered += 1

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if self._live:
            oldest = next(iter(self._live.values()))[1]
            if now - oldest > self.ack_window:
                n = self._spill_live()
                log.warning(
                    "the agent did not acknowledge a push within %g s; %d readings moved to the outbox",
                    self.ack_window,
                    n,
                )
                self.mode = REPLAY if self._client is not None else OFFLINE
        if self._pending or self._acked_ids:
            self._write_outbox()
        if self.mode is REPLAY:
            self._replay_some(now)

    def _write_outbox(self) -> None:
        # The outbox keeps appended readings in memory and commits them itself
        # every commit_interval; it degrades to memory on disk errors, never raises.
        if self._pending:
            self.outbox.append(self._pending)
            self._pending = []
        if self._acked_ids:
            self.outbox.remove(self._acked_ids)
            self._acked_ids = []

    def _forget_replay(self) -> None:
        """Resend from the head of the outbox: outstanding replays will not be acknowledged now."""
        self._replay.clear()
        self._replay_after = 0

    def _replay_some(self, now: float) -> None:
        if self._replay:
            oldest = next(iter(self._replay.values()))[1]
            if now - oldest > 2 * self.ack_window + 10:
                # Acknowledgements lost: send the window again (at-least-once).
                self._forget_replay()
        room = self.replay_window - len(self._replay)
        if self._replay and room < self.replay_window // 2:
            return
        fresh = self.outbox.peek(room, after_id=self._replay_after)
        if not fresh:
            if not self._replay and not self._pending:
                self.mode = LIVE
                log.info("the outbox is empty; sending readings live")
            return
        put = self._events.put
        dropped = []
        for entry in fresh:
            target = self._values(entry.reading)
            if target is None:
                dropped.append(entry.id)
                self._replay_after = entry.id
                continue
            self._seq = seq = self._seq + 1
            try:
                self._client.publish_values(
                    target[0], target[1], entry.reading.timestamp_ms, on_ack=lambda *_, s=seq: put((_ACK, s))
                )
            except AgentConnectionLost:
                self._go_offline("lost the connection to the agent")
                break
            except (PibridgeAgentError, ValueError, TypeError) as exc:
                log.error("buffered reading of sensor %r cannot be sent and is dropped: %s", entry.reading.sensor, exc)
                dropped.append(entry.id)
                self._replay_after = entry.id
                continue
            self._replay[seq] = (entry.id, now)
            self._replay_after = entry.id
        if dropped:
            self._acked_ids.extend(dropped)

    def _finish(self, drain_timeout: float) -> None:
        """Stop: wait briefly for outstanding acknowledgements, then keep the rest in the outbox."""
        deadline = time.monotonic() + drain_timeout
        while (self._live or self._replay) and self._client is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = self._events.get(timeout=remaining)
            except queue.Empty:
                break
            if item.__class__ is Reading:
                self._pending.append(item)
            elif item[0] == _ACK:
                self._acked(item[1])
            elif item[0] == _DETACH:
                break
        while True:
            try:
                item = self._events.get(False)
            except queue.Empty:
                break
            if item.__class__ is Reading:
                self._pending.append(item)
            elif item[0] == _ACK:
                self._acked(item[1])
        spilled = self._spill_live()
        self._client = None
        self.mode = OFFLINE
        self._write_outbox()
        self.outbox.commit()
        if spilled:
            log.info("%d unacknowledged readings kept in the outbox", spilled)
