"""Device drivers: one file per device, grouped in folders by bus or family
(``i2c/``, ``gpio/``, ``onewire/``, ``system/``), each registering itself by name.

A driver module defines a subclass of :class:`Driver` decorated with
:func:`register`; the config's ``driver = "bme280"`` picks it.  Third-party
packages add drivers through the ``pibridge.drivers`` entry-point group
(``name = "package.module:DriverClass"``).  Nothing here imports hardware
libraries: a driver imports gpiozero, smbus2 or the DHT library inside
:meth:`Driver.open`, so the core runs on a laptop.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable, ClassVar, Mapping, Sequence

from pibridge.readings import Quantity, Value

#: How a driver looks up another sensor's most recent values: ``latest("hallway")`` gives
#: that sensor's last good reading in canonical units, or None before its first good read
#: or while it is offline.
Latest = Callable[[str], "Mapping[str, Value] | None"]

ENTRY_POINT_GROUP = "pibridge.drivers"

_REQUIRED = object()


class DriverError(Exception):
    """A device could not be read.  The message says which device and what to check."""


class DeviceNotFound(DriverError):
    """The device does not answer at all (not wired, wrong address or pin, no permission)."""


class ReadFailed(DriverError):
    """One read failed (I/O error, checksum, timeout); a later read may succeed."""


class ValueRejected(DriverError):
    """The device answered with a value that cannot be physically right."""


class OptionError(ValueError):
    """A driver option in the config is wrong.  ``key`` names the option."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(message)


@dataclass(frozen=True)
class Option:
    """One config key a driver accepts: its type, default and a line of help."""

    type: type | tuple[type, ...]
    default: Any = _REQUIRED
    help: str = ""

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


