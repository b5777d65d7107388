"""The Prometheus text exposition format (version 0.0.4), written by hand.

Why not ``prometheus_client``: importing it (with its registry, its metric
classes and the platform collectors it starts) costs a few MB of resident
memory, about as much as the whole budget for the page on a Pi Zero 2 W
(512 MB RAM shared with the agent), and it would keep a second copy of
figures the bridge already counts.  The format itself is a few lines of text
per metric; this module writes it from the bridge's own counters at scrape
time.  The tests read our output with ``prometheus_client``'s parser.

::

    out = Exposition()
    out.family("pibridge_readings_pushed_total", "counter", "Readings the agent acknowledged.")
    out.sample("pibridge_readings_pushed_total", 42)
    text = out.text()
"""

from __future__ import annotations

import math
import re

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

def escape_label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_value(value: float | int | bool) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class Exposition:
    """Collects metric families and their samples; :meth:`text` writes them out in order."""

    def __init__(self) -> None:
        self._families: dict[str, tuple[str, str, list[str]]] = {}

    def family(self, name: str, kind: str, help_text: str) -> None:
        """Declare a family once (``kind``: counter or gauge); samples follow with :meth:`sample`."""
        if not _NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a Prometheus metric name")
        if kind not in ("counter", "gauge"):
            raise ValueError(f"unknown metric type {kind!r}")
        if name not in self._families:
            self._families[name] = (kind, help_text, [])

    def sample(self, name: str, value: float | int | bool, labels: dict[str, str] | None = None) -> None:
        if name not in self._families:
            raise KeyError(f"declare the family {name!r} first")
        text = name
        if labels:
            for label in labels:
                if not _LABEL.fullmatch(label) or label.startswith("__"):
                    raise ValueError(f"{label!r} is not a Prometheus label name")
            text += "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items()) + "}"
        self._families[name][2].append(f"{text} {format_value(value)}")

    def text(self) -> str:
        lines = []
        for name, (kind, help_text, samples) in self._families.items():
            help_line = help_text.replace("\\", "\\\\").replace("\n", "\\n")
            lines.append(f"# HELP {name} {help_line}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(samples)
        return "\n".join(lines) + "\n"
