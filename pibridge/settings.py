"""Reading one table of a settings file: typed values, with every problem named precisely.

The config loader and every module that owns a section of the config (a
filter, the HTTP page) read their keys through :class:`Table`, which records
each problem as a :class:`ConfigError` naming the file, the sensor and the
key, and how to fix it, instead of stopping at the first.  Nothing here knows
what the sections mean.
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Any, Callable

class ConfigError(Exception):
    """Something in the config is wrong.

    ``file``, ``line``, ``sensor`` and ``key`` say where (any may be None),
    ``message`` what, ``fix`` how to put it right.  ``str(e)`` reads
    ``"<file>: sensor 'x': key 'y': message. Fix: ..."``.  When the loader
    finds several problems it raises one ConfigError whose ``errors`` lists
    all of them (the error itself describes the first); ``str(e)`` then has
    one line per problem.
    """

    def __init__(
        self,
        message: str,
        *,
        file: Path | None = None,
        sensor: str | None = None,
        key: str | None = None,
        fix: str | None = None,
        errors: list["ConfigError"] | None = None,
        sensor_label: str | None = None,
        line: int | None = None,
        sensor_index: int | None = None,
    ):
        self.message = message.rstrip(". ")
        self.file = file
        self.line = line
        #: which [[sensors]] table (1-based) the problem is in, to find its line
        self.sensor_index = sensor_index
        self.sensor = sensor
        self.key = key
        self.fix = fix
        self._sensor_label = sensor_label
        self.errors: list[ConfigError] = list(errors) if errors else [self]
        super().__init__(str(self))

    def describe(self) -> str:
        """This one problem on one line (``str()`` lists all of ``errors``)."""
        parts = []
        if self.file is not None:
            parts.append(str(self.file) if self.line is None else f"{self.file}:{self.line}")
        elif self.line is not None:
            parts.append(f"line {self.line}")
        if self._sensor_label is not None:
            parts.append(f"sensor {self._sensor_label}")
        elif self.sensor is not None:
            parts.append(f"sensor {self.sensor!r}")
        if self.key is not None:
            parts.append(f"key {self.key!r}")
        text = ": ".join(parts + [self.message])
        if self.fix:
            text += f". Fix: {self.fix.rstrip('.')}"
        return text

    def __str__(self) -> str:
        return "\n".join(e.describe() for e in self.errors)



MISSING = object()
BAD = object()  # a value that failed its check; dependent checks are skipped

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|sec|min|s|m|h|d|w)\s*", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3, "tb": 1000**4, "tib": 1024**4,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*", re.IGNORECASE)


def type_name(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def parse_seconds(value: Any) -> float:
    """Seconds from a number or a duration text such as ``"90s"``, ``"15m"``, ``"7d"`` or ``"1h30m"``."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number of seconds or a duration like \"30s\", not {type_name(value)}")
    if isinstance(value, (int, float)):
        try:
            seconds = float(value)
        except OverflowError:
            raise ValueError(f"is far too large ({show(value)})") from None
    elif isinstance(value, str):
        pos, seconds = 0, 0.0
        text = value.strip()
        if not text:
            raise ValueError('is empty; write seconds (e.g. 30) or a duration like "30s", "15m", "2h", "7d"')
        while pos < len(text):
            match = _DURATION_PART.match(text, pos)
            if not match:
                quotes = _quoted_number(value)
                if quotes:
                    raise ValueError(f"is a number written as text{quotes}, or give a unit (\"{text}s\")")
                raise ValueError(
                    f'{value!r} is not a duration; write seconds (e.g. 30) or e.g. "30s", "15m", "2h", "7d", "1h30m"'
                )
            seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
            pos = match.end()
    else:
        raise ValueError(f"must be a number of seconds or a duration like \"30s\", not {type_name(value)}")
    if not math.isfinite(seconds):
        raise ValueError(f"must be a finite number of seconds, not {show(value)}")
    return seconds


