"""Bookkeeping of the agent client's requests in flight: PUBACK/SUBACK handlers, waiting requests.

Everything here is handed over between a caller's thread and paho's network
thread; each class says which side calls what.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from pibridge.agent import answers, topics
from pibridge.agent.answers import snippet
from pibridge.agent.errors import AgentTimeout, ProtocolError, printable

# What is logged here is the client's doing, under its name (the log level of one governs both).
log = logging.getLogger("pibridge.agent.client")


class MidTable:
    """What to do when paho confirms a message ID (PUBACK or SUBACK).

    paho may confirm a mid on its network thread before the ``publish()`` or
    ``subscribe()`` call that issued it has returned it to us.  A caller
    therefore calls :meth:`begin` before issuing and :meth:`register` after;
    confirmations arriving in between are parked and handed back by
    :meth:`register`.  Without the lock held across the paho call, which
    would deadlock: paho confirms while holding its own message mutex.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, object] = {}
        self._early: dict[int, object] = {}
        self._issuing = 0

    def begin(self) -> None:
        with self._lock:
            self._issuing += 1

    def abort(self) -> None:
        with self._lock:
            self._issuing -= 1
            if not self._issuing:
                self._early.clear()

    def register(self, mid: int, handler: object) -> tuple[bool, object]:
        """Park *handler* for *mid*; returns (True, confirmation) if it already came."""
        with self._lock:
            self._issuing -= 1
            if mid in self._early:
                value = self._early.pop(mid)
                if not self._issuing:
                    self._early.clear()
                return True, value
            self._pending[mid] = handler
            if not self._issuing:
                self._early.clear()
            return False, None

    def confirm(self, mid: int, value: object) -> object | None:
        """The handler parked for *mid*, or None (the confirmation is parked if a caller is mid-issue)."""
        with self._lock:
            handler = self._pending.pop(mid, None)
            if handler is None and self._issuing:
                self._early[mid] = value
            return handler

    def drop(self, mid: int) -> None:
        with self._lock:
            self._pending.pop(mid, None)

    def clear(self) -> list[object]:
        with self._lock:
            handlers = list(self._pending.values())
            self._pending.clear()
            self._early.clear()
            return handlers


class Signal:
    """A one-shot result set from paho's thread and awaited by a caller."""

    __slots__ = ("event", "value", "error")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.value: object = None
        self.error: BaseException | None = None

    def set(self, value: object = None) -> None:
        if not self.event.is_set():
            self.value = value
            self.event.set()

    def fail(self, error: BaseException) -> None:
        if not self.event.is_set():
            self.error = error
            self.event.set()


class Complaints:
    """Logs each answer the client cannot understand: the first ones per topic as warnings, then quietly.

    A flood of garbage (anyone holding the client's certificate can publish on
    its topics) must not flood the log; every 100th is still reported.
    Called from paho's network thread only, so the counts need no lock.
    """

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def __call__(self, topic: str, problem: str) -> None:
        if len(self._seen) > 1000:
            self._seen.clear()
        count = self._seen[topic] = self._seen.get(topic, 0) + 1
        # Topics below a wildcard are chosen by whoever publishes: escaped like the payload.
        problem = printable(problem, 600)
        if count <= 3 or count % 100 == 0:
            log.warning("ignoring an answer this client does not understand (%d on this topic so far): %s",
                        count, problem)
        else:
            log.debug("ignoring an answer this client does not understand: %s", problem)


class Waiter(Signal):
    """A request waiting for its answer; :meth:`offer` and :meth:`ignore` run in paho's thread.

    An answer it cannot understand does not end the wait: it is logged and
    remembered, and the well-formed answer may still come (a forged or stray
    message must not decide the request).  ``answered_on`` is the topic the
    answer or error came on; ``elsewhere`` counts messages on the route's
    other topics, which this wait does not take.
    """

    __slots__ = ("route", "answer_topics", "error_topics", "parse", "complain", "ignored", "last_problem",
                 "answered_on", "elsewhere")

    def __init__(self, route: topics.Route, answer_topics, error_topics,
                 parse: Callable[[bytes, str], object], complain: Callable[[str, str], None]) -> None:
        super().__init__()
        self.route = route
        self.answer_topics = tuple(answer_topics)
        self.error_topics = tuple(error_topics)
        self.parse = parse
        self.complain = complain
        self.ignored = 0
        self.last_problem = ""
        self.answered_on: str | None = None
        self.elsewhere = 0

    def offer(self, topic: str, payload: bytes) -> None:
        if self.event.is_set():
            return
        if topic not in self.answer_topics and topic not in self.error_topics:
            # An agent answering on the reference's and the vendor's topic: the other copy.
            self.elsewhere += 1
            log.debug("ignoring a copy of an answer on %s: this agent answers on %s", printable(topic),
                      ", ".join(self.answer_topics + self.error_topics))
            return
        try:
            if topic in self.error_topics:
                error = answers.error_answer(payload, topic)
                self.answered_on = topic
                self.fail(error)
                return
            result = self.parse(payload, topic)
        except ProtocolError as exc:
            self.ignore(topic, str(exc))
            return
        if result is answers.STALE:
            log.info("ignoring an answer on %s that belongs to another request: %s", printable(topic), snippet(payload))
            return
        self.answered_on = topic
        self.set(result)

    def ignore(self, topic: str, problem: str) -> None:
        self.ignored += 1
        self.last_problem = problem
        self.complain(topic, problem)

    def no_answer(self, timeout: float) -> Exception:
        """The error for a wait that ran out: a timeout, or what the answers that came were missing."""
        if self.ignored:
            return ProtocolError(
                f"no answer this client could understand on {self.route.answer or self.route.request} within "
                f"{timeout:g} s (request {self.route.request}); {self.ignored} ignored, the last: "
                f"{printable(self.last_problem, 600)}"
            )
        return AgentTimeout(
            f"no answer from the agent on {self.route.answer} within {timeout:g} s (request {self.route.request})"
        )
