"""Which line of a TOML file a key sits on, so a config problem can say ``config.toml:14``.

``tomllib`` keeps no positions, so the text is walked once the way TOML
assigns keys to tables: ``[table]`` and ``[[array]]`` headers set the
current table, ``a.b = ...`` adds dotted keys below it.  That is all a
config key needs; a key inside a multi-line string or an inline table is
found at the line of the key that holds it.
"""

from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")
_PART = re.compile(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""")


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(p[1:-1] if p[0] in "\"'" else p for p in _PART.findall(dotted))


class KeyLines:
    """Line numbers (1-based) of the keys and tables of one TOML text."""

    def __init__(self, text: str):
        #: (sensor number or 0 outside [[sensors]], path) -> first line
        self._lines: dict[tuple[int, tuple[str, ...]], int] = {}
        sensor = 0
        table: tuple[str, ...] = ()
        in_string = False
        for number, line in enumerate(text.splitlines(), start=1):
            if line.count('"""') % 2 or line.count("'''") % 2:
                in_string = not in_string
                if not in_string:
                    continue
            elif in_string:
                continue
            header = _HEADER.match(line)
            if header:
                table = _parts(header.group(2))
                if header.group(1) == "[[" and table == ("sensors",):
                    sensor += 1
                self._note(sensor if table[:1] == ("sensors",) else 0, table, number)
                continue
            key = _KEY.match(line)
            if key:
                path = table + _parts(key.group(1))
                self._note(sensor if path[:1] == ("sensors",) else 0, path, number)

    def _note(self, sensor: int, path: tuple[str, ...], number: int) -> None:
        for end in range(1, len(path) + 1):
            self._lines.setdefault((sensor, path[:end]), number)

    def line(self, key: str | None, sensor: int | None = None) -> int | None:
        """The line of *key* (``"agent.timeout"``; below ``[[sensors]]`` number *sensor*:
        ``"interval"``, ``"metric.temperature.offset"``), else of the nearest table holding it."""
        if sensor is not None:
            path = ("sensors", *(_parts(key) if key else ()))
            scope = sensor
        elif key:
            path, scope = _parts(key), 0
        else:
            return None
        while path:
            found = self._lines.get((scope, path))
            if found is not None:
                return found
            path = path[:-1]
        return None
