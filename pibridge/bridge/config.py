"""The pibridge config file: one TOML file, checked completely before anything starts.

Where it is: ``--config PATH``, else ``$PIBRIDGE_CONFIG``, else
``/etc/pibridge/config.toml`` (see :func:`config_path`).  What it holds::

    [agent]                      # how to reach the TeamViewer IoT Agent
    host = "localhost"
    [storage]                    # identity, ID registry, outbox
    dir = "/var/lib/pibridge"
    [log]
    level = "info"

    [[sensors]]                  # one table per device
    name = "greenhouse"          # the agent sensor's name
    driver = "mock"              # which driver reads it
    interval = 5.0               # seconds between readings
    metrics = ["temperature", "humidity"]   # options of the driver itself

    [sensors.metric.temperature] # optional: per-quantity tweaks
    name = "air temperature"
    offset = -0.4

:func:`load_config` reads and validates everything at once: unknown keys,
wrong types, duplicate sensor names, intervals a device cannot honour, pins
or addresses used twice.  It raises one :class:`ConfigError` listing every
problem found, each naming the file, the sensor and the key, and how to fix
it.  docs/configuration.md describes every key.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pibridge.bridge.config_lines import KeyLines
from pibridge.bridge.config_sensors import (  # noqa: F401  (the sensor part of this module's API)
    METRIC_KEYS,
    NAME_MAX,
    SENSOR_KEYS,
    MetricConfig,
    SensorConfig,
    SensorsParser,
)
from pibridge.settings import (
    BAD,
    MISSING,
    ConfigError,
    Table,
    boolean,
    did_you_mean,
    duration_between,
    in_range,
    integer,
    num,
    parse_seconds,
    parse_size,
    show,
    string,
    type_name,
)
from pibridge.web.settings import HttpSettings, parse_http

DEFAULT_CONFIG_PATH = Path("/etc/pibridge/config.toml")
CONFIG_ENV = "PIBRIDGE_CONFIG"

#: Longest client name: the CSR CommonName, which X.509 limits to 64 characters.
CLIENT_NAME_MAX = 64
CLIENT_NAME_PATTERN = re.compile(r"[A-Za-z0-9.*\-,@'_]+")

#: A config file larger than this is surely the wrong file (and is not read into memory whole).
CONFIG_MAX_BYTES = 1024 * 1024

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

# Bounds of the numbers in [agent] and [storage] (docs/configuration.md lists them).  Each
# keeps a value inside what the code built on it can represent and the Pi can do; none is
# tight enough to get in the way of a sensible setting.
#: [agent] timeout: provisioning uses timeout + 5 s as its MQTT keep-alive, a 16-bit count of
#: seconds; an hour is far beyond any answer worth waiting for.
TIMEOUT_BOUNDS = (0.5, 3600.0)
#: [storage] ack_window: shorter than a round trip spills everything; longer than 5 min is
#: 5 min of readings held only in memory.
ACK_WINDOW_BOUNDS = (0.1, 300.0)
#: [storage] commit_interval and offline_commit_interval: the loss window after a kill -9
#: (while the agent is reachable, and while it is away).
COMMIT_INTERVAL_BOUNDS = (0.05, 3600.0)
#: [storage] outbox_max_age (or "never").
MAX_AGE_BOUNDS = (60.0, 3650 * 86400.0)
#: [storage] outbox_max_bytes: from a useful minimum to beyond any SD card.
MAX_BYTES_BOUNDS = (1024**2, 1024**4)


@dataclass(frozen=True)
class AgentConfig:
    """How to reach the TeamViewer IoT Agent."""

    host: str = "localhost"
    provision_port: int = 18883
    api_port: int = 18884
    ca_file: Path = Path("/var/lib/teamviewer-iot-agent/certs/TeamViewerAuthority.crt")
    client_name: str = "pibridge"
    timeout: float = 10.0
    reprovision: bool = False


@dataclass(frozen=True)
class StorageConfig:
    """Where pibridge keeps its identity, its ID registry and its outbox, and the outbox limits.

    ``outbox_max_age`` is None when buffered readings never expire.
    """

    dir: Path = Path("/var/lib/pibridge")
    outbox_max_bytes: int = 64 * 1024 * 1024
    outbox_max_age: float | None = 7 * 86400.0
    ack_window: float = 2.0
    commit_interval: float = 1.0
    offline_commit_interval: float = 15.0


@dataclass(frozen=True)
class Config:
    """The whole config file.  ``sensors`` holds disabled sensors too (``enabled`` is False)."""

    path: Path | None
    agent: AgentConfig
    storage: StorageConfig
    sensors: list[SensorConfig]
    log_level: str = "info"
    #: The local web page (``[http]``, see :mod:`pibridge.web.settings`); None when it is off.
    http: HttpSettings | None = None

    @property
    def enabled_sensors(self) -> list[SensorConfig]:
        return [s for s in self.sensors if s.enabled]


def config_path(explicit: str | Path | None = None) -> Path:
    """The config file to use: *explicit* (``--config``), else ``$PIBRIDGE_CONFIG``, else the default."""
    if explicit is not None and str(explicit) != "":
        return Path(explicit).expanduser()
    from_env = os.environ.get(CONFIG_ENV, "")
    if from_env:
        return Path(from_env).expanduser()
    return DEFAULT_CONFIG_PATH


def load_config(path: str | Path) -> Config:
    """Read and validate the config file at *path*; raise :class:`ConfigError` if anything is wrong."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(CONFIG_MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(
            "the config file does not exist",
            file=path,
            fix=(
                f"run install.sh, or copy the starter config from the pibridge sources: "
                f"sudo install -D -m 640 examples/config.toml {path} "
                f"(or point --config or ${CONFIG_ENV} at your file)"
            ),
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            "this is a directory, not a config file", file=path, fix=f"give the file itself, e.g. {path / 'config.toml'}"
        ) from None
    except PermissionError:
        raise ConfigError(
            "permission denied while reading the config file",
            file=path,
            fix="run as a user that may read it (e.g. with sudo) or make it readable: sudo chmod 644 " + str(path),
        ) from None
    except OSError as e:
        raise ConfigError(f"cannot read the config file: {e.strerror or e}", file=path, fix="check the path") from None
    if len(data) > CONFIG_MAX_BYTES:
        raise ConfigError(
            f"is larger than {CONFIG_MAX_BYTES // 1024} KiB, which no config file needs",
            file=path,
            fix="check that --config or $PIBRIDGE_CONFIG names the config file and not another file",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"the file is not UTF-8 text (bad byte at offset {e.start})",
            file=path,
            fix="save it as UTF-8 (TOML files must be UTF-8)",
        ) from None
    return parse_config(text, path)


