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

import difflib
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pibridge.drivers import Driver, OptionError, available, driver_class
from pibridge.readings import Quantity
from pibridge.units import ValueType
from pibridge.web.settings import HttpSettings, parse_http

DEFAULT_CONFIG_PATH = Path("/etc/pibridge/config.toml")
CONFIG_ENV = "PIBRIDGE_CONFIG"

#: Longest sensor or metric name accepted.  The agent takes free text for names given to
#: "create"; this keeps them readable in the TeamViewer web interface and in logs.
NAME_MAX = 64
#: Longest client name: the CSR CommonName, which X.509 limits to 64 characters.
CLIENT_NAME_MAX = 64
CLIENT_NAME_PATTERN = re.compile(r"[A-Za-z0-9.*\-,@'_]+")

#: A config file larger than this is surely the wrong file (and is not read into memory whole).
CONFIG_MAX_BYTES = 1024 * 1024

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

SENSOR_KEYS = ("name", "driver", "interval", "enabled", "offline_after", "metric")
METRIC_KEYS = ("name", "drop", "scale", "offset", "round", "threshold", "heartbeat")


class ConfigError(Exception):
    """Something in the config is wrong.

    ``file``, ``sensor`` and ``key`` say where (any may be None), ``message``
    what, ``fix`` how to put it right.  ``str(e)`` reads
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
    ):
        self.message = message.rstrip(". ")
        self.file = file
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
            parts.append(str(self.file))
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


@dataclass(frozen=True)
class MetricConfig:
    """What happens to one quantity of a sensor on its way to the agent.

    value = raw * scale + offset, in the quantity's canonical unit, then
    rounded to ``round`` digits; with a ``threshold`` it is pushed only when
    it moved at least that much since the last push, or ``heartbeat``
    seconds have passed.
    """

    quantity: str
    name: str
    drop: bool = False
    scale: float = 1.0
    offset: float = 0.0
    round: int | None = None
    threshold: float | None = None
    heartbeat: float | None = None


@dataclass(frozen=True)
class SensorConfig:
    """One ``[[sensors]]`` table, validated.

    ``options`` are the driver's own options as written in the file;
    ``metrics`` has one entry per quantity the driver reports (dropped ones
    included, marked ``drop``); ``quantities`` are those quantities in the
    driver's order.
    """

    name: str
    driver: str
    interval: float
    enabled: bool = True
    offline_after: int = 3
    options: dict = field(default_factory=dict)
    metrics: dict[str, MetricConfig] = field(default_factory=dict)
    quantities: tuple[Quantity, ...] = ()

    def create_driver(self) -> Driver:
        """A fresh driver for this sensor (no hardware touched until ``open()``)."""
        return driver_class(self.driver)(self.name, dict(self.options))


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
        raise ConfigError(
            f"not valid TOML: {e}",
            file=path,
            fix="correct the syntax at that line (strings need quotes, tables need [brackets], "
            "each sensor starts with [[sensors]])",
        ) from None
    except (ValueError, RecursionError) as e:
        raise ConfigError(f"not valid TOML: {e}", file=path, fix="correct the TOML syntax") from None
    return _Parser(path).parse(document)


# --- parsing ------------------------------------------------------------------------------

_MISSING = object()
_BAD = object()  # a value that failed its check; dependent checks are skipped

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|sec|min|s|m|h|d|w)\s*", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3, "tb": 1000**4, "tib": 1024**4,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*", re.IGNORECASE)


def _type_name(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def name_problem(name: Any) -> str | None:
    """Why *name* cannot be a sensor or metric name, or None if it can."""
    if not isinstance(name, str):
        return f"must be a string, not {_type_name(name)}"
    if not name.strip():
        return "must not be empty"
    if len(name) > NAME_MAX:
        return f"is {len(name)} characters long; at most {NAME_MAX} are allowed"
    if name != name.strip():
        return "must not start or end with spaces"
    if not name.isprintable():
        return "must not contain control characters (tabs, newlines, ...)"
    return None


def parse_seconds(value: Any) -> float:
    """Seconds from a number or a duration text such as ``"90s"``, ``"15m"``, ``"7d"`` or ``"1h30m"``."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number of seconds or a duration like \"30s\", not {_type_name(value)}")
    if isinstance(value, (int, float)):
        try:
            seconds = float(value)
        except OverflowError:
            raise ValueError(f"is far too large ({_show(value)})") from None
    elif isinstance(value, str):
        pos, seconds = 0, 0.0
        text = value.strip()
        if not text:
            raise ValueError('is empty; write seconds (e.g. 30) or a duration like "30s", "15m", "2h", "7d"')
        while pos < len(text):
            match = _DURATION_PART.match(text, pos)
            if not match:
                raise ValueError(
                    f'{value!r} is not a duration; write seconds (e.g. 30) or e.g. "30s", "15m", "2h", "7d", "1h30m"'
                )
            seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
            pos = match.end()
    else:
        raise ValueError(f"must be a number of seconds or a duration like \"30s\", not {_type_name(value)}")
    if not math.isfinite(seconds):
        raise ValueError(f"must be a finite number of seconds, not {_show(value)}")
    return seconds


