"""Reading a metric's filters from the config: the ``filters = [...]`` list and the older keys.

::

    [sensors.metric.temperature]
    offset = -0.4                                   # older keys keep working
    filters = [{ median = 5 }, { valid = [-40, 85] }, { threshold = 0.2, heartbeat = "5m" }]

Each entry of ``filters`` is a table with one filter's name as its key (and
that filter's own extra keys, such as ``send_every``); each filter class
reads its settings itself (``from_table``).  The older keys become filters
of the same chain, in this order::

    scale, offset, <the filters list>, round, threshold (with heartbeat)

so ``value = raw * scale + offset``, rounded, pushed on a change of
``threshold`` behaves as it always did, whatever the list adds in between.
Every problem is recorded with the file, the sensor, the key (for an entry
of the list ``metric.<quantity>.filters[<n>].<filter>``, counted from 1)
and a fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pibridge.settings import BAD, MISSING, Table, did_you_mean, in_range, integer, number, ordinal, type_name
from pibridge.transforms.base import BOOL, INTEGER, NUMBER, NUMERIC, TEXT, Filter
from pibridge.transforms.push import DEFAULT_HEARTBEAT, Debounce, Threshold, Throttle, check_threshold, read_heartbeat
from pibridge.transforms.values import (
    Calibrate,
    Clamp,
    FilterOut,
    Invert,
    Offset,
    Polynomial,
    Round,
    Scale,
    Valid,
    check_amount,
    check_scale,
)
from pibridge.transforms.windows import MAX_READINGS, Ema, Max, Mean, Median, Min, Window

#: Every filter, by its name in a ``filters`` entry.
FILTERS: dict[str, type[Filter]] = {
    cls.key: cls
    for cls in (Valid, Clamp, FilterOut, Scale, Offset, Calibrate, Polynomial, Round, Invert,
                Median, Mean, Min, Max, Ema, Threshold, Throttle, Debounce)
}

_KIND_TEXT = {NUMBER: "a number", INTEGER: "a whole number", BOOL: "on/off", TEXT: "text"}


@dataclass(frozen=True)
class ValueSettings:
    """What a metric table says about values: the older keys as written, and the ``filters`` list."""

    scale: float = 1.0
    offset: float = 0.0
    round: int | None = None
    threshold: float | None = None
    heartbeat: float | None = None
    filters: tuple[Filter, ...] = ()


def full_chain(scale: float, offset: float, digits: int | None, threshold: float | None,
               heartbeat: float | None, filters: tuple[Filter, ...]) -> tuple[Filter, ...]:
    """The whole chain of a metric: older keys around the ``filters`` list (see the module docstring)."""
    chain: list[Filter] = []
    if scale != 1.0:
        chain.append(Scale(scale))
    if offset != 0.0:
        chain.append(Offset(offset))
    chain.extend(filters)
    if digits is not None:
        chain.append(Round(digits))
    if threshold is not None:
        chain.append(Threshold(threshold, DEFAULT_HEARTBEAT if heartbeat is None else heartbeat))
    return tuple(chain)


def read_value_settings(m: Table, quantity: str, kind: str, unit: str, interval: Any) -> ValueSettings:
    """The value keys of one ``[sensors.metric.<quantity>]`` table, with every problem recorded in *m*."""
    scale = m.get("scale", number, 1.0, fix="scale = 1.0", check=check_scale)
    offset = m.get("offset", number, 0.0, fix="offset = 0.0", check=check_amount)
    digits = m.get("round", integer, None, fix="round = 1 (digits after the point)", check=in_range(-9, 15))
    threshold = m.get("threshold", number, None, fix="threshold = 0.5", check=check_threshold)
    heartbeat = read_heartbeat(m)
    filters = _read_list(m, quantity, kind, interval)
    if kind not in NUMERIC:
        for key in ("scale", "offset", "round", "threshold"):
            if key in m.data:
                m.error(key, f"{quantity!r} is an {'on/off' if kind == BOOL else 'text'} quantity ({unit}); "
                        f"{key} applies only to numbers", f"remove {key}")
    written = _written(m.data.get("filters"))
    for key in ("scale", "offset", "round", "threshold"):
        if key in m.data and key in written:
            m.error(key, f"is given both as a key and as the {ordinal(written[key])} entry of filters",
                    f"keep one: remove {key} = ..., or the {{ {key} = ... }} entry")
    if heartbeat is not None and heartbeat is not BAD:
        if threshold is None:
            inside = "threshold" in written
            m.error("heartbeat", "only applies together with a threshold",
                    'write it inside the threshold entry: { threshold = 0.5, heartbeat = "5m" }' if inside
                    else "add threshold = ... (push only on change) or remove heartbeat")
        else:
            _check_heartbeat(m, "heartbeat", heartbeat, interval)
    values = (scale, offset, digits, threshold, heartbeat, filters)
    if any(v is BAD for v in values):
        return ValueSettings()
    return ValueSettings(scale, offset, digits, threshold, heartbeat, filters or ())


def _written(entries: Any) -> dict[str, int]:
    """filter name -> the position (from 1) of its first entry in the raw ``filters`` list."""
    found: dict[str, int] = {}
    if isinstance(entries, list):
        for index, entry in enumerate(entries, start=1):
            if isinstance(entry, dict):
                for key in entry:
                    if key in FILTERS:
                        found.setdefault(key, index)
    return found


def _check_heartbeat(t: Table, key: str, heartbeat: float, interval: Any) -> None:
    if interval is not BAD and heartbeat < interval:
        t.error(key, f"{heartbeat:g} s is shorter than the sensor's interval ({interval:g} s), "
                "so every reading would be pushed anyway",
                f"set heartbeat to at least {interval:g} s, or remove threshold and heartbeat")


def _read_list(m: Table, quantity: str, kind: str, interval: Any) -> tuple[Filter, ...] | Any:
    entries = m.raw("filters")
    if entries is MISSING:
        return ()
    example = 'filters = [{ median = 5 }, { valid = [-40, 85] }]'
    if not isinstance(entries, list):
        m.error("filters", f"must be a list of filter tables, not {type_name(entries)}", f"write e.g. {example}")
        return BAD
    result: list[Filter] = []
    broken = False
    for index, entry in enumerate(entries, start=1):
        f = _read_entry(m, index, entry, quantity, kind, interval)
        if f is None:
            broken = True
        else:
            result.append(f)
    return BAD if broken else tuple(result)


def _read_entry(m: Table, index: int, entry: Any, quantity: str, kind: str, interval: Any) -> Filter | None:
    place = f"filters[{index}]"
    if not isinstance(entry, dict) or not entry:
        what = "an empty table" if entry == {} else type_name(entry)
        m.error(place, f"the {ordinal(index)} filter must be a table such as {{ median = 5 }}, not {what}",
                f"write each filter as {{ <name> = <setting> }}; names: {', '.join(FILTERS)}")
        return None
    named = [key for key in entry if key in FILTERS]
    if len(named) != 1:
        if named:
            problem = f"names {len(named)} filters ({', '.join(named)}); each entry holds one"
            fix = "split it: " + ", ".join(f"{{ {k} = ... }}" for k in named)
        else:
            first = next(iter(entry))
            problem = f"names no filter ({', '.join(map(repr, entry))})"
            fix = f"{did_you_mean(first, list(FILTERS))}use one of: {', '.join(FILTERS)}"
        m.error(place, f"the {ordinal(index)} filter {problem}", fix)
        return None
    cls = FILTERS[named[0]]
    t = Table(entry, m.errors, m.file, sensor=m.sensor, sensor_label=m.sensor_label, prefix=f"{m.prefix}{place}.",
              index=m.index)
    if kind not in cls.kinds:
        accepted = " or ".join(sorted(_KIND_TEXT[k] for k in cls.kinds))
        t.error(cls.key, f"applies only to {accepted} values, and {quantity!r} is {_KIND_TEXT[kind]}",
                f"remove the {ordinal(index)} filter")
        return None
    errors_before = len(m.errors)
    f = cls.from_table(t)
    t.unknown((cls.key,) + cls.extra_keys, f"the {cls.key} filter")
    if isinstance(f, Threshold) and not math.isinf(f.heartbeat) and "heartbeat" in entry:
        _check_heartbeat(t, "heartbeat", f.heartbeat, interval)
    if isinstance(f, Window) and f.seconds and interval is not BAD and f.seconds / interval > MAX_READINGS:
        t.error(cls.key, f"a {f.seconds:g} s window at the sensor's interval of {interval:g} s would hold "
                f"{f.seconds / interval:.0f} readings; at most {MAX_READINGS} are kept",
                f"shorten the window to {MAX_READINGS * interval:g} s or less, or read less often")
    if f is None or len(m.errors) > errors_before:
        return None
    return f
