"""Microchip MCP23017: fourteen contacts or switches behind one I2C address, with pull-ups."""

from __future__ import annotations

from typing import Any

from pibridge.readings import Quantity

from .. import DeviceNotFound, OptionError, register
from ._bus import bus_options
from ._expander import ExpanderInput, common_options

# Register addresses with IOCON.BANK = 0, the power-on mapping (datasheet section 3.5, register-address table).
IODIRA, IPOLA, GPINTENA, IOCON, GPPUA, GPIOA = 0x00, 0x02, 0x04, 0x0A, 0x0C, 0x12
#: GPINTENB with BANK = 0, IOCON with BANK = 1: writing 0 here leaves either bank in BANK = 0.
BANK_SAFE_RESET = 0x05
LABELS = {f"{port}{n}": bit for bit, (port, n) in enumerate((p, n) for p in "ab" for n in range(8))}
#: GPA7 and GPB7 are outputs only (datasheet DS20001952D, pin description notes).
OUTPUT_ONLY = ("a7", "b7")
PINS_HELP = (
    'pins to report (default: all but A7, B7): a list (0..15 or "A0".."A6", "B0".."B6") or a table of names: '
    '{ door = "A0", window = { pin = "B1", pull_up = "off", active_low = false } }'
)
ADDRESSES = tuple(range(0x20, 0x28))


@register
class MCP23017(ExpanderInput):
    """An MCP23017 board: up to fourteen door contacts, buttons or float switches, polled.

    Wire VDD to 3.3 V (pin 1), VSS to ground, SDA to GPIO2 (pin 3), SCL to
    GPIO3 (pin 5), and RESET to 3.3 V (bare chips; boards do it).  Put each
    switch between a GPA/GPB pin and GND: the driver makes every pin an
    input and turns on its 100 kΩ pull-up (GPPU), so a closed switch reads
    low and reports true (``active_low``, the default).  ``pull_up = "off"``
    leaves a pin without pull-up, for a device that drives the line itself;
    say ``active_low`` for it.  The chip has no pull-downs.

    GPA7 and GPB7 cannot be inputs: since revision D Microchip's datasheet
    makes them outputs only (as inputs they can corrupt the SDA line), so
    the driver refuses them.  The A0-A2 pins pick the
    address, 0x20 .. 0x27.  Its INT outputs are not used: the pins are
    polled every ``poll_interval``, and every change is pushed at once,
    with the GPIO ``contact`` driver's debounce (``bounce_time``).  If the
    chip loses power it forgets its pull-ups; the driver notices and sets
    them again.
    """

    name = "mcp23017"
    summary = "MCP23017 I2C port expander: 14 contacts/switches as on/off inputs with pull-ups, polled"
    chip = "MCP23017"
    addresses = ADDRESSES
    pin_labels = {label: bit for label, bit in LABELS.items() if label not in OUTPUT_ONLY}
    has_pull_ups = True
    options = {**bus_options(ADDRESSES), **common_options(PINS_HELP, with_pull_up=True)}
    provides = tuple(Quantity(label, "bool", f"true while pin {label.upper()} is active")
                     for label in LABELS if label not in OUTPUT_ONLY)

    def _pin_bit(self, key: str, spec: Any) -> tuple[int, str]:
        named = isinstance(spec, str) and spec.lower().removeprefix("gp") in OUTPUT_ONLY
        numbered = isinstance(spec, int) and not isinstance(spec, bool) and spec in (7, 15)
        if named or numbered:
            raise OptionError(
                "pins",
                f"sensor {self.sensor!r}: {key}: GPA7 and GPB7 are outputs only on the MCP23017 "
                "(datasheet DS20001952D); wire the switch to another pin",
            )
        if isinstance(spec, int) and not isinstance(spec, bool) and 0 <= spec < 16:
            return spec, next(label for label, bit in LABELS.items() if bit == spec)
        return super()._pin_bit(key, spec)

    def setup(self) -> None:
        pull_ups = self.pull_up_mask()
        self.write_byte(BANK_SAFE_RESET, 0x00)
        self.write_byte(IOCON, 0x00)  # BANK 0, sequential addressing, no interrupt mirroring
        self.write_block(IODIRA, [0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00])  # inputs, not inverted, no interrupts
        self.write_block(GPPUA, [pull_ups & 0xFF, pull_ups >> 8])
        direction, pulls = self.read_block(IODIRA, 2), self.read_block(GPPUA, 2)
        iocon = self.read_block(IOCON, 2)
        if direction != [0xFF, 0xFF] or pulls != [pull_ups & 0xFF, pull_ups >> 8] or iocon != [0x00, 0x00]:
            raise DeviceNotFound(
                f"{self.where()}: wrote IODIR FFh FFh, GPPU {pull_ups & 0xFF:02X}h {pull_ups >> 8:02X}h and "
                f"IOCON 00h but read back {_hex(direction)}, {_hex(pulls)} and {_hex(iocon)}: "
                "the chip at this address is not an MCP23017"
            )

    def read_levels(self) -> int:
        # One sequential read from GPPUA to GPIOB: the pull-ups show a brown-out, the ports the pins.
        block = self.read_block(GPPUA, GPIOA + 2 - GPPUA)
        pull_ups = self.pull_up_mask()
        if block[0] | block[1] << 8 != pull_ups:
            self.setup()
            block[-2:] = self.read_block(GPIOA, 2)
        return block[-2] | block[-1] << 8


def _hex(data: list[int]) -> str:
    return " ".join(f"{b:02X}h" for b in data)