def parse_config(text: str, path: Path | None = None) -> Config:
    """Validate the TOML document *text* (read from *path*, used in messages and for relative paths)."""
    path = Path(path) if path is not None else None
    if not isinstance(text, str):
        raise ConfigError("the config must be TOML text", file=path, fix="pass the file's text, not bytes")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        twice = _duplicate_key(text, str(e))
        if twice is not None:
            key, line, first = twice
            where = f" (first at line {first})" if first else ""
            raise ConfigError(
                f"is given twice: again at line {line}{where}",
                file=path,
                key=key,
                fix="keep one of them; TOML does not allow a key (or a [table]) twice in the same table",
            ) from None
        raise ConfigError(
            f"not valid TOML: {e}",
            file=path,
            fix="correct the syntax at that line (strings need quotes, tables need [brackets], "
            "each sensor starts with [[sensors]])",
        ) from None
    except (ValueError, RecursionError) as e:
        raise ConfigError(f"not valid TOML: {e}", file=path, fix="correct the TOML syntax") from None
    try:
        return _Parser(path).parse(document)
    except ConfigError as e:
        raise _with_lines(e, text) from None


def _with_lines(error: ConfigError, text: str) -> ConfigError:
    """*error* again, each problem with the line of the key it is about."""
    lines = KeyLines(text)
    for problem in error.errors:
        problem.line = lines.line(problem.key, problem.sensor_index)
    first = error.errors[0]
    return ConfigError(first.message, file=first.file, sensor=first.sensor, key=first.key, fix=first.fix,
                       errors=error.errors, sensor_label=first._sensor_label, line=first.line,
                       sensor_index=first.sensor_index)


_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)")
_TOML_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_TOML_KEY = re.compile(r"^\s*([A-Za-z0-9_.\-\"' ]+?)\s*=")


