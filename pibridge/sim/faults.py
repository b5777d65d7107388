"""Switches that make the simulator misbehave on purpose, for tests and demos.

``silent``
    The agent stops answering: requests are read and dropped, nothing is
    stored, nothing is published (a hung agent).
``error_code``
    Every request is answered on its error topic with this code and the
    reference's description of it, and nothing is applied (``None`` = off).
``ignored``
    Requests of these kinds (``"update_metrics"``, ``"list_sensors"``, ...:
    the names :func:`pibridge.sim.agent.parse_topic` gives them) are read and
    dropped, the others served: an agent that does not answer one request.

Dropping the broker itself is :meth:`pibridge.sim.Simulator.drop_api_listener`.

Threading: plain attributes, written by any thread and read by the request
worker once per request; a single attribute read or write is atomic in
CPython, and a request sees either the old or the new setting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pibridge.agent.errors import ErrorCode


@dataclass
class Faults:
    silent: bool = False
    error_code: ErrorCode | None = None
    ignored: frozenset[str] = field(default_factory=frozenset)

    def set_error_code(self, code: int | None) -> None:
        """Set ``error_code`` from a number, checking it is one of the reference's codes (1-28)."""
        self.error_code = None if code is None else ErrorCode(int(code))

    def describe(self) -> str:
        parts = []
        if self.silent:
            parts.append("silent")
        if self.error_code is not None:
            parts.append(f"answering every request with error {int(self.error_code)} ({self.error_code.name})")
        if self.ignored:
            parts.append(f"not answering {', '.join(sorted(self.ignored))}")
        return ", ".join(parts) or "none"


class FaultFile:
    """``faults.json`` in the state directory: how ``pibridge sim fault ...`` reaches a running simulator.

    The running simulator polls the file's modification time twice a
    second and applies what it finds; a one-shot ``drop_api_seconds`` entry
    is consumed (removed) once it has been acted on.
    """

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / "faults.json"

    def read(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise ValueError(f"{self.path} is not valid JSON ({exc}); delete it or run `pibridge sim fault clear`")
        if not isinstance(data, dict):
            raise ValueError(f"{self.path} must hold a JSON object; delete it or run `pibridge sim fault clear`")
        return data

    def update(self, **changes) -> dict:
        data = self.read()
        for key, value in changes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        tmp.replace(self.path)
        return data

    def mtime(self) -> float | None:
        try:
            return self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
