"""Microchip MCP9808 (datasheet DS25095): 16-bit registers MSB first, an 8-bit resolution register."""

from __future__ import annotations

import errno
import math
import time

from tests.support.smbus_fake import Chip, io_error

#: resolution register bits 1:0 -> tCONV in s (section 5.1.6 and the electrical characteristics)
CONVERSION = {0b00: 0.030, 0b01: 0.065, 0b10: 0.130, 0b11: 0.250}


class MCP9808Chip(Chip):
    """Pointer bits 3:0 select CONFIG 1, TUPPER 2, TLOWER 3, TCRIT 4, TA 5, manufacturer 6, device 7,
    resolution 8.  Converts continuously; TA reads 0000h until the first conversion after
    power-up or a resolution change is done, and carries the limit flags in bits 15:13.
    """

    def __init__(self, address=0x18, celsius=22.0, manufacturer=0x0054, device=0x0400, clock=time.monotonic):
        super().__init__(address)
        self.celsius = celsius
        self.raw = None  # a TA word to return as it is, flags and all
        self.clock = clock
        self.words = {1: 0x0000, 2: 0x0000, 3: 0x0000, 4: 0x0000, 5: 0x0000, 6: manufacturer, 7: device}
        self.resolution = 0b11
        self.pointer = 0
        self.written: list[tuple[int, int]] = []
        self._started = clock()

    def write(self, data):
        if not data:
            return
        self.pointer = data[0] & 0x0F
        if self.pointer > 8:
            raise io_error(errno.EREMOTEIO)
        if self.pointer == 8 and len(data) == 2:
            self.written.append((8, data[1]))
            self.resolution = data[1] & 0b11
            self.words[5], self._started = 0, self.clock()
        elif self.pointer in (1, 2, 3, 4) and len(data) == 3:
            value = data[1] << 8 | data[2]
            self.written.append((self.pointer, value))
            self.words[self.pointer] = value
        elif len(data) != 1:
            raise io_error(errno.EREMOTEIO)

    def ambient(self):
        if self.raw is not None:
            return self.raw
        if self.clock() < self._started + CONVERSION[self.resolution]:
            return self.words[5]
        drop = 3 - self.resolution  # unused low bits read 0 at coarser resolutions
        code = (math.floor(self.celsius * 16) >> drop) << drop
        flags = 0
        tcrit, tupper, tlower = (self._signed(self.words[n]) for n in (4, 2, 3))
        flags |= 0x8000 if code >= tcrit else 0
        flags |= 0x4000 if code > tupper else 0
        flags |= 0x2000 if code < tlower else 0
        self.words[5] = flags | (code & 0x1FFF)
        return self.words[5]

    @staticmethod
    def _signed(limit):
        code = (limit >> 2 & 0x7FF) << 2
        return code - 0x2000 if limit & 0x1000 else code

    def read(self, length):
        if self.pointer == 8:
            return bytes([self.resolution] * length)
        value = self.ambient() if self.pointer == 5 else self.words.get(self.pointer, 0)
        return bytes([value >> 8, value & 0xFF] * ((length + 1) // 2))[:length]