def parse_size(value: Any) -> int:
    """Bytes from an integer or a size text such as ``"64 MiB"`` or ``"500MB"``."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f'must be a number of bytes or a size like "64 MiB", not {type_name(value)}')
    if isinstance(value, int):
        return value
    match = _SIZE.fullmatch(value)
    if not match:
        raise ValueError(f'{value!r} is not a size; write bytes (e.g. 67108864) or e.g. "64 MiB", "500 MB", "1 GiB"')
    size = float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]
    if not math.isfinite(size):
        raise ValueError(f"is far too large ({show(value)})")
    return int(size)


class Table:
    """Reads the keys of one TOML table, recording each problem in *errors* instead of stopping."""

    def __init__(
        self,
        data: dict,
        errors: list[ConfigError],
        file: Path | None,
        *,
        sensor: str | None = None,
        sensor_label: str | None = None,
        prefix: str = "",
        index: int | None = None,
    ):
        self.data = data
        self.errors = errors
        self.file = file
        self.sensor = sensor
        self.sensor_label = sensor_label
        self.prefix = prefix
        self.index = index
        self.taken: set[str] = set()

    def error(self, key: str | None, message: str, fix: str | None = None) -> None:
        full_key = None if key is None else self.prefix + key
        self.errors.append(
            ConfigError(message, file=self.file, sensor=self.sensor, key=full_key, fix=fix,
                        sensor_label=self.sensor_label, sensor_index=self.index)
        )

    def raw(self, key: str) -> Any:
        self.taken.add(key)
        return self.data.get(key, MISSING)

    def get(
        self,
        key: str,
        convert: Callable[[Any], Any],
        default: Any = MISSING,
        *,
        fix: str,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        """The value of *key* after *convert* (which raises ValueError with a message) and *check*
        (which returns a problem or None); *default* when absent, BAD after an error."""
        value = self.raw(key)
        if value is MISSING:
            if default is MISSING:
                self.error(key, "is missing", f"add it, e.g. {fix}")
                return BAD
            return default
        try:
            result = convert(value)
        except ValueError as e:
            self.error(key, str(e), fix)
            return BAD
        if check is not None:
            problem = check(result)
            if problem:
                self.error(key, problem, fix)
                return BAD
        return result

    def unknown(self, known: tuple[str, ...] | list[str], what: str) -> None:
        """Report every key not read so far."""
        for key in self.data:
            if key not in self.taken:
                self.error(
                    key,
                    f"unknown key in {what}",
                    f"{did_you_mean(key, list(known))}remove it or use one of: {', '.join(known)}",
                )


def string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {type_name(value)} ({show(value)})")
    return value


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {type_name(value)} ({show(value)})")
    return value


def _quoted_number(value: Any) -> str:
    """", remove the quotes" when *value* is a number written as a string (``"4"``, ``"0x76"``)."""
    if isinstance(value, str):
        for parse in (lambda t: int(t, 0), float):
            try:
                parse(value.strip())
            except ValueError:
                continue
            return f": remove the quotes ({value.strip()} instead of {value!r})"
    return ""


def integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be an integer, not {type_name(value)} ({show(value)}){_quoted_number(value)}")
    return value


def number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number, not {type_name(value)} ({show(value)}){_quoted_number(value)}")
    try:
        result = float(value)
    except OverflowError:
        raise ValueError(f"is too large ({show(value)})") from None
    if not math.isfinite(result):
        raise ValueError(f"must be a finite number, not {show(value)}")
    return result


def num(value: float) -> str:
    """A number for a message: floats short, integers of any size without overflow."""
    return f"{value:g}" if isinstance(value, float) else show(value)


def positive(v: float) -> str | None:
    return None if v > 0 else f"must be greater than 0, not {num(v)}"


def in_range(low: float, high: float) -> Callable[[float], str | None]:
    return lambda v: None if low <= v <= high else f"must be between {num(low)} and {num(high)}, not {num(v)}"


def duration_text(seconds: float) -> str:
    """A bound for a message: ``10 ms``, ``0.5 s``, ``1 h``, ``1 d``."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size and (seconds / size).is_integer():
            return f"{seconds / size:g} {unit}"
    if seconds < 1:
        return f"{seconds * 1000:g} ms"
    return f"{seconds:g} s"


def duration_between(low: float, high: float) -> Callable[[float], str | None]:
    """A check for a duration: at least *low* and at most *high* seconds."""

    def check(v: float) -> str | None:
        if v < low:
            return f"must be at least {duration_text(low)}, not {v:g} s"
        if v > high:
            return f"must be at most {duration_text(high)}, not {v:g} s"
        return None

    return check


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
