"""NXP/TI PCF8574 and PCF8574A: eight contacts or switches behind one I2C address."""

from __future__ import annotations

from pibridge.readings import Quantity

from .. import register
from ._bus import bus_options
from ._expander import ExpanderInput, common_options

ALL_INPUTS = 0xFF
LABELS = {f"p{n}": n for n in range(8)}
PINS_HELP = (
    'pins to report (default: all): a list (0..7 or "P0".."P7") or a table of names: '
    "{ door = 0, window = { pin = 1, active_low = false } }"
)


@register
class PCF8574(ExpanderInput):
    """A PCF8574 board: eight door contacts, buttons or float switches on P0..P7, polled.

    Wire VCC to 3.3 V (pin 1), GND to ground, SDA to GPIO2 (pin 3), SCL to
    GPIO3 (pin 5), and each switch between a P pin and GND.  The pins are
    quasi-bidirectional: there is no direction register.  A pin written 1
    is pulled up weakly (about 100 µA) and reads what the outside drives it
    to; a pin written 0 is driven low hard and always reads 0.  The driver
    writes 1 to all eight pins at start, so every pin is an input with its
    pull-up, and a closed switch reads low: each pin reports true while its
    switch is closed (``active_low``, the default).  A device with its own push-pull output (a PIR module)
    can drive a pin directly; set ``active_low = false`` for it.  Never
    connect a switch between a pin and 3.3 V: the pull-up is already there,
    and a pin latched low would short the supply.

    The A0-A2 jumpers pick the address: 0x20 .. 0x27 (PCF8574A: 0x38 ..
    0x3F, its own driver ``pcf8574a``).  The chip has no id register, so
    the driver cannot tell it from another chip at the address.  Its INT
    output is not used: the pins are polled every ``poll_interval``, and
    every change is pushed at once, with the GPIO ``contact`` driver's
    debounce (``bounce_time``, 50 ms by default).
    """

    name = "pcf8574"
    summary = "PCF8574 I2C port expander: 8 contacts/switches as on/off inputs, polled"
    chip = "PCF8574"
    addresses = tuple(range(0x20, 0x28))
    pin_labels = LABELS
    options = {**bus_options(tuple(range(0x20, 0x28))), **common_options(PINS_HELP, with_pull_up=False)}
    provides = tuple(Quantity(f"p{n}", "bool", f"true while pin P{n} is active") for n in range(8))

    def setup(self) -> None:
        # Quasi-bidirectional: 1 in the latch turns the weak pull-up on and makes the pin an input.
        self.send(ALL_INPUTS)

    def read_levels(self) -> int:
        return self.receive(1)[0]


@register
class PCF8574A(PCF8574):
    """A PCF8574A: the same chip as the PCF8574 at other addresses, 0x38 .. 0x3F (jumpers A0-A2).

    Wiring, pins and options are the PCF8574's: switches between P0..P7 and
    GND, true while closed, polled every ``poll_interval``.
    """

    name = "pcf8574a"
    summary = "PCF8574A I2C port expander (addresses 0x38-0x3F): 8 on/off inputs, polled"
    chip = "PCF8574A"
    addresses = tuple(range(0x38, 0x40))
    options = {**bus_options(tuple(range(0x38, 0x40))), **common_options(PINS_HELP, with_pull_up=False)}
