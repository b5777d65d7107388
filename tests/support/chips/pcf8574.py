"""NXP PCF8574/PCF8574A (datasheet rev 5, sections 7 and 8): eight quasi-bidirectional pins.

There are no registers.  A write sets the eight output latches (the last byte of a write wins);
a read returns the level of each pin.  A latch holding 1 leaves its pin pulled up by a weak
current source (about 100 µA), so the pin reads whatever the outside drives it to, or 1 when
nothing does; a latch holding 0 drives the pin low hard, and it reads 0.  At power-on every
latch is 1.  ``switch(n, closed)`` puts a switch to GND on pin n; ``drive(n, level)`` a device
with its own output.
"""

from __future__ import annotations

from tests.support.chips.wiring import WiredPins
from tests.support.smbus_fake import Chip


class PCF8574Chip(WiredPins, Chip):
    def __init__(self, address=0x20):
        super().__init__(address)
        self.latches = 0xFF
        self.driven: dict[int, int] = {}
        self.reads = 0

    def power_on(self):
        self.latches = 0xFF

    def levels(self) -> int:
        out = 0
        for pin in range(8):
            if self.latches >> pin & 1:
                level = self.driven.get(pin, 1)
            else:
                level = 0
            out |= level << pin
        return out

    def write(self, data):
        if data:
            self.latches = data[-1]

    def read(self, length):
        self.reads += 1
        return bytes([self.levels()] * length)
