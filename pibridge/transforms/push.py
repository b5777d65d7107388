"""Push policy: when a value is worth sending.  Threshold with heartbeat, throttle, debounce.

These filters hold values back on purpose.  They measure from the last value
that was actually pushed (the chain tells them through :meth:`pushed`), not
from the last one they let through, so a later filter holding a value back
does not fool them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from pibridge.settings import BAD, MISSING, Table, duration_between, number, parse_seconds
from pibridge.transforms.values import AMOUNT_MAX
from pibridge.transforms.base import BOOL, JITTER, NUMERIC, Filter, Held, Outcome, Passed, Value, state

#: The heartbeat a threshold gets when the config names none (seconds).  TeamViewer IoT's
#: cloud marks a metric offline after two minutes without data; a push at least every
#: 90 s keeps a healthy sensor whose value does not change from looking dead.
DEFAULT_HEARTBEAT = 90.0
#: Longest throttle or heartbeat (a day, like the longest sensor interval) and longest debounce.
DURATION_MAX = 86400.0
DEBOUNCE_MAX = 3600.0

# Threshold comparisons tolerate float noise: 21.2 - 21.1 is 0.0999999...
_TOLERANCE = 1e-9


@dataclass
class Threshold(Filter):
    """``{ threshold = 0.5, heartbeat = "15m" }``: push only a change of at least *threshold*, or
    when *heartbeat* seconds have passed since the last push (infinity: never; the config's
    ``heartbeat = false``)."""

    key: ClassVar[str] = "threshold"
    extra_keys: ClassVar[tuple[str, ...]] = ("heartbeat",)
    threshold: float = 0.0
    heartbeat: float = DEFAULT_HEARTBEAT
    _last: tuple[float, float] | None = state()

    @classmethod
    def from_table(cls, t: Table) -> "Threshold | None":
        threshold = t.get("threshold", number, fix="threshold = 0.5 (push changes of at least this much)",
                          check=check_threshold)
        beat = read_heartbeat(t)
        if threshold is BAD or beat is BAD:
            return None
        return cls(threshold, DEFAULT_HEARTBEAT if beat is None else beat)

    def step(self, value: Value, at: float) -> Outcome:
        if self._last is None:
            return Passed(value)
        last_value, last_at = self._last
        if at - last_at >= self.heartbeat - JITTER:
            return Passed(value)
        if abs(value - last_value) >= self.threshold * (1 - _TOLERANCE):
            return Passed(value)
        beat = "" if math.isinf(self.heartbeat) else f"; heartbeat in {self.heartbeat - (at - last_at):.0f} s"
        return Held("below_threshold",
                    f"moved {abs(value - last_value):g} since the last push, less than threshold {self.threshold:g}{beat}")

    def pushed(self, value: Value, at: float) -> None:
        self._last = (value, at)

    def describe(self) -> str:
        beat = "no heartbeat" if math.isinf(self.heartbeat) else f"heartbeat {self.heartbeat:g} s"
        return f"threshold {self.threshold:g}, {beat}"


@dataclass
class Throttle(Filter):
    """``{ throttle = "30s" }``: at most one push per *seconds*; readings in between are left out."""

    key: ClassVar[str] = "throttle"
    kinds: ClassVar[frozenset[str]] = NUMERIC | {BOOL}
    seconds: float = 0.0
    _last_at: float = state(-math.inf)

    @classmethod
    def from_table(cls, t: Table) -> "Throttle | None":
        seconds = t.get("throttle", parse_seconds, fix='throttle = "30s" (at most one push per 30 s)',
                        check=duration_between(0.001, DURATION_MAX))
        return None if seconds is BAD else cls(seconds)

    def step(self, value: Value, at: float) -> Outcome:
        wait = self._last_at + self.seconds - at
        if wait <= JITTER:
            return Passed(value)
        return Held("throttled", f"throttle: the next push is allowed in {wait:.0f} s")

    def pushed(self, value: Value, at: float) -> None:
        self._last_at = at

    def describe(self) -> str:
        return f"throttle {self.seconds:g} s"


@dataclass
class Debounce(Filter):
    """``{ debounce = "2s" }``, for on/off values: a new state goes out only once it has held that long.

    While a change is pending the reading is held, so a contact that
    chatters while a door swings reports only where it came to rest.  The
    first reading after start is taken as it is.
    """

    key: ClassVar[str] = "debounce"
    kinds: ClassVar[frozenset[str]] = frozenset({BOOL})
    seconds: float = 0.0
    _stable: bool | None = state()
    _pending: tuple[bool, float] | None = state()

    @classmethod
    def from_table(cls, t: Table) -> "Debounce | None":
        seconds = t.get("debounce", parse_seconds, fix='debounce = "2s" (how long a new state must hold)',
                        check=duration_between(0.001, DEBOUNCE_MAX))
        return None if seconds is BAD else cls(seconds)

    def step(self, value: Value, at: float) -> Outcome:
        if self._stable is None or value == self._stable:
            self._stable, self._pending = value, None
            return Passed(value)
        if self._pending is None or self._pending[0] != value:
            self._pending = (value, at)
        since = at - self._pending[1]
        if since >= self.seconds - JITTER:
            self._stable, self._pending = value, None
            return Passed(value)
        return Held("debouncing", f"debounce: the new state has held {since:.1f} of {self.seconds:g} s")

    def describe(self) -> str:
        return f"debounce {self.seconds:g} s"


def heartbeat_seconds(value) -> float:
    """Seconds from a duration, or infinity for ``false`` (no heartbeat at all)."""
    if value is False:
        return math.inf
    seconds = parse_seconds(value)
    if seconds <= 0:
        raise ValueError(f"must be greater than 0, not {seconds:g} (write heartbeat = false for none)")
    if seconds > DURATION_MAX:
        raise ValueError(f"must be at most 1 d, not {seconds:g} s (write heartbeat = false for none)")
    return seconds


def check_threshold(v: float) -> str | None:
    if v <= 0:
        return f"must be greater than 0, not {v:g}"
    return None if v <= AMOUNT_MAX else f"must be at most {AMOUNT_MAX:g}, not {v:g}"


def read_heartbeat(t: Table):
    """The ``heartbeat`` key of *t*: None when absent, infinity for ``false``, else seconds (BAD after an error)."""
    if t.raw("heartbeat") is MISSING:
        return None
    return t.get("heartbeat", heartbeat_seconds, fix='heartbeat = "15m" (or heartbeat = false for none)')