class Driver:
    """Base class of all drivers.

    A subclass sets ``name`` (the config's ``driver`` value) and ``options``,
    and implements :meth:`quantities`, :meth:`open`, :meth:`read` and
    :meth:`close`.  The constructor only validates options; hardware is
    touched in :meth:`open`.  ``read`` returns one value per quantity, in the
    quantity's canonical unit, or raises a :class:`DriverError`.

    Threading: the bridge calls ``open``, ``read`` and ``close`` from a
    worker thread of its read pool, one call at a time for a driver (never
    two at once, though not always from the same thread).  Drivers whose
    :meth:`bus` names the same bus are never called at the same time either.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    options: ClassVar[Mapping[str, Option]] = {}
    #: How many times the bridge retries a :class:`ReadFailed` at once before counting a failure.
    retries: ClassVar[int] = 0
    #: What the driver reports with its default options (:meth:`quantities` gives the list for
    #: a configured sensor); ``pibridge drivers`` shows these without building a driver.
    provides: ClassVar[Sequence[Quantity]] = ()

    def __init__(self, sensor: str, options: Mapping[str, Any] | None = None):
        self.sensor = sensor
        self.config = self.validate_options(dict(options or {}))

    @classmethod
    def validate_options(cls, given: dict[str, Any]) -> dict[str, Any]:
        """Check *given* against :attr:`options`; return it with defaults filled in."""
        unknown = sorted(set(given) - set(cls.options))
        if unknown:
            known = ", ".join(sorted(cls.options)) or "none"
            raise OptionError(
                unknown[0],
                f"unknown option {unknown[0]!r} for driver {cls.name!r}; its options are: {known}",
            )
        result: dict[str, Any] = {}
        for key, option in cls.options.items():
            if key not in given:
                if option.required:
                    raise OptionError(key, f"driver {cls.name!r} needs option {key!r} ({option.help})")
                result[key] = option.default
                continue
            value = given[key]
            types = option.type if isinstance(option.type, tuple) else (option.type,)
            if float in types and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if isinstance(value, bool) and bool not in types:
                ok = False
            else:
                ok = isinstance(value, types)
            if not ok:
                expected = " or ".join(t.__name__ for t in types)
                hint = ""
                if isinstance(value, str) and _number_text(value) is not None and ({int, float} & set(types)):
                    hint = f": remove the quotes ({key} = {value.strip()})"
                raise OptionError(
                    key, f"option {key!r} must be {expected}, not {type(value).__name__} ({value!r}){hint}"
                )
            result[key] = value
        return result

    def quantities(self) -> list[Quantity]:
        """What this device reports, given its options."""
        raise NotImplementedError

    def min_interval(self) -> float:
        """The shortest time between two reads the device allows, in seconds."""
        return 0.0

    def resources(self) -> list[str]:
        """Exclusive resources this device uses (``"gpio:17"``, ``"i2c:1:0x76"``) so two
        sensors configured on the same pin or address are caught before start."""
        return []

    def bus(self) -> str | None:
        """The bus this device shares with others (``"i2c:1"``, ``"spi:0"``, ``"serial:/dev/ttyAMA0"``), or None.

        The bridge reads the devices of one bus one after the other, in one
        thread, so two drivers never talk over the same wires at once.  The
        default, None, means a line of its own (a GPIO pin, a file): such
        devices are read side by side.
        """
        return None

    def open(self) -> None:
        """Acquire the hardware.  Raise :class:`DeviceNotFound` if it is not there."""

    def read(self) -> dict[str, Value]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the hardware.  Safe to call twice or after a failed open."""

    def peer_needs(self) -> dict[str, dict[str, str]]:
        """Other sensors of the same config whose readings this driver uses: name -> {quantity: unit}.

        A gas sensor compensating for the air's temperature and humidity
        returns ``{"hallway": {"temperature": "°C", "humidity": "%RH"}}``
        when its ``compensate_from`` option says ``"hallway"``.  The config
        check makes sure each named sensor exists, is enabled and reports
        those quantities in those units.  The default needs nothing.
        """
        return {}

    def peers(self, latest: Latest) -> None:
        """Take the bridge's look-up of other sensors' latest values (see :data:`Latest`).

        Called once, before :meth:`open`, by the thread that builds the
        bridge.  ``latest`` is then called from the thread reading this driver
        (inside :meth:`read`); it returns a copy and never blocks.  The
        default ignores it.
        """

    def state(self) -> dict[str, Any] | None:
        """What the device has accumulated that a restart must not lose (a pulse total), or None.

        The bridge saves it, JSON-encoded, after a reading is pushed and when
        the sensor stops, and hands it to :meth:`restore` on the next start;
        the driver never learns where it is kept.  Called from the reader
        thread; must be quick (no device I/O).
        """
        return None

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state` saved by an earlier run (called before :meth:`open`).

        A driver that cannot use *state* (written by another version, or
        nonsense) raises ValueError; the bridge then logs it and starts afresh.
        """

    def watch(self, notify: Callable[[], None]) -> None:
        """Ask to be told of changes between reads (edge-triggered inputs).

        A driver that can see changes calls ``notify()`` from whatever thread
        noticed them; the bridge then reads and pushes at once.  ``notify``
        never blocks.  The default does nothing: the device is only read on
        its interval.
        """


def _number_text(text: str) -> int | float | None:
    """The number a quoted config value spells (``"4"``, ``"0x76"``, ``"2.5"``), or None."""
    try:
        return int(text.strip(), 0)
    except ValueError:
        pass
    try:
        return float(text.strip())
    except ValueError:
        return None


_registry: dict[str, type[Driver]] = {}
#: entry points that failed to load: name -> why (reported when that driver is asked for)
_broken: dict[str, str] = {}
_discovered = False


def register(cls: type[Driver]) -> type[Driver]:
    """Class decorator: make *cls* available under ``cls.name``."""
    if not cls.name:
        raise TypeError(f"{cls.__qualname__} has no driver name")
    existing = _registry.get(cls.name)
    if existing is not None and existing is not cls:
        raise TypeError(f"driver name {cls.name!r} is used by both {existing.__module__} and {cls.__module__}")
    _registry[cls.name] = cls
    return cls


def _discover() -> None:
    """Import every driver module in the family folders (not those starting with ``_``), then the entry points.

    A broken third-party driver must not take the others down: its error is
    kept and reported when a sensor asks for it.
    """
    global _discovered
    if _discovered:
        return
    for module in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
        if not module.name.rpartition(".")[2].startswith("_"):
            importlib.import_module(module.name)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Driver)):
                raise TypeError(f"{ep.value} is not a Driver subclass")
            if cls.name != ep.name:
                raise TypeError(f"{ep.value} is named {cls.name!r}, not {ep.name!r}")
            register(cls)
        except Exception as exc:  # whatever a plugin's import raises
            _broken[ep.name] = f"{type(exc).__name__}: {exc}"
    _discovered = True


_NAME_LINE = re.compile(r"""^    name = ["']([A-Za-z0-9_.-]+)["']""", re.M)


def _modules_naming(name: str) -> list[str]:
    """The driver modules whose source declares ``name = "<name>"`` on a class, found without
    importing any of them: a daemon with three sensors should not import forty drivers."""
    found = []
    for folder in __path__:
        for directory, _, files in os.walk(folder):
            relative = os.path.relpath(directory, folder)
            parts = [] if relative == "." else relative.split(os.sep)
            if any(part.startswith(("_", ".")) for part in parts):
                continue
            for file in files:
                if not file.endswith(".py") or file.startswith("_"):
                    continue
                try:
                    with open(os.path.join(directory, file), encoding="utf-8") as f:
                        source = f.read()
                except OSError:
                    continue
                if name in _NAME_LINE.findall(source):
                    found.append(".".join([__name__, *parts, file[:-3]]))
    return found


def available() -> dict[str, type[Driver]]:
    """Every known driver, by name."""
    _discover()
    return dict(sorted(_registry.items()))


def driver_class(name: str) -> type[Driver]:
    """The driver registered as *name*, or KeyError with the list of known names.

    Only the module that declares *name* is imported when it can be found by its
    source; anything else (an entry point, an unknown name) takes the full discovery.
    """
    if name in _registry:
        return _registry[name]
    if not _discovered:
        for module in _modules_naming(name):
            importlib.import_module(module)
        if name in _registry:
            return _registry[name]
    drivers = available()
    try:
        return drivers[name]
    except KeyError:
        if name in _broken:
            raise KeyError(
                f"driver {name!r} is installed (entry point {ENTRY_POINT_GROUP!r}) but failed to load: {_broken[name]}"
            ) from None
        raise KeyError(f"unknown driver {name!r}; known drivers: {', '.join(drivers)}") from None


def create(name: str, sensor: str, options: Mapping[str, Any] | None = None) -> Driver:
    """Build the driver *name* for the sensor called *sensor* (no hardware touched yet)."""
    return driver_class(name)(sensor, options)


def load_errors() -> dict[str, str]:
    """Third-party drivers that are installed but failed to load: name -> the error."""
    _discover()
    return dict(_broken)
