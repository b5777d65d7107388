"""The ``[http]`` section of the config file: whether and where the daemon serves its page.

::

    [http]
    listen = "127.0.0.1:8088"    # the default once the section is there
    history = "1h"               # how far back the page's charts reach
    history_points = 360         # points per metric (10 s apart over an hour)
    max_connections = 4          # more at once are answered 503 at once

No ``[http]`` section: no server, no open port.  ``listen`` on an address other
than loopback (``"0.0.0.0:8088"``) shows sensor values, client ID and outbox
figures to everyone on the network; docs/web.md says what exactly.

This module knows nothing of the rest of the config: :func:`parse_http` reads
one table through the small interface of ``pibridge.bridge.config``'s table
reader (``raw``, ``error``, ``unknown``), so problems are reported with the
file, the key and a fix like every other key.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

DEFAULT_LISTEN = "127.0.0.1:8088"
KEYS = ("enabled", "listen", "history", "history_points", "max_connections")

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*", re.IGNORECASE)
_SECONDS = {None: 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class HttpSettings:
    """Where the page listens and how much history it keeps (all in memory, never on disk)."""

    host: str = "127.0.0.1"
    port: int = 8088
    history_seconds: float = 3600.0
    history_points: int = 360
    max_connections: int = 4

    @property
    def loopback_only(self) -> bool:
        """True when only programs on this machine (or an SSH tunnel) can reach the page."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_listen(value: Any) -> tuple[str, int]:
    """``"host:port"`` (``"[::1]:8088"`` for IPv6) as (host, port); ValueError with the reason."""
    if not isinstance(value, str):
        raise ValueError(f"must be a string like {DEFAULT_LISTEN!r}, not {type(value).__name__}")
    text = value.strip()
    match = re.fullmatch(r"\[([^\]]+)\]:(\d+)|([^:\s\[\]/]+):(\d+)", text)
    if not match:
        raise ValueError(f"{value!r} is not host:port (e.g. {DEFAULT_LISTEN!r}, or \"[::1]:8088\" for IPv6)")
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if match.group(1):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} in brackets is not an IPv6 address") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is outside 1-65535 (or 0 for any free port)")
    return host, port


def _duration(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f'must be a duration like "1h" or "30min", not {type(value).__name__}')
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.fullmatch(value)
        if not match:
            raise ValueError(f'{value!r} is not a duration (write e.g. "1h", "30min" or "600s")')
        seconds = float(match.group(1)) * _SECONDS[match.group(2) and match.group(2).lower()]
    if not 60 <= seconds <= 86400:
        raise ValueError(f"must be between 1 minute and 24 hours, not {seconds:g} s")
    return seconds


def _whole(low: int, high: int):
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be a whole number, not {type(value).__name__} ({value!r})")
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, not {value}")
        return value

    return check


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {type(value).__name__} ({value!r})")
    return value


def parse_http(table: Any, present: bool) -> HttpSettings | None:
    """The ``[http]`` settings, or None when the page is off (no section, or ``enabled = false``).

    *table* is the config reader's table for ``[http]``; every problem goes to
    ``table.error(key, message, fix)`` and None is returned.  Reads ``table.data``
    (the raw dict), ``table.raw(key)`` (marks a key as known) and ``table.unknown``.
    """
    d = HttpSettings()
    fixes = {
        "enabled": "enabled = true (or remove the whole [http] section to turn the page off)",
        "listen": f'listen = "{DEFAULT_LISTEN}" (only this machine) or "0.0.0.0:8088" (the whole network)',
        "history": 'history = "1h"',
        "history_points": "history_points = 360 (between 10 and 10000)",
        "max_connections": "max_connections = 4 (between 1 and 64)",
    }
    converters = {
        "enabled": _boolean,
        "listen": parse_listen,
        "history": _duration,
        "history_points": _whole(10, 10000),
        "max_connections": _whole(1, 64),
    }
    values: dict[str, Any] = {}
    failed = False
    for key in KEYS:
        if key not in table.data:
            continue
        try:
            values[key] = converters[key](table.raw(key))
        except ValueError as exc:
            table.error(key, str(exc), fixes[key])
            failed = True
    table.unknown(list(KEYS), "[http]")
    if failed or not present or not values.get("enabled", True):
        return None
    host, port = values.get("listen", (d.host, d.port))
    return HttpSettings(
        host=host,
        port=port,
        history_seconds=values.get("history", d.history_seconds),
        history_points=values.get("history_points", d.history_points),
        max_connections=values.get("max_connections", d.max_connections),
    )
