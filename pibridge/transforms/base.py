"""What every filter is: one small step that passes a value on, holds it back, or drops it.

A filter sees one value of one metric at a time, with the time it was read
(seconds since the epoch, the reading's own timestamp), and answers with one
of three outcomes:

* :class:`Passed` -- this value (perhaps changed) goes on to the next step;
* :class:`Held` -- nothing goes on *now*, by design (a window still filling,
  a change below the threshold, a throttle); the value is not lost, it is
  part of what is pushed later or deliberately summarised away;
* :class:`Dropped` -- the value is refused (outside the ``valid`` range, a
  ``filter_out`` value): counted by cause and logged the first time.

A filter is a small dataclass: its fields are its settings, as read from the
config (two filters with the same settings compare equal), and any state it
keeps (a window, the last pushed value) lives in fields left out of the
comparison.  :meth:`Filter.fresh` gives an unused copy, so one config can
feed several independent chains (the daemon, ``pibridge check``).

Nothing here does I/O or knows about the bridge; not thread-safe (one
sensor's reads, one at a time, drive one chain).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar, Union

from pibridge.readings import Quantity
from pibridge.settings import Table
from pibridge.units import ValueType

Value = Union[float, int, bool, str]

#: Kinds of values a quantity has (what :func:`kind_of` answers).
NUMBER, INTEGER, BOOL, TEXT = "number", "integer", "bool", "text"
NUMERIC = frozenset({NUMBER, INTEGER})


def kind_of(quantity: Quantity) -> str:
    """NUMBER, INTEGER, BOOL or TEXT: what the values of *quantity* are."""
    value_type = quantity.agent_unit.value_type
    if value_type is ValueType.BOOL:
        return BOOL
    if value_type is ValueType.STRING:
        return TEXT
    if value_type is ValueType.INTEGER:
        return INTEGER
    return NUMBER


#: How late a reading may be taken after its slot on the clock grid and still count as on
#: time (a read starts a few milliseconds after the slot; a busy Pi a little later).
JITTER = 0.25


@dataclass(frozen=True)
class Passed:
    """The value goes on to the next step."""

    value: Value


@dataclass(frozen=True)
class Held:
    """Nothing goes on now, by design.  ``cause`` is a short key for counters, ``reason`` a sentence."""

    cause: str
    reason: str


@dataclass(frozen=True)
class Dropped:
    """The value is refused.  ``cause`` is a short key for counters, ``reason`` a sentence."""

    cause: str
    reason: str


Outcome = Union[Passed, Held, Dropped]


class FilterOverflow(ValueError):
    """A filter's arithmetic left the range of finite numbers (a scale of 1e300 on 1e10)."""


@dataclass
class Filter:
    """Base class of every filter.

    A subclass sets ``key`` (its name in a ``filters = [...]`` entry),
    ``kinds`` (the kinds of values it applies to) and implements
    :meth:`from_table` and :meth:`step`.
    """

    key: ClassVar[str] = ""
    kinds: ClassVar[frozenset[str]] = NUMERIC
    #: Keys the filter's table may hold besides ``key`` (``send_every``, ``heartbeat``).
    extra_keys: ClassVar[tuple[str, ...]] = ()
    #: A correction of the value itself (bounds, calibration): also applied to the inputs of
    #: derived values, which must not be computed from uncalibrated readings.
    corrects: ClassVar[bool] = False

    @classmethod
    def from_table(cls, t: Table) -> "Filter | None":
        """The filter from its entry in a ``filters`` list, read through *t* (None after an error)."""
        raise NotImplementedError

    def step(self, value: Value, at: float) -> Outcome:
        raise NotImplementedError

    def pushed(self, value: Value, at: float) -> None:
        """Told, after the whole chain let a value through, what this filter's input was."""

    def describe(self) -> str:
        """The filter as the user wrote it, for ``pibridge check`` (``median 5``)."""
        settings = [f.name for f in dataclasses.fields(self) if f.compare]
        if not settings:
            return self.key
        return f"{self.key} " + ", ".join(_text(getattr(self, name)) for name in settings)

    def fresh(self) -> "Filter":
        """A copy with the same settings and no state."""
        return dataclasses.replace(self)


def state(default=None, factory=None):
    """A dataclass field for a filter's running state: not a setting, not compared, not shown."""
    if factory is not None:
        return dataclasses.field(default_factory=factory, init=False, compare=False, repr=False)
    return dataclasses.field(default=default, init=False, compare=False, repr=False)


def finite(value: float, what: str) -> float:
    """*value* if it is a finite number, else :class:`FilterOverflow` naming *what* overflowed."""
    if not math.isfinite(value):
        raise FilterOverflow(f"{what} overflows")
    return value


def _text(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return str(value)
