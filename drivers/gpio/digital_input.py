"""On/off inputs on a GPIO pin: door contacts, PIR motion sensors, float switches, buttons."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Callable

from pibridge.readings import Quantity

from .. import Driver, DriverError, Option, OptionError, register
from ._pins import PULL_HELP, OnePin, check_bounce, check_pin, open_input, pin_option, pull_up_argument

#: Edges kept for the bridge between two reads; beyond this, older edges are dropped.
MAX_PENDING_EDGES = 256


@register
class DigitalInput(OnePin, Driver):
    """One on/off input: reports ``true`` while it is active, and pushes every change at once.

    Wire a switch (door reed contact, float switch, button) between the GPIO
    pin and GND and keep ``pull_up = true`` (the default): the pin's internal
    pull-up holds it high, and closing the switch makes it active.  A PIR
    motion module has a 3.3 V output: connect VCC to 5 V (pin 2), GND to
    ground and OUT to the GPIO, with ``pull_up = false``.

    ``active_low`` flips the meaning (e.g. a normally-closed contact);
    ``bounce_time`` (seconds) ignores the chatter of a mechanical contact.
    Every edge makes the bridge read and push at once; changes that come
    faster than the bridge reads are kept and reported in order.
    """

    name = "digital_input"
    summary = "on/off input (door contact, PIR motion, float switch) with instant change reports"
    options = {
        "pin": pin_option(),
        "pull_up": Option((bool, str), True, PULL_HELP),
        "active_low": Option((bool, type(None)), None, "true = active when the pin is low (default: low with a pull-up, high otherwise)"),
        "bounce_time": Option((float, type(None)), None, "ignore further edges for this many seconds after one (e.g. 0.05)"),
        "quantity": Option(str, "active", "name of the reported quantity, e.g. door_closed or motion"),
    }
    provides = (Quantity("active", "bool", "true while the input is active"),)
    default_description = "true while the input is active"

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        check_pin(sensor, "pin", self.config["pin"])
        check_bounce(sensor, self.config["bounce_time"])
        self._pull_up = pull_up_argument(sensor, self.config["pull_up"])
        active_low = self.config["active_low"]
        if self._pull_up is None and active_low is None:
            raise OptionError(
                "active_low",
                f'sensor {sensor!r}: with pull_up = "off" say whether the input is active_low (true or false)',
            )
        natural_low = bool(self._pull_up)
        self._invert = active_low is not None and active_low != natural_low and self._pull_up is not None
        # Used only for a floating input, where active_low has been required above.
        self._active_high = not active_low
        if not self.config["quantity"]:
            raise OptionError("quantity", f"sensor {sensor!r}: quantity must not be empty")
        self._device: Any = None
        self._notify: Callable[[], None] | None = None
        self._pending: deque[bool] = deque(maxlen=MAX_PENDING_EDGES)
        self._lock = threading.Lock()

    def quantities(self) -> list[Quantity]:
        return [Quantity(self.config["quantity"], "bool", self.default_description)]

    def open(self) -> None:
        self.close()
        self._device = open_input(self.where(), self.pin, self._pull_up, self.config["bounce_time"], self._active_high)
        self._device.when_activated = self._edge
        self._device.when_deactivated = self._edge

    def _value(self) -> bool:
        return bool(self._device.is_active) != self._invert

    def _edge(self) -> None:
        # Runs in gpiozero's event thread: record and hand over, never block.
        notify = self._notify
        if notify is None:
            return
        with self._lock:
            self._pending.append(self._value())
        notify()

    def watch(self, notify: Callable[[], None]) -> None:
        self._notify = notify

    def read(self) -> dict[str, bool]:
        device = self._device
        if device is None:
            raise DriverError(f"{self.where()}: read before open() or after close()")
        with self._lock:
            value = self._pending.popleft() if self._pending else None
            more = bool(self._pending)
        if value is None:
            value = self._value()
        if more and self._notify is not None:
            self._notify()
        return {self.config["quantity"]: value}

    def close(self) -> None:
        device, self._device = self._device, None
        if device is not None:
            device.close()
        with self._lock:
            self._pending.clear()


@register
class Contact(DigitalInput):
    """A door or window reed contact (or any switch) between a GPIO pin and GND.

    Reports ``closed``: true while the contact is closed (magnet near).
    Internal pull-up, 50 ms debounce.
    """

    name = "contact"
    summary = "door/window reed contact or switch to GND: closed = true"
    options = {
        **DigitalInput.options,
        "bounce_time": Option((float, type(None)), 0.05, "ignore contact chatter for this many seconds"),
        "quantity": Option(str, "closed", "name of the reported quantity"),
    }
    provides = (Quantity("closed", "bool", "true while the contact is closed"),)
    default_description = "true while the contact is closed"


@register
class Motion(DigitalInput):
    """A PIR motion sensor module (HC-SR501 and alike): VCC to 5 V, GND, OUT to a GPIO pin.

    Reports ``motion``: true while the module's output is high.  The
    module's own potentiometers set how long it stays on after movement.
    """

    name = "motion"
    summary = "PIR motion sensor: motion = true while its output is high"
    options = {
        **DigitalInput.options,
        "pull_up": Option((bool, str), False, PULL_HELP),
        "quantity": Option(str, "motion", "name of the reported quantity"),
    }
    provides = (Quantity("motion", "bool", "true while motion is detected"),)
    default_description = "true while motion is detected"
