"""Microchip MCP23017 (datasheet DS20001952D): sixteen I/O pins in two 8-bit ports, A and B.

Registers (section 3.5 and its register-address table): IODIR, IPOL, GPINTEN, DEFVAL, INTCON, IOCON, GPPU, INTF,
INTCAP, GPIO and OLAT for each port.  With IOCON.BANK = 0 (power-on) the A and B registers are
paired at even/odd addresses 00h-15h; with BANK = 1 port A sits at 00h-0Ah and port B at 10h-1Ah.
IOCON appears at both of its addresses.  The address pointer increments after each byte
(IOCON.SEQOP = 0).  At power-on IODIR is FFh (all inputs) and every other register 00h.  GPIO
reads the pins of inputs (through IPOL) and the latch of outputs; GPPU turns on each pin's
100 kΩ pull-up.  ``switch(bit, closed)`` puts a switch to GND on a pin (bit 0-7 = GPA0-7,
8-15 = GPB0-7); ``drive(bit, level)`` a device with its own output.  A floating input with no
pull-up reads ``floating_level``.
"""

from __future__ import annotations

from tests.support.chips.wiring import WiredPins
from tests.support.smbus_fake import Chip

NAMES = ("IODIR", "IPOL", "GPINTEN", "DEFVAL", "INTCON", "IOCON", "GPPU", "INTF", "INTCAP", "GPIO", "OLAT")


def _address_map(bank: int) -> dict[int, tuple[str, str]]:
    if bank == 0:
        return {2 * i + j: (name, port) for i, name in enumerate(NAMES) for j, port in enumerate("AB")}
    return {base + i: (name, port) for port, base in (("A", 0x00), ("B", 0x10)) for i, name in enumerate(NAMES)}


class MCP23017Chip(WiredPins, Chip):
    def __init__(self, address=0x20, bank=0):
        super().__init__(address)
        self.driven: dict[int, int] = {}
        self.floating_level = 0
        self.pointer = 0
        self.reads = 0
        self.power_on()
        self.regs["IOCON"] = 0x80 if bank else 0x00

    def power_on(self):
        """Power-on reset (or a brown-out): IODIR FFh, everything else 00h, BANK = 0."""
        self.regs = {
            (name, port): (0xFF if name == "IODIR" else 0x00) for name in NAMES if name != "IOCON" for port in "AB"
        }
        self.regs["IOCON"] = 0x00

    # registers

    def _map(self):
        return _address_map(self.regs["IOCON"] >> 7)

    def _key(self, address):
        name, port = self._map()[address]
        return "IOCON" if name == "IOCON" else (name, port)

    def reg(self, name: str, port: str) -> int:
        return self.regs["IOCON" if name == "IOCON" else (name, port)]

    def _port_levels(self, port: str) -> int:
        offset = 0 if port == "A" else 8
        value = 0
        for n in range(8):
            bit = offset + n
            if self.regs[("IODIR", port)] >> n & 1:
                if bit in self.driven:
                    level = self.driven[bit]
                elif self.regs[("GPPU", port)] >> n & 1:
                    level = 1
                else:
                    level = self.floating_level
                level ^= self.regs[("IPOL", port)] >> n & 1
            else:
                level = self.regs[("OLAT", port)] >> n & 1
            value |= level << n
        return value

    def _advance(self):
        self.pointer = (self.pointer + 1) % (0x16 if self.regs["IOCON"] >> 7 == 0 else 0x1B)
        while self.pointer not in self._map():
            self.pointer = (self.pointer + 1) % 0x1B

    def write(self, data):
        if not data:
            return
        self.pointer = data[0]
        for value in data[1:]:
            key = self._key(self.pointer)
            if key == ("GPIO", "A") or key == ("GPIO", "B"):
                key = ("OLAT", key[1])
            if key in (("INTF", "A"), ("INTF", "B"), ("INTCAP", "A"), ("INTCAP", "B")):
                pass  # read-only
            else:
                self.regs[key] = value
            self._advance()

    def read(self, length):
        self.reads += 1
        out = bytearray()
        for _ in range(length):
            key = self._key(self.pointer)
            if key in (("GPIO", "A"), ("GPIO", "B")):
                out.append(self._port_levels(key[1]))
            else:
                out.append(self.regs[key])
            self._advance()
        return bytes(out)
