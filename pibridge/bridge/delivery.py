"""The bridge thread: getting every reading to the agent exactly in order, at least once.

:class:`Delivery` is in one of three modes:

``offline``
    No connection, or the bridge does not know its IDs yet.  Every reading
    goes to the outbox.
``replay``
    Connected, but the outbox holds readings.  They are sent oldest first,
    with their original timestamps, at most ``replay_window`` unacknowledged
    at a time so a long backlog does not flood the agent.  New readings are
    published at once beside the backlog, as in live mode, so however long
    the replay takes the newest reading is never held up behind it.  A
    reading leaves the outbox only when it is retired (below): its QoS 1
    PUBACK, and with ``confirm`` the agent's answer.
``live``
    Connected and the outbox is empty.  Readings are published at once and
    kept in memory until they are retired; nothing touches the disk.  A
    reading not acknowledged within ``ack_window`` seconds (or not yet
    confirmed when the connection drops) is written to the outbox together
    with every younger one still in memory, and delivery continues in replay
    mode.

So each sensor's backlog arrives in the order it was taken, and so do the
readings taken since the connection came back; the backlog of a long outage
arrives *after* the first readings taken when it ended.

So the outbox, not paho's queue, is the record of what still has to be sent.
A reading acknowledged after it was spilled is sent again from the outbox:
delivery is at-least-once, and the agent stores a repeated (metric,
timestamp) value once more under the same timestamp.

A PUBACK only says the *broker* has the message.  A broker can acknowledge
what the agent behind it then throws away (a client deleted on the agent
keeps its open connection, but its pushes are refused without a word).
With ``confirm=True`` acknowledged readings are therefore kept (live ones in
memory, replayed ones in the outbox) until the agent has shown it handled
them, in one of two ways:

* its answer to the push itself: the owner sets the client's
  ``on_push_answered`` to :meth:`push_answered`, and the *n*-th answer for a
  sensor retires that sensor's first *n* pushes on the connection
  (:class:`pibridge.agent.pushes.PushCounts`).  No extra round trip, so a
  replay runs as a sliding window at the agent's own pace;
* a ping: the owner reads :attr:`delivered`, gets an answer to a ping, and
  calls :meth:`confirm` with the number it read (the agent handles a
  client's messages in order, so the answer covers everything acknowledged
  before the ping went out).  This covers an agent that does not answer
  pushes, or leaves some answers out.

The same confirmations pace a replay to the agent's speed, not just the
broker's: at most ``replay_credit`` replayed readings may be unconfirmed,
and while any are, :attr:`on_confirm_wanted` asks the owner for a ping now
rather than at its next turn (one at a time).

What retires a reading, exactly: without ``confirm``, its PUBACK.  With
``confirm`` (the daemon), after its PUBACK, the agent's answer to it (or to
a later push of the same sensor on the same connection) or a
:meth:`confirm` whose mark covers it, that is, an answer of the agent to a
request sent after the reading's PUBACK came back.  Nothing else: a connection that drops, a ping left unanswered, a new
:meth:`attach` -- each sends every acknowledged but unconfirmed reading
again (live ones from memory into the outbox, replayed ones from the head
of the outbox), because the broker may have acknowledged what the agent
never read.  A repeat is within the at-least-once promise; a loss is not.

Threading: :meth:`submit` (the read pool's workers), :meth:`attach` / :meth:`reroute`
/ :meth:`detach` / :meth:`confirm` (control thread) and :meth:`push_answered`
(paho's network thread) only put an item on a queue.  The PUBACK callbacks
run in paho's network thread and only move the reading from the in-flight
table to the unconfirmed one and count it, under a lock no one holds for
longer than a few dict operations; a live acknowledgement does not even wake
the delivery thread.  Everything else, including every outbox call, happens
in the delivery thread.  Counters are plain integers other threads may read.
"""

from __future__ import annotations

import collections
import functools
import logging
import queue
import threading
import time
from typing import Any, Callable

from pibridge.agent.errors import AgentConnectionLost, PibridgeAgentError
from pibridge.bridge.crashes import Crashes
from pibridge.readings import Reading

log = logging.getLogger("pibridge.delivery")

OFFLINE, REPLAY, LIVE = "offline", "replay", "live"

_WAKE, _ATTACH, _DETACH, _STOP, _CONFIRM, _REROUTE, _ANSWERED = range(7)
_WAKE_ITEM = (_WAKE,)

