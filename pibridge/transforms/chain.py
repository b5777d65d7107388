"""A metric's filters in order, and what became of each value on its way through them.

:class:`Chain` runs one value through its filters until one holds it back
or drops it, and keeps a :class:`Trace` of every step for ``pibridge check``.
It counts what did not come out, by cause: *held* values (a window
filling, a change below the threshold, a throttle: by design) and *dropped*
ones (outside ``valid``, listed in ``filter_out``: refused), and logs the
first drop of each cause, naming the metric.

Threading: a chain belongs to one sensor, whose reads run one at a time.  Its counters
(:class:`Tally`) may be copied by another thread (the status file) at any
time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable

from pibridge.transforms.base import Dropped, Filter, Held, Outcome, Passed, Value

log = logging.getLogger("pibridge.transforms")


class Tally:
    """Counts by cause.  One thread adds; any thread may take a :meth:`copy` meanwhile.

    A cause seen for the first time replaces the dict instead of growing it,
    so a copy taken by another thread never meets a dict changing size.
    """

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def add(self, cause: str) -> int:
        """Count one more *cause*; returns the new count."""
        counts = self._counts
        if cause in counts:
            counts[cause] += 1
        else:
            self._counts = {**counts, cause: 1}
        return self._counts[cause]

    def copy(self) -> dict[str, int]:
        return dict(self._counts)

    def __getitem__(self, cause: str) -> int:
        return self._counts.get(cause, 0)

    def __bool__(self) -> bool:
        return bool(self._counts)

    def __eq__(self, other: object) -> bool:
        return self.copy() == (other.copy() if isinstance(other, Tally) else other)

    def __repr__(self) -> str:
        return f"Tally({self._counts!r})"


@dataclass(frozen=True)
class Trace:
    """One value's way through a chain: the raw value, each filter's outcome, and what came out.

    ``value`` is None when a filter held the value back or dropped it;
    ``stopped`` is then that filter's outcome.
    """

    raw: Value
    steps: tuple[tuple[Filter, Outcome], ...]
    value: Value | None

    @property
    def stopped(self) -> Held | Dropped | None:
        if not self.steps or isinstance(self.steps[-1][1], Passed):
            return None
        return self.steps[-1][1]


class Chain:
    """The filters of one metric, each a fresh copy with its own state.

    *where* names the metric in log lines (``sensor 'x', metric 'y'``).
    """

    def __init__(self, filters: Iterable[Filter], where: str = ""):
        self.filters: tuple[Filter, ...] = tuple(f.fresh() for f in filters)
        self.where = where
        self.held = Tally()
        self.dropped = Tally()

    def run(self, value: Value, at: float) -> Trace:
        """Pass *value*, read at *at* (seconds), through every filter.

        Raises :class:`~pibridge.transforms.base.FilterOverflow` (a ValueError)
        when a filter's arithmetic overflows.
        """
        raw = value
        steps: list[tuple[Filter, Outcome]] = []
        inputs: list[Value] = []
        for f in self.filters:
            inputs.append(value)
            outcome = f.step(value, at)
            steps.append((f, outcome))
            if isinstance(outcome, Held):
                self.held.add(outcome.cause)
                return Trace(raw, tuple(steps), None)
            if isinstance(outcome, Dropped):
                self._drop(outcome)
                return Trace(raw, tuple(steps), None)
            value = outcome.value
        for f, seen in zip(self.filters, inputs):
            f.pushed(seen, at)
        return Trace(raw, tuple(steps), value)

    def correct(self, value: Value) -> Value | None:
        """*value* after only the correcting filters (bounds, calibration); None if one drops it.

        Derived values are computed from inputs corrected this way: calibrated,
        but not smoothed, rounded or held back.
        """
        for f in self.filters:
            if not f.corrects:
                continue
            outcome = f.step(value, 0.0)
            if not isinstance(outcome, Passed):
                return None
            value = outcome.value
        return value

    def _drop(self, outcome: Dropped) -> None:
        if self.dropped.add(outcome.cause) == 1:
            log.warning("%s: %s; the reading is dropped (counted in `pibridge status` as %s; logged only once)",
                        self.where or "a metric", outcome.reason, outcome.cause)
