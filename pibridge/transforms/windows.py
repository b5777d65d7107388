"""Filters over the last few readings: median, mean, min, max and the exponential moving average.

A window holds the last N readings (``{ median = 5 }``) or the readings of
the last stretch of time (``{ mean = "60s" }``).  Until it is full nothing
is pushed (``pibridge check`` says "window not full").  ``send_every`` says
how often the result is passed on: every reading (the default, a sliding
window), every N readings (``send_every = 60``) or once per stretch of the
wall clock (``send_every = "60s"``: with the first reading of each new
minute).  So a sensor read every second can push a one-minute average::

    filters = [{ mean = "60s", send_every = "60s" }]

The value pushed carries the timestamp of the window's last reading (the
reading that completed it).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass
from typing import ClassVar

from pibridge.settings import BAD, Table, number, parse_seconds, show, type_name
from pibridge.transforms.base import JITTER, Filter, Held, Outcome, Passed, Value, finite, state

#: Longest count window: the values are kept in memory, one sensor thread each.
MAX_READINGS = 10_000


def window_size(value) -> tuple[int, float]:
    """(readings, 0) from a whole number, or (0, seconds) from a duration such as ``"60s"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= MAX_READINGS:
            raise ValueError(f"must be 1 to {MAX_READINGS} readings, not {value}")
        return value, 0.0
    if isinstance(value, str):
        seconds = parse_seconds(value)
        if seconds <= 0:
            raise ValueError(f"must be a duration above 0, not {value!r}")
        return 0, seconds
    raise ValueError(
        f"must be a number of readings (5) or a duration (\"60s\"), not {type_name(value)} ({show(value)})"
    )


def send_every(value) -> "SendEvery":
    readings, seconds = window_size(value)
    return SendEvery(readings or 1, seconds)


@dataclass(frozen=True)
class SendEvery:
    """How often a smoothing filter passes its result on: every *readings*-th reading, or every *seconds*."""

    readings: int = 1
    seconds: float = 0.0

    def describe(self) -> str:
        if self.seconds:
            return f"send every {self.seconds:g} s"
        return "" if self.readings == 1 else f"send every {self.readings} readings"


class _Pacer:
    """Decides, result by result, whether a smoothing filter sends now (the first result always goes)."""

    def __init__(self, every: SendEvery):
        self.every = every
        self.waited = 0  # results held since the last send (count pacing)
        self.slot: int | None = None  # the wall-clock period of the last send (time pacing)
        self.sent = False

    def due(self, at: float) -> bool:
        if self.every.seconds:
            slot = math.floor((at + JITTER) / self.every.seconds)
            if self.sent and slot == self.slot:
                return False
            self.slot = slot
        else:
            self.waited += 1
            if self.sent and self.waited < self.every.readings:
                return False
            self.waited = 0
        self.sent = True
        return True

    def why_not(self) -> str:
        if self.every.seconds:
            return f"send_every: the next value goes out with the first reading of the next {self.every.seconds:g} s"
        return f"send_every: {self.every.readings - self.waited} more readings until the next value goes out"


