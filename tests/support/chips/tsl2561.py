"""TAOS TSL2561 (datasheet TAOS059): a command byte selects the register; no status register."""

from __future__ import annotations

import errno
import math
import time

from tests.support.smbus_fake import Chip, io_error

#: INTEG bits -> (nominal ms, oscillator cycles /918, full-scale count)
INTEGRATION = {0b00: (13.7, 11, 5047), 0b01: (101.0, 81, 37177), 0b10: (402.0, 322, 65535)}


class TSL2561Chip(Chip):
    """CONTROL 0h (POWER bits 1:0), TIMING 1h (GAIN bit 4, INTEG bits 1:0; 02h at power-up),
    ID Ah (50h: TSL2561T/FN/CL, 10h: TSL2561CS), DATA0LOW..DATA1HIGH Ch-Fh.

    Every transfer starts with a command byte with CMD (bit 7) set, else it is not
    acknowledged.  ``full`` and ``infrared`` are the counts of channel 0 and 1 at 16x gain
    and 402 ms; the chip scales them by the gain and the integration time and clips them at
    the full scale.  Data appear one integration time after power-up, and again every one.
    """

    def __init__(self, address=0x39, full=1000.0, infrared=200.0, ident=0x50, clock=time.monotonic):
        super().__init__(address)
        self.full, self.infrared, self.clock = full, infrared, clock
        self.registers = bytearray(16)
        self.registers[0x1] = 0x02
        self.registers[0xA] = ident
        self.pointer = 0
        self.integrations = 0
        self._powered_at = None

    def _run(self):
        if self._powered_at is None:
            return
        ms, cycles, full_scale = INTEGRATION[self.registers[0x1] & 0x03]
        done = math.floor((self.clock() - self._powered_at) / (ms / 1000))
        if done > self.integrations:
            self.integrations = done
            scale = cycles / 322 * (1 if self.registers[0x1] & 0x10 else 1 / 16)
            for register, base in ((0xC, self.full), (0xE, self.infrared)):
                count = min(full_scale, math.floor(base * scale))
                self.registers[register], self.registers[register + 1] = count & 0xFF, count >> 8

    def write(self, data):
        if not data:
            return
        if not data[0] & 0x80:
            raise io_error(errno.EREMOTEIO)
        self.pointer = data[0] & 0x0F
        self._run()
        for value in data[1:]:
            if self.pointer == 0x0:
                power = value & 0x03
                if power == 0x03 and self._powered_at is None:
                    self._powered_at, self.integrations = self.clock(), 0
                elif power == 0x00:
                    self._powered_at = None
                self.registers[0x0] = power
            elif self.pointer == 0x1:
                self.registers[0x1] = value & 0x1B
            elif self.pointer in (0x2, 0x3, 0x4, 0x5, 0x6):
                self.registers[self.pointer] = value
            self.pointer = (self.pointer + 1) & 0x0F

    def read(self, length):
        self._run()
        out = bytearray()
        for _ in range(length):
            out.append(self.registers[self.pointer])
            self.pointer = (self.pointer + 1) & 0x0F
        return bytes(out)
