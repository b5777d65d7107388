"""Which agent sensor and metric IDs belong to which configured sensor.

The agent hands out a random ID for every sensor and metric it creates; the
bridge must reuse them, or every restart would add a fresh copy of each
sensor.  :class:`Registry` remembers them in a small JSON file in the storage
directory, keyed by the names in the config (sensor name, then quantity), and
tagged with the client ID they belong to: a new identity (re-provisioning)
starts from an empty registry, because IDs are only unique within one client.

The file is rewritten atomically (write a temporary file, fsync, rename) and
only when an ID changes, which is rare: at first start and when the config
changes.

Threading: one thread at a time (the daemon's control thread).  The
delivery thread reads :meth:`routes` snapshots, never the live object.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

FILE_NAME = "registry.json"


class RegistryError(Exception):
    """The registry file exists but cannot be read.  The message names the file and the fix."""


@dataclass
class MetricEntry:
    """One metric the agent knows: its ID and the name it was given."""

    metric_id: str
    name: str


@dataclass
class SensorEntry:
    """One agent sensor: its ID and its metrics by quantity."""

    sensor_id: str
    metrics: dict[str, MetricEntry] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """Where the readings of one configured sensor go: its sensor ID and metric ID per quantity."""

    sensor_id: str
    metric_ids: dict[str, str]


class Registry:
    """IDs per configured name, persisted in ``<storage dir>/registry.json``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.client_id: str | None = None
        self.sensors: dict[str, SensorEntry] = {}
        self._load()

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise RegistryError(f"cannot read the ID registry {self.path}: {exc.strerror}; check its permissions") from None
        try:
            data = json.loads(text)
            self.client_id = data.get("client_id")
            for name, sensor in data.get("sensors", {}).items():
                metrics = {
                    quantity: MetricEntry(str(m["metric_id"]), str(m["name"]))
                    for quantity, m in sensor.get("metrics", {}).items()
                }
                self.sensors[name] = SensorEntry(str(sensor["sensor_id"]), metrics)
        except (ValueError, AttributeError, KeyError, TypeError) as exc:
            raise RegistryError(
                f"the ID registry {self.path} is damaged ({exc.__class__.__name__}: {exc}); "
                "delete it and restart: the bridge finds its sensors on the agent again by name"
            ) from None

    def bind(self, client_id: str) -> bool:
        """Use the IDs of *client_id*; forget everything if they belonged to another client.

        Returns True when the registry was cleared.
        """
        if self.client_id == client_id:
            return False
        cleared = bool(self.sensors) or self.client_id is not None
        self.client_id = client_id
        self.sensors = {}
        self.save()
        return cleared

    def sensor(self, name: str) -> SensorEntry | None:
        return self.sensors.get(name)

    def set_sensor(self, name: str, sensor_id: str) -> SensorEntry:
        """Record that config sensor *name* is agent sensor *sensor_id* (metrics are kept if the ID is the same)."""
        entry = self.sensors.get(name)
        if entry is None or entry.sensor_id != sensor_id:
            entry = SensorEntry(sensor_id)
            self.sensors[name] = entry
        return entry

    def routes(self) -> dict[str, Route]:
        """A snapshot for the delivery thread: config sensor name -> :class:`Route`."""
        return {
            name: Route(s.sensor_id, {q: m.metric_id for q, m in s.metrics.items()})
            for name, s in self.sensors.items()
        }

    def save(self) -> None:
        """Write the registry atomically: a crash leaves the old file or the new one, never half of one."""
        data = {
            "client_id": self.client_id,
            "sensors": {
                name: {
                    "sensor_id": s.sensor_id,
                    "metrics": {q: {"metric_id": m.metric_id, "name": m.name} for q, m in s.metrics.items()},
                }
                for name, s in sorted(self.sensors.items())
            },
        }
        write_atomically(self.path, json.dumps(data, indent=2, ensure_ascii=False) + "\n", durable=True)


def write_atomically(path: Path, text: str, *, durable: bool) -> None:
    """Replace *path* by *text* so readers see the old or the new content, never a mix.

    With *durable* the data is fsynced before the rename and the directory
    after it, so it survives a power cut; without, only the rename's atomicity
    is relied upon (for files rewritten often, to spare the SD card).
    """
    if not path.parent.is_dir():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)  # mkdir's mode is masked by the umask
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # 0600 whatever the umask: the file names this bridge's sensors and client.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