@dataclass
class Window(Filter):
    """Base of median, mean, min and max: *readings* > 0 for a count window, else *seconds* for a time window."""

    readings: int = 0
    seconds: float = 0.0
    send_every: SendEvery = SendEvery()
    _values: deque = state(factory=deque)
    _first_at: float | None = state()
    _pacer: _Pacer | None = state()

    extra_keys: ClassVar[tuple[str, ...]] = ("send_every",)

    def __post_init__(self) -> None:
        self._pacer = _Pacer(self.send_every)

    @classmethod
    def from_table(cls, t: Table) -> "Window | None":
        size = t.get(cls.key, window_size, fix=f'{cls.key} = 5 (readings) or {cls.key} = "60s" (a time window)')
        every = t.get("send_every", send_every, SendEvery(),
                      fix='send_every = 10 (readings) or send_every = "60s" (once a minute)')
        if size is BAD or every is BAD:
            return None
        readings, seconds = size
        return cls(readings=readings, seconds=seconds, send_every=every)

    def combine(self, values: list[float]) -> float:
        raise NotImplementedError

    def step(self, value: Value, at: float) -> Outcome:
        if self._first_at is None:
            self._first_at = at
        self._values.append((at, value))
        if self.readings:
            while len(self._values) > self.readings:
                self._values.popleft()
            if len(self._values) < self.readings:
                return Held("window_filling", f"window not full: {len(self._values)} of {self.readings} readings")
        else:
            while self._values and self._values[0][0] <= at - self.seconds + JITTER and len(self._values) > 1:
                self._values.popleft()
            if at - self._first_at < self.seconds - JITTER:
                return Held("window_filling",
                            f"window not full: {at - self._first_at:.0f} of {self.seconds:g} s")
        if not self._pacer.due(at):
            return Held("between_sends", self._pacer.why_not())
        return Passed(finite(self.combine([v for _, v in self._values]), self.key))

    def describe(self) -> str:
        size = f"{self.readings} readings" if self.readings else f"{self.seconds:g} s"
        pace = self.send_every.describe()
        return f"{self.key} of {size}" + (f", {pace}" if pace else "")


@dataclass
class Median(Window):
    """``{ median = 5 }``: the middle value of the window; one wild reading in five cannot move it."""

    key: ClassVar[str] = "median"

    def combine(self, values: list[float]) -> float:
        return statistics.median(values)


@dataclass
class Mean(Window):
    """``{ mean = 10 }``: the average of the window (``math.fsum``, no rounding drift)."""

    key: ClassVar[str] = "mean"

    def combine(self, values: list[float]) -> float:
        return math.fsum(values) / len(values)


@dataclass
class Min(Window):
    """``{ min = "10m" }``: the lowest value of the window."""

    key: ClassVar[str] = "min"

    def combine(self, values: list[float]) -> float:
        return min(values)


@dataclass
class Max(Window):
    """``{ max = "10m" }``: the highest value of the window (a gust, a peak current)."""

    key: ClassVar[str] = "max"

    def combine(self, values: list[float]) -> float:
        return max(values)


@dataclass
class Ema(Filter):
    """``{ ema = 0.2 }``: exponential moving average, ``avg = alpha x value + (1 - alpha) x avg``.

    A small alpha smooths a lot and follows slowly; alpha = 1 is no smoothing.
    The first reading starts the average.
    """

    key: ClassVar[str] = "ema"
    alpha: float = 0.1
    send_every: SendEvery = SendEvery()
    _average: float | None = state()
    _pacer: _Pacer | None = state()

    extra_keys: ClassVar[tuple[str, ...]] = ("send_every",)

    def __post_init__(self) -> None:
        self._pacer = _Pacer(self.send_every)

    @classmethod
    def from_table(cls, t: Table) -> "Ema | None":
        alpha = t.get("ema", number, fix="ema = 0.2 (the weight of the newest reading, above 0 and at most 1)",
                      check=lambda v: None if 0 < v <= 1 else f"must be above 0 and at most 1, not {v:g}")
        every = t.get("send_every", send_every, SendEvery(),
                      fix='send_every = 10 (readings) or send_every = "60s" (once a minute)')
        if alpha is BAD or every is BAD:
            return None
        return cls(alpha=alpha, send_every=every)

    def step(self, value: Value, at: float) -> Outcome:
        if self._average is None:
            self._average = float(value)
        else:
            self._average = finite(self.alpha * value + (1.0 - self.alpha) * self._average, "ema")
        if not self._pacer.due(at):
            return Held("between_sends", self._pacer.why_not())
        return Passed(self._average)

    def describe(self) -> str:
        pace = self.send_every.describe()
        return f"ema alpha {self.alpha:g}" + (f", {pace}" if pace else "")
