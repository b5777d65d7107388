"""What the I2C port expanders (PCF8574, MCP23017) share when their pins are on/off inputs.

Each configured pin behaves like the GPIO ``contact``/``digital_input`` driver: ``active_low``
says which level means "active" (low by default, for a switch to GND with a pull-up), and
``bounce_time`` ignores further changes for that long after one.  The expander has no edge
interrupt wired to the Pi here, so a poller thread reads all pins every ``poll_interval``;
every accepted change makes the bridge read and push at once, and changes that come faster than
the bridge reads are kept and reported in order, one snapshot of all pins per change.

Threading: the poller thread (``expander-<sensor>``) is the only one that touches the bus after
``open``; the bridge's read worker only takes snapshots from it under a lock.  ``notify`` is
called from the poller thread and never blocks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping

from pibridge.readings import Quantity

from .. import DeviceNotFound, Option, OptionError, ReadFailed
from ._bus import I2CDriver, describe_oserror

log = logging.getLogger(__name__)

#: Changes kept for the bridge between two reads; beyond this, older ones are dropped.
MAX_PENDING_CHANGES = 256


@dataclass
class Pin:
    """One configured input pin: its quantity name, bit number and how to read it."""

    name: str
    bit: int
    label: str
    active_low: bool
    bounce_time: float | None
    pull_up: bool = True
    reported: bool = False
    quiet_until: float = 0.0

    def active(self, levels: int) -> bool:
        high = bool(levels >> self.bit & 1)
        return high != self.active_low

    def update(self, levels: int, now: float) -> bool:
        """Take a polled level; True when it is a change to report (outside the bounce time)."""
        value = self.active(levels)
        if value == self.reported or now < self.quiet_until:
            return False
        self.reported = value
        if self.bounce_time:
            self.quiet_until = now + self.bounce_time
        return True


def common_options(pin_help: str, with_pull_up: bool) -> dict[str, Option]:
    options = {
        "pins": Option((list, dict), None, pin_help),
        "active_low": Option(
            (bool, type(None)), None, "true = active when the pin is low (default: low with a pull-up, high otherwise)"
        ),
        "bounce_time": Option((float, type(None)), 0.05, "ignore further changes for this many seconds after one"),
        "poll_interval": Option(float, 0.02, "seconds between two reads of the pins (0.005 to 1)"),
    }
    if with_pull_up:
        options["pull_up"] = Option(
            (bool, str), True, 'true = the chip\'s internal pull-up (switch to GND), "off" = none'
        )
    return options


class ExpanderInput(I2CDriver):
    """Base of the port-expander input drivers.

    A subclass sets :attr:`pin_labels` (label -> bit, e.g. ``"a0": 0``), :attr:`has_pull_ups`,
    and implements :meth:`setup` (configure every pin as an input) and :meth:`read_levels`
    (all pins as one integer, bit n = pin n).
    """

    pin_labels: ClassVar[Mapping[str, int]] = {}
    has_pull_ups: ClassVar[bool] = False
    #: Where the debounce takes its time from; replaceable to test without waiting.
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        interval = self.config["poll_interval"]
        if not 0.005 <= interval <= 1.0:
            raise OptionError("poll_interval", f"sensor {sensor!r}: poll_interval must be 0.005 to 1 second")
        self.pins = self._parse_pins(self.config["pins"])
        self._lock = threading.Lock()
        self._pending: deque[dict[str, bool]] = deque(maxlen=MAX_PENDING_CHANGES)
        self._error: str | None = None
        #: Changes lost because more than MAX_PENDING_CHANGES waited for the bridge (logged).
        self.dropped_changes = 0
        self._notify: Callable[[], None] | None = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # --- configuration ---

    def _pin_bit(self, key: str, spec: Any) -> tuple[int, str]:
        text = spec.lower() if isinstance(spec, str) else ""
        label = next((t for t in (text, text.removeprefix("gp")) if t in self.pin_labels), None)
        if isinstance(spec, int) and not isinstance(spec, bool) and 0 <= spec < len(self.pin_labels):
            bit = spec
        elif label is not None:
            bit = self.pin_labels[label]
        else:
            names = ", ".join(label.upper() for label in self.pin_labels)
            numbers = ", ".join(str(b) for b in sorted(self.pin_labels.values()))
            raise OptionError(
                "pins",
                f"sensor {self.sensor!r}: {key}: {spec!r} is not an input pin of the {self.chip}; "
                f"use one of {names} (or their numbers {numbers})",
            )
        return bit, next(label for label, b in self.pin_labels.items() if b == bit)

    def _parse_pins(self, given: Any) -> list[Pin]:
        if given is None:
            given = list(self.pin_labels)
        if isinstance(given, list):
            entries = []
            for spec in given:
                bit, label = self._pin_bit("pins", spec)
                entries.append((label, {"pin": bit}))
        else:
            entries = [(name, spec if isinstance(spec, dict) else {"pin": spec}) for name, spec in given.items()]
        if not entries:
            raise OptionError("pins", f"sensor {self.sensor!r}: pins must name at least one pin")
        pins: list[Pin] = []
        for name, spec in entries:
            pins.append(self._pin(str(name), spec))
        bits = [p.bit for p in pins]
        for pin in pins:
            if bits.count(pin.bit) > 1:
                raise OptionError("pins", f"sensor {self.sensor!r}: pin {pin.label.upper()} is listed twice")
        return pins

    def _pin(self, name: str, spec: dict) -> Pin:
        where = f"pins.{name}"
        allowed = {"pin", "active_low", "bounce_time"} | ({"pull_up"} if self.has_pull_ups else set())
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise OptionError(
                "pins",
                f"sensor {self.sensor!r}: {where}: unknown key {unknown[0]!r}; a pin takes {', '.join(sorted(allowed))}",
            )
        if not name:
            raise OptionError("pins", f"sensor {self.sensor!r}: pin names must not be empty")
        if "pin" not in spec:
            raise OptionError("pins", f"sensor {self.sensor!r}: {where} needs pin = (its number or name)")
        bit, label = self._pin_bit(where, spec["pin"])
        pull_up = self._pull_up(where, spec.get("pull_up", self.config.get("pull_up", True)))
        active_low = spec.get("active_low", self.config["active_low"])
        if active_low is None:
            if not pull_up:
                raise OptionError(
                    "active_low",
                    f'sensor {self.sensor!r}: {where}: with pull_up = "off" say whether the input is active_low '
                    "(true or false)",
                )
            active_low = True
        if not isinstance(active_low, bool):
            raise OptionError("pins", f"sensor {self.sensor!r}: {where}: active_low must be true or false")
        bounce = spec.get("bounce_time", self.config["bounce_time"])
        if isinstance(bounce, int) and not isinstance(bounce, bool):
            bounce = float(bounce)
        if bounce is not None and (not isinstance(bounce, float) or not 0 < bounce <= 10):
            raise OptionError(
                "bounce_time",
                f"sensor {self.sensor!r}: {where}: bounce_time is in seconds, between 0 and 10 (e.g. 0.05)",
            )
        return Pin(name, bit, label, active_low, bounce, pull_up)

    def _pull_up(self, where: str, value: Any) -> bool:
        if value is True:
            return True
        if isinstance(value, str) and value.lower() in ("off", "none", "floating"):
            return False
        if value is False:
            raise OptionError(
                "pull_up",
                f'sensor {self.sensor!r}: {where}: the {self.chip} has pull-ups but no pull-downs; use pull_up = "off" '
                "and an external pull-down resistor for a switch to 3.3 V",
            )
        raise OptionError("pull_up", f'sensor {self.sensor!r}: {where}: pull_up must be true or "off", not {value!r}')

    def pull_up_mask(self) -> int:
        mask = 0
        for pin in self.pins:
            if pin.pull_up:
                mask |= 1 << pin.bit
        return mask

    def quantities(self) -> list[Quantity]:
        return [Quantity(pin.name, "bool", f"true while pin {pin.label.upper()} is active") for pin in self.pins]

    def min_interval(self) -> float:
        return self.config["poll_interval"]

    # --- the chip ---

    def read_levels(self) -> int:
        raise NotImplementedError

    def snapshot(self) -> dict[str, bool]:
        return {pin.name: pin.reported for pin in self.pins}

    def open(self) -> None:
        super().open()
        try:
            levels = self.read_levels()
        except OSError as exc:
            self.close()
            raise DeviceNotFound(f"{self.where()}: {describe_oserror(exc, self.bus_number, self.address)}") from None
        for pin in self.pins:
            pin.reported, pin.quiet_until = pin.active(levels), 0.0
        self._stop.clear()
        self._poller = threading.Thread(target=self._poll_loop, name=f"expander-{self.sensor}", daemon=True)
        self._poller.start()

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.config["poll_interval"]):
            self.poll_once()

    def poll_once(self) -> None:
        """Read the pins once and record any change; runs in the poller thread, never raises."""
        try:
            levels = self.read_levels()
        except OSError as exc:
            self._set_error(describe_oserror(exc, self.bus_number, self.address))
            return
        except Exception as exc:  # a bug or a closed bus must not end the poller silently
            if self._set_error(f"reading the pins failed: {type(exc).__name__}: {exc}"):
                log.exception("%s: reading the pins failed (logged once until a poll succeeds)", self.where())
            return
        now = self.clock()
        with self._lock:
            self._error = None
            changed = [pin.update(levels, now) for pin in self.pins]
            if any(changed):
                if len(self._pending) == MAX_PENDING_CHANGES:
                    self.dropped_changes += 1
                    if self.dropped_changes % 100 == 1:
                        log.warning(
                            "%s: %d changes waiting and the bridge is not reading; dropped the oldest (%d so far)",
                            self.where(), MAX_PENDING_CHANGES, self.dropped_changes,
                        )
                self._pending.append(self.snapshot())
        notify = self._notify
        if any(changed) and notify is not None:
            notify()

    def _set_error(self, message: str) -> bool:
        """Record why the last poll failed; True when the previous poll had not failed."""
        with self._lock:
            first = self._error is None
            self._error = message
        return first

    def watch(self, notify: Callable[[], None]) -> None:
        self._notify = notify

    def measure(self) -> dict[str, bool]:
        # Changes seen before a failure are real readings: hand them over before the error.
        with self._lock:
            if self._pending:
                values = self._pending.popleft()
            elif self._error is not None:
                raise ReadFailed(f"{self.where()}: {self._error}")
            else:
                values = self.snapshot()
            more = bool(self._pending)
        if more and self._notify is not None:
            self._notify()
        return values

    def close(self) -> None:
        self._stop.set()
        poller, self._poller = self._poller, None
        if poller is not None and poller is not threading.current_thread():
            poller.join(timeout=2.0)
            if poller.is_alive():
                log.warning("%s: the poller thread did not stop within 2 s (the bus hangs); closing the bus under it",
                            self.where())
        super().close()
        with self._lock:
            self._pending.clear()
            self._error = None
