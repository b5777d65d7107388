"""Driver state that must survive a restart (a rain gauge's pulse total), kept in the storage directory.

One file, ``counters.json``, maps each sensor's name to what its driver's
``state()`` returned.  The bridge, not the driver, owns the file: a driver
only hands its state over and takes it back (``Driver.state()``,
``Driver.restore()``).

When it is written: after a reading of the sensor is pushed and the state
differs from what the file already holds, and once more when the sensor
stops -- never per pulse, at most once per push, so an SD card sees at most
one small write per interval of each counting sensor, and none while
nothing is counted.  How: a temporary file, fsync, rename over the old one,
fsync of the directory, mode 0600 -- after a power cut the file holds the
old state or the new one, never a mix.

What a power cut or ``kill -9`` can lose: the pulses counted after the last
write (at most one interval's worth); the count restored is never below the
last one pushed, because the state is written before its reading is handed
to delivery.  A clean stop (SIGTERM, ``systemctl restart``) writes the state
at stop, so only pulses while no daemon runs go uncounted.

Threading: the read pool's workers call :meth:`CounterStore.save`, each for
the sensor it reads; a lock keeps the writes of several counting sensors apart.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("pibridge.counters")

FILE_NAME = "counters.json"


class CounterStore:
    """The saved driver states of every sensor, in *path* (``<storage>/counters.json``)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._states: dict[str, Any] = self._load()
        self._on_disk: dict[str, Any] = dict(self._states)
        self.writes = 0

    def restored(self, sensor: str) -> dict[str, Any] | None:
        """What was saved for *sensor*, or None."""
        state = self._states.get(sensor)
        return state if isinstance(state, dict) else None

    def save(self, sensor: str, state: dict[str, Any] | None) -> None:
        """Keep *state* for *sensor*, writing the file only when it changed.  Never raises."""
        if state is None:
            return
        with self._lock:
            if self._on_disk.get(sensor) == state:
                return
            self._states[sensor] = state
            try:
                _write_private(self.path, json.dumps(self._states, sort_keys=True))
            except (OSError, TypeError, ValueError) as exc:
                log.warning("cannot save the state of sensor %r to %s: %s; tried again after the next push",
                            sensor, self.path, exc)
                return
            self._on_disk = dict(self._states)
            self.writes += 1

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("cannot read %s (%s): counters start from 0; the file is replaced at the next push",
                      self.path, exc)
            return {}
        if not isinstance(data, dict):
            log.error("%s does not hold a table of sensors: counters start from 0", self.path)
            return {}
        return data


def _write_private(path: Path, text: str) -> None:
    """Replace *path* by *text* atomically and durably, readable only by its owner."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