def _duplicate_key(text: str, error: str) -> tuple[str, int, int | None] | None:
    """For tomllib's "Cannot overwrite a value" / "Cannot declare ... twice": the dotted key,
    the line of the repeat, and the line it was first given at (None if not found)."""
    position = _TOML_POSITION.search(error)
    if position is None or not ("Cannot overwrite" in error or "twice" in error):
        return None
    number = int(position.group(1))
    lines = text.splitlines()
    if not 1 <= number <= len(lines):
        return None

    def key_at(index: int) -> tuple[str, str] | None:
        """(table, key) of the line at *index*, or ("", table) for a table header."""
        header = _TOML_TABLE.match(lines[index])
        if header:
            return "", header.group(1).strip()
        match = _TOML_KEY.match(lines[index])
        if not match:
            return None
        table = ""
        for above in range(index - 1, -1, -1):
            found = _TOML_TABLE.match(lines[above])
            if found:
                table = found.group(1).strip()
                break
        return table, match.group(1).strip().strip("\"'")

    here = key_at(number - 1)
    if here is None:
        return None
    dotted = ".".join(p for p in here if p)
    # A key repeats within its own table: look from that table's header on (an array of
    # tables such as [[sensors]] has the same key once per element).
    start = 0
    if here[0]:
        start = next((i for i in range(number - 2, -1, -1) if _TOML_TABLE.match(lines[i])), 0)
    first = next((i + 1 for i in range(start, number - 1) if key_at(i) == here), None)
    return dotted, number, first


# --- parsing ------------------------------------------------------------------------------


def _host(value: Any) -> str:
    value = string(value)
    if not value:
        raise ValueError("must not be empty")
    if "://" in value or "/" in value:
        raise ValueError(f"must be a host name or address only, not a URL ({show(value)})")
    if any(c.isspace() for c in value) or not value.isprintable():
        raise ValueError(f"must not contain spaces or control characters ({show(value)})")
    if value.rsplit(":", 1)[-1].isdigit() and value.count(":") == 1:
        raise ValueError(f"must not contain the port ({show(value)}); the ports have their own keys")
    return value


def _client_name(value: Any) -> str:
    value = string(value)
    if not value:
        raise ValueError("must not be empty")
    if len(value) > CLIENT_NAME_MAX:
        raise ValueError(f"is {len(value)} characters long; at most {CLIENT_NAME_MAX} are allowed")
    if not CLIENT_NAME_PATTERN.fullmatch(value):
        raise ValueError(
            f"{show(value)} has characters the agent does not accept in a client name; "
            "allowed are letters, digits and . * - , @ ' _"
        )
    return value


def _log_level(value: Any) -> str:
    value = string(value).strip().lower()
    if value not in LOG_LEVELS:
        raise ValueError(f"{show(value)} is not a log level; use one of: {', '.join(LOG_LEVELS)}")
    return value


def _max_age(value: Any) -> float | None:
    if isinstance(value, str) and value.strip().lower() == "never":
        return None
    return parse_seconds(value)