#: Unacknowledged replayed readings are sent again after this long (seconds, on top of 2 x ack_window).
_REPLAY_GIVE_UP = 10.0


def _oldest(table: dict) -> float | None:
    """Send time of the oldest entry of an in-flight table, or None.  Hold the tables' lock."""
    for entry in table.values():
        return entry[1]
    return None


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
        ack_window: float = 2.0,
        replay_window: int = 256,
        confirm: bool = False,
        replay_credit: int = 512,
    ):
        self.outbox = outbox
        self.confirm_by_owner = confirm
        self.replay_credit = max(2 * replay_window, int(replay_credit))
        #: Called (from the delivery thread, must not block) when a replay waits for a confirmation.
        self.on_confirm_wanted: Callable[[], None] | None = None
        self._confirm_asked = False
        self.ack_window = float(ack_window)
        self.replay_window = max(1, int(replay_window))
        self.mode = OFFLINE
        #: readings acknowledged by the broker (live and replayed); written by paho's thread only.
        #: Also the mark :meth:`confirm` takes.
        self.delivered = 0
        #: readings written to the outbox because they could not be sent or were not acknowledged in time
        self.spilled = 0
        #: readings written to the outbox (the spilled ones and all that came while the agent was away)
        self.buffered = 0
        #: readings acknowledged after a replay from the outbox (counted in ``delivered`` too)
        self.replayed = 0
        #: readings dropped because no configured sensor or metric matches them
        self.unroutable = 0
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._client: Any = None
        self._routes: dict = {}
        self._seq = 0
        # In flight: seq -> (reading, send time) live, seq -> (outbox id, send time) replayed.
        # Insertion order is send order.  Acknowledgements pop from paho's thread.
        self._live: dict[int, tuple[Reading, float]] = {}
        self._replay: dict[int, tuple[int, float]] = {}
        self._replay_after = 0
        self._acked_ids: collections.deque[int] = collections.deque()
        # Acknowledged, not yet confirmed (confirm=True): seq -> (delivered count, reading or outbox id),
        # in acknowledgement order; and how many of them are outbox ids.
        self._unconfirmed: dict[int, tuple[int, Reading | int]] = {}
        self._unconfirmed_replayed = 0
        # The tables above change in paho's thread and in this one; compound changes take this lock.
        self._lock = threading.Lock()
        # Per agent sensor ID, in publish order: (PushCounts, number of the push there, seq).
        self._pushes: dict[str, collections.deque[tuple[Any, int, int]]] = {}
        self._pending: list[Reading] = []
        self._warned_routes: set[str] = set()
        self._waiting: frozenset = frozenset()
        #: True when the thread gave up after crashing repeatedly (the daemon then exits).
        self.crashed = False
        self._thread = threading.Thread(target=self._run, name="delivery", daemon=True)

    # -- any thread ---------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, reading: Reading) -> None:
        """Queue a reading for delivery.  Never blocks."""
        self._events.put(reading)

    def attach(self, client: Any, routes: dict, waiting: Any = ()) -> None:
        """Start sending through *client* with *routes* (sensor name -> Route).

        Readings of the sensors named in *waiting* (configured, but not set up on the
        agent yet) are kept in the outbox, in order, until an attach with their routes.
        """
        self._events.put((_ATTACH, client, dict(routes), frozenset(waiting)))

    def reroute(self, routes: dict, hold: Any = ()) -> None:
        """Use *routes* from now on, on the same connection (a config reload changed the sensors).

        Unlike :meth:`attach` nothing is spilled or sent again.  The sensors named in *hold*
        (their new set-up on the agent is not done yet) are kept in the outbox, in order,
        like the waiting ones of :meth:`attach`; only the next :meth:`attach` releases them.
        """
        self._events.put((_REROUTE, dict(routes), frozenset(hold)))

    def detach(self) -> None:
        """The connection is gone (or the agent stopped answering): keep everything in the outbox
        until the next :meth:`attach`; readings acknowledged but not confirmed are sent again then."""
        self._events.put((_DETACH,))

    def confirm(self, mark: int) -> None:
        """The agent has handled every reading acknowledged until :attr:`delivered` was *mark*."""
        self._events.put((_CONFIRM, mark))

    def push_answered(self, counts: Any, sensor_id: str, answered: int) -> None:
        """The agent has handled the first *answered* pushes of *sensor_id* in *counts*
        (the client's ``on_push_answered``; called from paho's thread)."""
        self._events.put((_ANSWERED, counts, sensor_id, answered))

    @property
    def in_flight(self) -> int:
        return len(self._live) + len(self._replay)

    @property
    def replaying(self) -> int:
        """Readings replayed from the outbox and not acknowledged yet (at most ``replay_window``)."""
        return len(self._replay)

    @property
    def unconfirmed(self) -> int:
        return len(self._unconfirmed)

    def stop(self, drain_timeout: float = 2.0, timeout: float = 30.0) -> bool:
        """Finish: wait up to *drain_timeout* for outstanding acknowledgements, put every
        reading not yet acknowledged into the outbox and commit it.  Call after the
        readers have stopped.  Returns True when the thread ended in time."""
        if not self._thread.is_alive():
            if self.crashed:
                # The thread gave up: what it held (queued, pending, in flight) still goes to the outbox.
                self._finish(0.0)
            return True
        self._events.put((_STOP, drain_timeout))
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- paho's network thread ----------------------------------------------------

    def _live_acked(self, seq: int) -> None:
        with self._lock:
            entry = self._live.pop(seq, None)
            if entry is None:
                return
            self.delivered += 1
            if self.confirm_by_owner:
                self._unconfirmed[seq] = (self.delivered, entry[0])

    def _replay_acked(self, seq: int) -> None:
        with self._lock:
            entry = self._replay.pop(seq, None)
            if entry is None:
                return
            self.delivered += 1
            self.replayed += 1
            if self.confirm_by_owner:
                self._unconfirmed[seq] = (self.delivered, entry[0])
                self._unconfirmed_replayed += 1
            else:
                self._acked_ids.append(entry[0])
            wake = len(self._replay) <= self.replay_window // 2
        if wake:
            self._events.put(_WAKE_ITEM)

    # -- delivery thread ----------------------------------------------------------

    def _run(self) -> None:
        crashes = Crashes(log, "the delivery thread")
        while True:
            try:
                self._loop(crashes)
                return
            except Exception as exc:
                # A bug here must not stop delivery silently; the readings stay queued.  Repeated
                # crashes end the thread, and the daemon exits for systemd to restart it.
                if not crashes.record(exc):
                    self.crashed = True
                    return
                time.sleep(1.0)

    def is_alive(self) -> bool:
        """False once the thread has ended (stopped, or given up after repeated crashes)."""
        return self._thread.is_alive()

    def _loop(self, crashes: Crashes) -> None:
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
                    if self.mode is OFFLINE:
                        self._pending.append(item)
                    else:
                        self._publish_live(item)
                else:
                    kind = item[0]
                    if kind == _STOP:
                        self._finish(item[1])
                        return
                    if kind == _ATTACH:
                        self._attached(item[1], item[2], item[3])
                    elif kind == _DETACH:
                        self._go_offline("the connection to the agent is down")
                    elif kind == _ANSWERED:
                        self._answered(item[1], item[2], item[3])
                    elif kind == _CONFIRM:
                        self._confirmed(item[1])
                    elif kind == _REROUTE:
                        self._rerouted(item[1], item[2])
                batch += 1
                if batch >= 2000:
                    break
                try:
                    item = get(False)
                except empty:
                    item = None
            self._housekeeping()
            crashes.turn_went_well()

    def _wait_time(self) -> float:
        wait = 1.0
        with self._lock:
            oldest = _oldest(self._live)
        if oldest is not None:
            wait = min(wait, oldest + self.ack_window - time.monotonic())
        return max(wait, 0.001)

    def _confirmed(self, mark: float) -> None:
        self._confirm_asked = False
        with self._lock:
            unconfirmed = self._unconfirmed
            covered = []
            for seq, (delivered, _) in unconfirmed.items():
                if delivered > mark:
                    break
                covered.append(seq)
            for seq in covered:
                self._retire(unconfirmed.pop(seq)[1])
            self._forget_retired_pushes()

    def _answered(self, counts: Any, sensor_id: str, answered: int) -> None:
        pushes = self._pushes.get(sensor_id)
        if not pushes:
            return
        handled = []
        while pushes:
            push_counts, number, seq = pushes[0]
            if push_counts is counts:
                if number >= answered:
                    break
                handled.append(seq)
            # else: a push of an earlier connection, settled by attach or a ping
            pushes.popleft()
        with self._lock:
            for seq in handled:
                entry = self._unconfirmed.pop(seq, None)
                # Not there: retired already, or spilled; or (a broker that answers before it
                # acknowledges) not acknowledged yet, and left to the next ping.
                if entry is not None:
                    self._retire(entry[1])

    def _retire(self, item: Reading | int) -> None:
        """The agent has *item* (a live reading, or a replayed reading's outbox id).  Hold the lock."""
        if item.__class__ is not Reading:
            self._unconfirmed_replayed -= 1
            self._acked_ids.append(item)

    def _forget_retired_pushes(self) -> None:
        """Drop the numbers of pushes settled otherwise than by an answer (an agent that does not
        answer pushes would otherwise make them pile up).  Hold the lock."""
        pending = (self._unconfirmed, self._live, self._replay)
        for sensor_id in list(self._pushes):
            pushes = self._pushes[sensor_id]
            while pushes and not any(pushes[0][2] in table for table in pending):
                pushes.popleft()
            if not pushes:
                del self._pushes[sensor_id]

    def _attached(self, client: Any, routes: dict, waiting: frozenset) -> None:
        # Unconfirmed replayed readings are still in the outbox and go again from its head.
        self._spill_live()
        self._client, self._routes, self._waiting = client, routes, waiting
        self._warned_routes.clear()
        self._forget_replay()
        self.mode = REPLAY
        log.info("delivering to the agent (%d sensors)", len(self._routes))

    def _rerouted(self, routes: dict, hold: frozenset) -> None:
        # A sensor already waiting stays waiting: releasing it means replaying from the
        # outbox's head, which only attach does.
        self._waiting = self._waiting | hold
        self._routes = {name: route for name, route in routes.items() if name not in self._waiting}
        self._warned_routes.clear()

    def _go_offline(self, why: str) -> None:
        # The broker's acknowledgement is no proof the agent read them: unconfirmed live readings
        # go to the outbox, replayed ones stay there and go again from its head.
        spilled = self._spill_live()
        if self.mode is OFFLINE:
            return
        self._client = None
        self._forget_replay()
        self.mode = OFFLINE
        if spilled:
            log.warning("%s: buffering; %d unacknowledged readings moved to the outbox", why, spilled)
        else:
            log.warning("%s: buffering readings in the outbox", why)

    def _spill_live(self) -> int:
        """Move every unconfirmed and every unacknowledged live reading, oldest first, in front of
        the pending ones; forget the unconfirmed replayed ones (they are still in the outbox)."""
        with self._lock:
            unconfirmed = [item for _, item in self._unconfirmed.values() if item.__class__ is Reading]
            self._unconfirmed.clear()
            self._unconfirmed_replayed = 0
            entries = [reading for reading, _ in self._live.values()]
            self._live.clear()
        if not unconfirmed and not entries:
            return 0
        spilled = unconfirmed + entries
        self._pending[:0] = spilled
        self.spilled += len(spilled)
        return len(spilled)

    def _values(self, reading: Reading) -> tuple[str, dict] | None | bool:
        """(sensor ID, {metric ID: value}) to publish; None to drop the reading; False to keep it
        in the outbox for later."""
        route = self._routes.get(reading.sensor)
        if route is None:
            if reading.sensor in self._waiting:
                return False
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
        if not target:
            if target is False:
                self._pending.append(reading)
            return
        self._seq = seq = self._seq + 1
        # In the table before publishing: the PUBACK may come back before publish returns.
        self._live[seq] = (reading, time.monotonic())
        try:
            self._count_push(target[0], seq, self._client.publish_values(
                target[0], target[1], reading.timestamp_ms, on_ack=functools.partial(self._live_acked, seq)
            ))
        except AgentConnectionLost:
            self._go_offline("lost the connection to the agent")
            return
        except (PibridgeAgentError, ValueError, TypeError) as exc:
            self._live.pop(seq, None)
            self.unroutable += 1
            log.error("reading of sensor %r at %d cannot be sent and is dropped: %s", reading.sensor, reading.timestamp_ms, exc)

    def _count_push(self, sensor_id: str, seq: int, ticket: Any) -> None:
        """Remember which of the connection's pushes *seq* is, for the agent's answers to retire it."""
        if self.confirm_by_owner and ticket is not None:
            counts, number = ticket
            pushes = self._pushes.get(sensor_id)
            if pushes is None:
                pushes = self._pushes[sensor_id] = collections.deque()
            pushes.append((counts, number, seq))

    def _housekeeping(self) -> None:
        now = time.monotonic()
        with self._lock:
            oldest = _oldest(self._live)
        if oldest is not None and now - oldest > self.ack_window:
            n = self._spill_live()
            log.warning(
                "the agent did not acknowledge a push within %g s; %d readings moved to the outbox",
                self.ack_window,
                n,
            )
            self.mode = REPLAY if self._client is not None else OFFLINE
        self._write_outbox()
        if self.mode is REPLAY:
            self._replay_some(now)
        self._ask_confirmation()

    def _ask_confirmation(self) -> None:
        # Replayed readings stay in the outbox until confirmed.  Keeping one confirmation
        # in flight while any wait paces a replay to the agent without stalling its tail
        # (the last readings of a backlog) until the owner's next periodic ping.
        if (self.confirm_by_owner and self._client is not None and self._unconfirmed_replayed
                and not self._confirm_asked):
            self._confirm_asked = True
            if self.on_confirm_wanted is not None:
                self.on_confirm_wanted()

    def _write_outbox(self) -> None:
        # The outbox keeps appended readings in memory and commits them itself
        # every commit_interval; it degrades to memory on disk errors, never raises.
        if self._pending:
            self.buffered += len(self._pending)
            self.outbox.append(self._pending)
            self._pending = []
        if self._acked_ids:
            acked = self._acked_ids
            self.outbox.remove([acked.popleft() for _ in range(len(acked))])

    def _forget_replay(self) -> None:
        """Resend from the head of the outbox: outstanding replays will not be acknowledged now."""
        with self._lock:
            self._replay.clear()
        self._replay_after = 0

    def _replay_some(self, now: float) -> None:
        with self._lock:
            oldest = _oldest(self._replay)
        if oldest is not None and now - oldest > 2 * self.ack_window + _REPLAY_GIVE_UP:
            # Acknowledgements lost: send the window again (at-least-once).
            self._forget_replay()
        room = self.replay_window - len(self._replay)
        if self.confirm_by_owner:
            unconfirmed = self._unconfirmed_replayed + len(self._replay)
            room = min(room, self.replay_credit - unconfirmed)
            if room <= 0:
                return
        if room < self.replay_window // 2 and self._replay:
            return
        while room > 0:
            fresh = self.outbox.peek(room, after_id=self._replay_after)
            if not fresh:
                if not self._replay and not self._pending:
                    self.mode = LIVE
                    log.info("the outbox is empty; sending readings live")
                return
            for entry in fresh:
                self._replay_after = entry.id
                target = self._values(entry.reading)
                if not target:
                    if target is None:
                        self._acked_ids.append(entry.id)
                    continue
                self._seq = seq = self._seq + 1
                self._replay[seq] = (entry.id, now)
                try:
                    self._count_push(target[0], seq, self._client.publish_values(
                        target[0], target[1], entry.reading.timestamp_ms,
                        on_ack=functools.partial(self._replay_acked, seq),
                    ))
                except AgentConnectionLost:
                    self._go_offline("lost the connection to the agent")
                    return
                except (PibridgeAgentError, ValueError, TypeError) as exc:
                    self._replay.pop(seq, None)
                    log.error(
                        "buffered reading of sensor %r cannot be sent and is dropped: %s", entry.reading.sensor, exc
                    )
                    self._acked_ids.append(entry.id)
                    continue
                room -= 1

    def _finish(self, drain_timeout: float) -> None:
        """Stop: wait briefly for outstanding acknowledgements, then keep the rest in the outbox."""
        deadline = time.monotonic() + drain_timeout
        detached = False
        while self._client is not None and (self._live or self._replay) and not detached:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = self._events.get(timeout=min(remaining, 0.01))
            except queue.Empty:
                continue
            if item.__class__ is Reading:
                self._pending.append(item)
            elif item[0] == _DETACH:
                detached = True
        while True:
            try:
                item = self._events.get(False)
            except queue.Empty:
                break
            if item.__class__ is Reading:
                self._pending.append(item)
        spilled = self._spill_live()
        self._client = None
        self.mode = OFFLINE
        self._write_outbox()
        self.outbox.commit()
        if spilled:
            log.info("%d unacknowledged readings kept in the outbox", spilled)