def parse_size(value: Any) -> int:
    """Bytes from an integer or a size text such as ``"64 MiB"`` or ``"500MB"``."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f'must be a number of bytes or a size like "64 MiB", not {_type_name(value)}')
    if isinstance(value, int):
        return value
    match = _SIZE.fullmatch(value)
    if not match:
        raise ValueError(f'{value!r} is not a size; write bytes (e.g. 67108864) or e.g. "64 MiB", "500 MB", "1 GiB"')
    size = float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]
    if not math.isfinite(size):
        raise ValueError(f"is far too large ({_show(value)})")
    return int(size)


class _Table:
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
    ):
        self.data = data
        self.errors = errors
        self.file = file
        self.sensor = sensor
        self.sensor_label = sensor_label
        self.prefix = prefix
        self.taken: set[str] = set()

    def error(self, key: str | None, message: str, fix: str | None = None) -> None:
        full_key = None if key is None else self.prefix + key
        self.errors.append(
            ConfigError(message, file=self.file, sensor=self.sensor, key=full_key, fix=fix, sensor_label=self.sensor_label)
        )

    def raw(self, key: str) -> Any:
        self.taken.add(key)
        return self.data.get(key, _MISSING)

    def get(
        self,
        key: str,
        convert: Callable[[Any], Any],
        default: Any = _MISSING,
        *,
        fix: str,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        """The value of *key* after *convert* (which raises ValueError with a message) and *check*
        (which returns a problem or None); *default* when absent, _BAD after an error."""
        value = self.raw(key)
        if value is _MISSING:
            if default is _MISSING:
                self.error(key, "is missing", f"add it, e.g. {fix}")
                return _BAD
            return default
        try:
            result = convert(value)
        except ValueError as e:
            self.error(key, str(e), fix)
            return _BAD
        if check is not None:
            problem = check(result)
            if problem:
                self.error(key, problem, fix)
                return _BAD
        return result

    def unknown(self, known: tuple[str, ...] | list[str], what: str) -> None:
        """Report every key not read so far."""
        for key in self.data:
            if key not in self.taken:
                self.error(
                    key,
                    f"unknown key in {what}",
                    f"{_did_you_mean(key, list(known))}remove it or use one of: {', '.join(known)}",
                )


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {_type_name(value)} ({_show(value)})")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {_type_name(value)} ({_show(value)})")
    return value


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be an integer, not {_type_name(value)} ({_show(value)})")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number, not {_type_name(value)} ({_show(value)})")
    try:
        result = float(value)
    except OverflowError:
        raise ValueError(f"is too large ({_show(value)})") from None
    if not math.isfinite(result):
        raise ValueError(f"must be a finite number, not {_show(value)}")
    return result


def _num(value: float) -> str:
    """A number for a message: floats short, integers of any size without overflow."""
    return f"{value:g}" if isinstance(value, float) else _show(value)


def _positive(v: float) -> str | None:
    return None if v > 0 else f"must be greater than 0, not {_num(v)}"


def _in_range(low: float, high: float) -> Callable[[float], str | None]:
    return lambda v: None if low <= v <= high else f"must be between {_num(low)} and {_num(high)}, not {_num(v)}"


def _host(value: Any) -> str:
    value = _string(value)
    if not value:
        raise ValueError("must not be empty")
    if "://" in value or "/" in value:
        raise ValueError(f"must be a host name or address only, not a URL ({_show(value)})")
    if any(c.isspace() for c in value) or not value.isprintable():
        raise ValueError(f"must not contain spaces or control characters ({_show(value)})")
    if value.rsplit(":", 1)[-1].isdigit() and value.count(":") == 1:
        raise ValueError(f"must not contain the port ({_show(value)}); the ports have their own keys")
    return value


def _client_name(value: Any) -> str:
    value = _string(value)
    if not value:
        raise ValueError("must not be empty")
    if len(value) > CLIENT_NAME_MAX:
        raise ValueError(f"is {len(value)} characters long; at most {CLIENT_NAME_MAX} are allowed")
    if not CLIENT_NAME_PATTERN.fullmatch(value):
        raise ValueError(
            f"{_show(value)} has characters the agent does not accept in a client name; "
            "allowed are letters, digits and . * - , @ ' _"
        )
    return value


def _name(value: Any) -> str:
    problem = name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _log_level(value: Any) -> str:
    value = _string(value).strip().lower()
    if value not in LOG_LEVELS:
        raise ValueError(f"{_show(value)} is not a log level; use one of: {', '.join(LOG_LEVELS)}")
    return value


def _max_age(value: Any) -> float | None:
    if isinstance(value, str) and value.strip().lower() == "never":
        return None
    return parse_seconds(value)


def _numeric(quantity: Quantity) -> bool:
    agent = quantity.agent_unit
    return agent.unit is not None or agent.value_type in (ValueType.DOUBLE, ValueType.INTEGER)


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
        text = _string(value)
        if not text.strip():
            raise ValueError("must not be empty")
        if "\x00" in text:
            raise ValueError("must not contain a NUL character")
        return self._path(text)

    def _section(self, document: dict, name: str) -> _Table:
        value = document.get(name, {})
        if not isinstance(value, dict):
            self.errors.append(
                ConfigError(
                    f"must be a table, not {_type_name(value)}",
                    file=self.file,
                    key=name,
                    fix=f"write it as a section: a line [{name}] followed by its keys",
                )
            )
            value = {}
        return _Table(value, self.errors, self.file, prefix=f"{name}.")

    def parse(self, document: dict) -> Config:
        for key in document:
            if key not in ("agent", "storage", "log", "http", "sensors"):
                self.errors.append(
                    ConfigError(
                        "unknown top-level key or section",
                        file=self.file,
                        key=key,
                        fix=f"{_did_you_mean(key, ['agent', 'storage', 'log', 'http', 'sensors'])}"
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
        sensors = self._sensors(document.get("sensors", _MISSING))
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

    def _agent(self, t: _Table) -> AgentConfig:
        d = AgentConfig()
        port = _in_range(1, 65535)
        values = dict(
            host=t.get("host", _host, d.host, fix='host = "localhost"'),
            provision_port=t.get("provision_port", _integer, d.provision_port, fix="provision_port = 18883", check=port),
            api_port=t.get("api_port", _integer, d.api_port, fix="api_port = 18884", check=port),
            ca_file=t.get("ca_file", self._path_value, d.ca_file, fix=f'ca_file = "{d.ca_file}"'),
            client_name=t.get("client_name", _client_name, d.client_name, fix='client_name = "pibridge"'),
            timeout=t.get("timeout", parse_seconds, d.timeout, fix="timeout = 10.0", check=_positive),
            reprovision=t.get("reprovision", _boolean, d.reprovision, fix="reprovision = false"),
        )
        t.unknown(list(values), "[agent]")
        if values["api_port"] is not _BAD and values["api_port"] == values["provision_port"]:
            t.error(
                "api_port",
                f"is the same as provision_port ({values['api_port']})",
                "the agent listens on two ports: provision_port = 18883 and api_port = 18884",
            )
        if any(v is _BAD for v in values.values()):
            return d
        return AgentConfig(**values)

    def _storage(self, t: _Table) -> StorageConfig:
        d = StorageConfig()
        values = dict(
            dir=t.get("dir", self._path_value, d.dir, fix=f'dir = "{d.dir}"'),
            outbox_max_bytes=t.get(
                "outbox_max_bytes",
                parse_size,
                d.outbox_max_bytes,
                fix='outbox_max_bytes = "64 MiB"',
                check=lambda v: None if 1024**2 <= v <= 1024**4 else f"must be between 1 MiB and 1 TiB, not {_num(v)} bytes",
            ),
            outbox_max_age=t.get(
                "outbox_max_age",
                _max_age,
                d.outbox_max_age,
                fix='outbox_max_age = "7d" (or "never")',
                check=lambda v: None if v is None else _positive(v),
            ),
            ack_window=t.get("ack_window", parse_seconds, d.ack_window, fix="ack_window = 2.0", check=_positive),
            commit_interval=t.get(
                "commit_interval", parse_seconds, d.commit_interval, fix="commit_interval = 1.0", check=_positive
            ),
        )
        t.unknown(list(values), "[storage]")
        if any(v is _BAD for v in values.values()):
            return d
        return StorageConfig(**values)

    # --- sensors -------------------------------------------------------------------------

    def _sensors(self, value: Any) -> list[SensorConfig]:
        example = 'a [[sensors]] table with name = "greenhouse", driver = "mock" and interval = 5.0'
        if value is _MISSING or value == []:
            self.errors.append(
                ConfigError("no sensors are configured", file=self.file, key="sensors", fix=f"add {example}")
            )
            return []
        if isinstance(value, dict):
            self.errors.append(
                ConfigError(
                    "is a single table, but sensors are a list of tables",
                    file=self.file,
                    key="sensors",
                    fix="start each sensor with [[sensors]] (two brackets), not [sensors]",
                )
            )
            return []
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            what = "an array of other values" if isinstance(value, list) else _type_name(value)
            self.errors.append(
                ConfigError(
                    f"must be a list of tables, not {what}",
                    file=self.file,
                    key="sensors",
                    fix=f"describe each sensor in {example}",
                )
            )
            return []
        sensors: list[SensorConfig] = []
        seen: dict[str, int] = {}
        claimed: dict[str, str] = {}
        for index, table in enumerate(value, start=1):
            sensor = self._sensor(index, table, seen, claimed)
            if sensor is not None:
                sensors.append(sensor)
        return sensors

    def _sensor(self, index: int, data: dict, seen: dict[str, int], claimed: dict[str, str]) -> SensorConfig | None:
        """One [[sensors]] table; *seen* maps names to table numbers, *claimed* resources to sensors."""
        raw_name = data.get("name")
        usable = isinstance(raw_name, str) and name_problem(raw_name) is None
        label = None if usable else f"#{index} (the {_ordinal(index)} [[sensors]] table)"
        t = _Table(data, self.errors, self.file, sensor=raw_name if usable else None, sensor_label=label)
        errors_before = len(self.errors)

        name = t.get("name", _name, fix='name = "greenhouse" (the sensor\'s name in TeamViewer)')
        if name is not _BAD:
            if name in seen:
                t.error(
                    "name",
                    f"the name {name!r} is already used by the {_ordinal(seen[name])} [[sensors]] table",
                    "give every sensor its own name (the agent needs unique sensor names)",
                )
            else:
                seen[name] = index
        driver_name = t.get("driver", _string, fix='driver = "mock" (see `pibridge drivers` for the list)')
        interval = t.get(
            "interval", parse_seconds, fix="interval = 10.0 (seconds between readings)", check=_positive
        )
        enabled = t.get("enabled", _boolean, True, fix="enabled = true")
        offline_after = t.get(
            "offline_after",
            _integer,
            3,
            fix="offline_after = 3",
            check=lambda v: None if v >= 1 else f"must be at least 1, not {_num(v)}",
        )
        metric_tables = t.raw("metric")
        options = {k: v for k, v in data.items() if k not in SENSOR_KEYS}
        t.taken.update(options)

        driver_cls = self._driver_class(t, driver_name)
        if driver_cls is None:
            return None
        # Without a usable name the options are still worth checking, under a stand-in name.
        driver = self._build_driver(t, driver_cls, name if name is not _BAD else f"sensor-{index}", options)
        if driver is None:
            return None
        try:
            quantities = list(driver.quantities())
            min_interval = float(driver.min_interval())
            resources = [str(r) for r in driver.resources()]
        except Exception as e:  # a third-party driver's bug must not become a traceback
            t.error(None, f"driver {driver_name!r} failed to describe itself: {type(e).__name__}: {e}",
                    "report this to the driver's author; check its options meanwhile")
            return None
        if not quantities or not all(isinstance(q, Quantity) for q in quantities):
            t.error(None, f"driver {driver_name!r} reports no quantities with these options",
                    f"check its options: `pibridge drivers` lists what {driver_name!r} accepts")
            return None
        if enabled is not False:
            self._claim(t, resources, options, list(driver_cls.options), claimed)
        if interval is not _BAD and interval < min_interval:
            t.error(
                "interval",
                f"driver {driver_name!r} cannot be read more often than every {min_interval:g} s, "
                f"but interval = {interval:g}",
                f"set interval = {min_interval:g} or more",
            )
        metrics = self._metrics(t, metric_tables, quantities, driver_name, interval)
        if len(self.errors) > errors_before or name is _BAD:
            return None
        return SensorConfig(
            name=name,
            driver=driver_name,
            interval=interval,
            enabled=enabled,
            offline_after=offline_after,
            options=dict(options),
            metrics=metrics,
            quantities=tuple(quantities),
        )

    def _driver_class(self, t: _Table, driver_name: Any) -> type[Driver] | None:
        if driver_name is _BAD:
            return None
        try:
            return driver_class(driver_name)
        except KeyError:
            pass
        except Exception as e:  # a broken driver plugin: say so, do not crash
            t.error("driver", f"the drivers could not be loaded: {type(e).__name__}: {e}",
                    "reinstall pibridge or remove the broken driver package")
            return None
        known = list(available())  # discovery has run: driver_class() above got this far
        t.error(
            "driver",
            f"there is no driver called {_show(driver_name)}",
            f"{_did_you_mean(driver_name, known)}use one of: {', '.join(known) or '(none installed)'}",
        )
        return None

    def _build_driver(self, t: _Table, cls: type[Driver], name: str, options: dict) -> Driver | None:
        """The driver for these options, or None after recording why not.

        Unknown keys are reported one by one and left out, so the remaining
        options (and the pins they claim) are still checked in the same pass.
        """
        try:
            declared = list(cls.options)
            for key in options:
                if key not in declared:
                    t.error(
                        key,
                        f"unknown option {key!r} for driver {cls.name!r}; "
                        f"its options are: {', '.join(sorted(declared)) or 'none'}",
                        f"{_did_you_mean(key, list(SENSOR_KEYS) + sorted(declared))}remove it, or use one of the "
                        f"sensor keys ({', '.join(SENSOR_KEYS)}) or of the driver's options",
                    )
            return cls(name, {k: v for k, v in options.items() if k in declared})
        except OptionError as e:
            key = str(e.key)
            message = str(e)
            for prefix in (f"sensor {name!r}: ", f"sensor {name}: "):
                if message.startswith(prefix):
                    message = message[len(prefix):]
            if key in cls.options and cls.options[key].help:
                fix = f"{key}: {cls.options[key].help} (`pibridge drivers` lists every option)"
            else:
                fix = f"`pibridge drivers` lists the options of {cls.name!r}"
            t.error(key, message, fix)
        except Exception as e:  # a driver's own checks must not escape as a traceback
            t.error(
                None,
                f"driver {cls.name!r} rejected its options: {type(e).__name__}: {e}",
                "check the options against `pibridge drivers`",
            )
        return None

    def _metrics(
        self, t: _Table, tables: Any, quantities: list[Quantity], driver_name: str, interval: Any
    ) -> dict[str, MetricConfig]:
        by_name = {q.name: q for q in quantities}
        reported = ", ".join(by_name)
        if tables is _MISSING:
            tables = {}
        if not isinstance(tables, dict):
            t.error("metric", f"must be a table of per-quantity tables, not {_type_name(tables)}",
                    "write e.g. [sensors.metric.temperature] followed by name = ..., offset = ...")
            tables = {}
        for quantity in tables:
            if quantity not in by_name:
                t.error(
                    f"metric.{quantity}",
                    f"driver {driver_name!r} does not report {quantity!r} for this sensor; it reports: {reported}",
                    f"{_did_you_mean(quantity, list(by_name))}use one of those quantity names after 'metric.'",
                )
        result: dict[str, MetricConfig] = {}
        for quantity in quantities:
            table = tables.get(quantity.name, {})
            if not isinstance(table, dict):
                t.error(f"metric.{quantity.name}", f"must be a table, not {_type_name(table)}",
                        f"write [sensors.metric.{quantity.name}] followed by its keys")
                continue
            m = _Table(table, self.errors, self.file, sensor=t.sensor, sensor_label=t.sensor_label,
                       prefix=f"metric.{quantity.name}.")
            result[quantity.name] = self._metric(m, quantity, interval)
        self._check_metric_names(t, result)
        return result

    def _metric(self, m: _Table, quantity: Quantity, interval: Any) -> MetricConfig:
        q = quantity.name
        numeric = _numeric(quantity)
        name = m.get("name", _name, q, fix=f'name = "{q}"')
        drop = m.get("drop", _boolean, False, fix="drop = true")
        scale = m.get("scale", _number, 1.0, fix="scale = 1.0",
                      check=lambda v: None if v != 0 else "must not be 0 (every value would be 0)")
        offset = m.get("offset", _number, 0.0, fix="offset = 0.0")
        digits = m.get("round", _integer, None, fix="round = 1 (digits after the point)", check=_in_range(-9, 15))
        threshold = m.get("threshold", _number, None, fix="threshold = 0.5", check=_positive)
        heartbeat = m.get("heartbeat", parse_seconds, None, fix='heartbeat = "15m"', check=_positive)
        m.unknown(METRIC_KEYS, f"[sensors.metric.{q}]")
        if not numeric:
            kind = "on/off" if quantity.agent_unit.value_type is ValueType.BOOL else "text"
            for key in ("scale", "offset", "round", "threshold"):
                if key in m.data:
                    m.error(key, f"{q!r} is an {kind} quantity ({quantity.unit}); {key} applies only to numbers",
                            f"remove {key}")
        if heartbeat is not None and heartbeat is not _BAD:
            if threshold is None:
                m.error("heartbeat", "only applies together with a threshold",
                        "add threshold = ... (push only on change) or remove heartbeat")
            elif interval is not _BAD and heartbeat < interval:
                m.error("heartbeat", f"{heartbeat:g} s is shorter than the sensor's interval ({interval:g} s), "
                        "so every reading would be pushed anyway",
                        f"set heartbeat to at least {interval:g} s, or remove threshold and heartbeat")
        values = (name, drop, scale, offset, digits, threshold, heartbeat)
        if any(v is _BAD for v in values):
            return MetricConfig(q, q)
        return MetricConfig(q, name, drop, scale, offset, digits, threshold, heartbeat)

    def _check_metric_names(self, t: _Table, metrics: dict[str, MetricConfig]) -> None:
        if metrics and all(m.drop for m in metrics.values()):
            t.error("metric", "every quantity of this sensor is dropped, so nothing would be sent",
                    "keep at least one quantity, or set enabled = false on the sensor")
        owner: dict[str, str] = {}
        for metric in metrics.values():
            if metric.drop:
                continue
            if metric.name in owner:
                t.error(
                    f"metric.{metric.quantity}.name",
                    f"the metric name {metric.name!r} is also used by quantity {owner[metric.name]!r}",
                    "give every metric of a sensor its own name",
                )
            owner.setdefault(metric.name, metric.quantity)

    def _claim(
        self, t: _Table, resources: list[str], options: dict, declared: list[str], claimed: dict[str, str]
    ) -> None:
        """Record the pins/addresses of an enabled sensor; report those another sensor already holds."""
        me = t.sensor if t.sensor is not None else t.sensor_label
        for resource in resources:
            other = claimed.get(resource)
            if other is None:
                claimed[resource] = me
                continue
            t.error(
                _option_for(resource, options, declared),
                f"{resource} is also used by sensor {other!r}",
                "give each sensor its own pin or address (or set enabled = false on one of them)",
            )


def _option_for(resource: str, options: dict, declared: list[str]) -> str | None:
    """The option that most likely chose *resource* (``"gpio:17"`` <- ``pin = 17``), for messages.

    When no given value matches (``"w1:auto"``: no ``device_id`` given), the
    driver's first declared option is the one to set.
    """
    last = resource.rsplit(":", 1)[-1]
    try:
        number = int(last, 0)
    except ValueError:
        number = None
    for key, value in options.items():
        if isinstance(value, bool):
            continue
        if value == number or str(value) == last:
            return key
    return declared[0] if declared else None


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