class _Parser:
    def __init__(self, file: Path | None):
        self.file = file
        self.errors: list[ConfigError] = []

    def _path(self, text: str) -> Path:
        try:
            path = Path(text).expanduser()
        except RuntimeError:
            raise ValueError(
                f"{text.split('/')[0]!r} names no user with a home directory; write the full path"
            ) from None
        if not path.is_absolute() and self.file is not None:
            path = self.file.parent / path
        return path

    def _path_value(self, value: Any) -> Path:
        text = string(value)
        if not text.strip():
            raise ValueError("must not be empty")
        if "\x00" in text:
            raise ValueError("must not contain a NUL character")
        return self._path(text)

    def _section(self, document: dict, name: str) -> Table:
        value = document.get(name, {})
        if not isinstance(value, dict):
            self.errors.append(
                ConfigError(
                    f"must be a table, not {type_name(value)}",
                    file=self.file,
                    key=name,
                    fix=f"write it as a section: a line [{name}] followed by its keys",
                )
            )
            value = {}
        return Table(value, self.errors, self.file, prefix=f"{name}.")

    def parse(self, document: dict) -> Config:
        for key in document:
            if key not in ("agent", "storage", "log", "http", "sensors"):
                self.errors.append(
                    ConfigError(
                        "unknown top-level key or section",
                        file=self.file,
                        key=key,
                        fix=f"{did_you_mean(key, ['agent', 'storage', 'log', 'http', 'sensors'])}"
                        "the sections are [agent], [storage], [log], [http] and [[sensors]]; "
                        "sensor keys go below a [[sensors]] line",
                    )
                )
        agent = self._agent(self._section(document, "agent"))
        storage = self._storage(self._section(document, "storage"))
        log = self._section(document, "log")
        level = log.get("level", _log_level, "info", fix='level = "info" (or debug, warning, error)')
        log.unknown(["level"], "[log]")
        http = parse_http(self._section(document, "http"), present="http" in document)
        sensors = SensorsParser(self.file, self.errors).parse(document.get("sensors", MISSING))
        if self.errors:
            first = self.errors[0]
            raise ConfigError(
                first.message,
                file=first.file,
                sensor=first.sensor,
                key=first.key,
                fix=first.fix,
                errors=self.errors,
                sensor_label=first._sensor_label,
            )
        return Config(path=self.file, agent=agent, storage=storage, sensors=sensors, log_level=level, http=http)

    def _agent(self, t: Table) -> AgentConfig:
        d = AgentConfig()
        port = in_range(1, 65535)
        values = dict(
            host=t.get("host", _host, d.host, fix='host = "localhost"'),
            provision_port=t.get("provision_port", integer, d.provision_port, fix="provision_port = 18883", check=port),
            api_port=t.get("api_port", integer, d.api_port, fix="api_port = 18884", check=port),
            ca_file=t.get("ca_file", self._path_value, d.ca_file, fix=f'ca_file = "{d.ca_file}"'),
            client_name=t.get("client_name", _client_name, d.client_name, fix='client_name = "pibridge"'),
            timeout=t.get(
                "timeout", parse_seconds, d.timeout, fix="timeout = 10.0", check=duration_between(*TIMEOUT_BOUNDS)
            ),
            reprovision=t.get("reprovision", boolean, d.reprovision, fix="reprovision = false"),
        )
        t.unknown(list(values), "[agent]")
        if values["api_port"] is not BAD and values["api_port"] == values["provision_port"]:
            t.error(
                "api_port",
                f"is the same as provision_port ({values['api_port']})",
                "the agent listens on two ports: provision_port = 18883 and api_port = 18884",
            )
        if any(v is BAD for v in values.values()):
            return d
        return AgentConfig(**values)

    def _storage(self, t: Table) -> StorageConfig:
        d = StorageConfig()
        values = dict(
            dir=t.get("dir", self._path_value, d.dir, fix=f'dir = "{d.dir}"'),
            outbox_max_bytes=t.get(
                "outbox_max_bytes",
                parse_size,
                d.outbox_max_bytes,
                fix='outbox_max_bytes = "64 MiB"',
                check=lambda v: None
                if MAX_BYTES_BOUNDS[0] <= v <= MAX_BYTES_BOUNDS[1]
                else f"must be between 1 MiB and 1 TiB, not {num(v)} bytes",
            ),
            outbox_max_age=t.get(
                "outbox_max_age",
                _max_age,
                d.outbox_max_age,
                fix='outbox_max_age = "7d" (or "never")',
                check=lambda v: None if v is None else duration_between(*MAX_AGE_BOUNDS)(v),
            ),
            ack_window=t.get(
                "ack_window", parse_seconds, d.ack_window, fix="ack_window = 2.0",
                check=duration_between(*ACK_WINDOW_BOUNDS),
            ),
            commit_interval=t.get(
                "commit_interval", parse_seconds, d.commit_interval, fix="commit_interval = 1.0",
                check=duration_between(*COMMIT_INTERVAL_BOUNDS),
            ),
            offline_commit_interval=t.get(
                "offline_commit_interval", parse_seconds, d.offline_commit_interval,
                fix="offline_commit_interval = 15.0", check=duration_between(*COMMIT_INTERVAL_BOUNDS),
            ),
        )
        t.unknown(list(values), "[storage]")
        if any(v is BAD for v in values.values()):
            return d
        return StorageConfig(**values)
