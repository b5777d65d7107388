"""ams TSL2591 (datasheet DS000338): a command byte selects the register, reads auto-increment."""

from __future__ import annotations

import errno
import math
import time

from tests.support.smbus_fake import Chip, io_error

GAIN = {0b00: 1.0, 0b01: 25.0, 0b10: 428.0, 0b11: 9876.0}
#: ATIME bits -> (integration ms, full-scale count): the datasheet's ATIME table
ATIME = {0b000: (100, 37888), 0b001: (200, 65535), 0b010: (300, 65535), 0b011: (400, 65535),
         0b100: (500, 65535), 0b101: (600, 65535)}


class TSL2591Chip(Chip):
    """ENABLE 00h, CONTROL 01h, ID 12h = 50h, STATUS 13h (AVALID bit 0), C0DATAL..C1DATAH 14h-17h.

    Every transfer starts with a command byte: CMD (bit 7) = 1 and TRANSACTION (bits 6:5) =
    01 for register access or 11 for special functions; anything else is not acknowledged.
    ``full`` and ``infrared`` are the counts of CH0 and CH1 at low gain and 100 ms; the chip
    scales them by the gain and the integration time and clips them at the full scale.
    AVALID is set once an integration has completed after AEN was set.
    """

    def __init__(self, address=0x29, full=400.0, infrared=80.0, chip_id=0x50, clock=time.monotonic):
        super().__init__(address)
        self.full, self.infrared, self.clock = full, infrared, clock
        self.registers = bytearray(0x20)
        self.registers[0x12] = chip_id
        self.pointer = 0
        self.integrations = 0
        self._valid_at = None

    def _run(self):
        if self._valid_at is not None and self.clock() >= self._valid_at:
            self._valid_at = None
            self.integrations += 1
            control = self.registers[0x01]
            ms, full_scale = ATIME[control & 0x07]
            scale = GAIN[(control >> 4) & 0x03] * ms / 100
            for register, base in ((0x14, self.full), (0x16, self.infrared)):
                count = min(full_scale, math.floor(base * scale))
                self.registers[register], self.registers[register + 1] = count & 0xFF, count >> 8
            self.registers[0x13] |= 0x01

    def write(self, data):
        if not data:
            return
        command = data[0]
        if not command & 0x80 or (command >> 5) & 0x03 not in (0b01, 0b11):
            raise io_error(errno.EREMOTEIO)
        if (command >> 5) & 0x03 == 0b11:
            return  # special function (interrupt clear): nothing to emulate
        self.pointer = command & 0x1F
        self._run()
        for value in data[1:]:
            self._write_register(self.pointer, value)
            self.pointer = (self.pointer + 1) & 0x1F

    def _write_register(self, register, value):
        if register == 0x00:
            was_on = self.registers[0] & 0x03 == 0x03
            self.registers[0] = value
            if value & 0x03 == 0x03 and not was_on:
                ms = ATIME[self.registers[0x01] & 0x07][0]
                self._valid_at = self.clock() + ms / 1000
                self.registers[0x13] &= ~0x01
            elif value & 0x03 != 0x03:
                self._valid_at = None
        elif register == 0x01:
            if value & 0x80:  # SRESET
                self.registers[0x00] = self.registers[0x01] = 0
                self._valid_at = None
            else:
                self.registers[0x01] = value & 0x37
        elif register in (0x12, 0x13) or register >= 0x14:
            pass  # read-only
        else:
            self.registers[register] = value

    def read(self, length):
        self._run()
        out = bytearray()
        for _ in range(length):
            out.append(self.registers[self.pointer])
            self.pointer = (self.pointer + 1) & 0x1F
        return bytes(out)
