"""TI TMP102 (datasheet SBOS397): the LM75 register map with a 16-bit configuration register."""

from __future__ import annotations

import errno
import math
import time

from tests.support.smbus_fake import Chip, io_error

#: CR1 CR0 -> conversions per second (SBOS397C "Conversion Rate")
RATES = {0b00: 0.25, 0b01: 1.0, 0b10: 4.0, 0b11: 8.0}


class TMP102Chip(Chip):
    """Configuration 60A0h at power-up: R1 R0 = 11 and AL read-only, bits 3:0 read 0.

    With SD = 1 a write of OS = 1 starts one conversion (26 ms); OS reads 0 until it is
    done.  Without SD the chip converts at the CR rate.  The temperature register is 12-bit
    (D15..D4) or, with EM = 1, 13-bit (D15..D3, bit 0 = 1); a change of EM shows in the
    register only after the next conversion.
    """

    def __init__(self, address=0x48, celsius=25.0, conversion_s=0.026, clock=time.monotonic):
        super().__init__(address)
        self.celsius, self.conversion_s, self.clock = celsius, conversion_s, clock
        self.config = 0x60A0
        self.words = {2: 75 << 8, 3: 80 << 8}
        self.pointer = 0
        self.written: list[tuple[int, int]] = []
        self.conversions = 0
        self.temperature = 0x0000
        self._one_shot_done = None
        self._continuous_from = clock()

    def _convert(self):
        self.conversions += 1
        if self.config & 0x0010:
            code = max(-0x1000, min(0x0FFF, math.floor(self.celsius * 16)))
            self.temperature = ((code << 3) | 0x01) & 0xFFFF
        else:
            code = max(-0x800, min(0x7FF, math.floor(self.celsius * 16)))
            self.temperature = (code << 4) & 0xFFFF

    def _run(self):
        now = self.clock()
        if self._one_shot_done is not None and now >= self._one_shot_done:
            self._one_shot_done = None
            self._convert()
        if not self.config & 0x0100 and now >= self._continuous_from + 1.0 / RATES[(self.config >> 6) & 0b11]:
            self._continuous_from = now
            self._convert()

    def write(self, data):
        if not data:
            return
        if data[0] > 0x03:
            raise io_error(errno.EREMOTEIO)
        self.pointer = data[0]
        if self.pointer == 1 and len(data) == 3:
            value = data[1] << 8 | data[2]
            self.written.append((1, value))
            self._run()
            if value & 0x8000 and value & 0x0100 and self._one_shot_done is None:
                self._one_shot_done = self.clock() + self.conversion_s
            self.config = (value & 0x1FD0) | 0x6000 | (self.config & 0x0020)
        elif self.pointer in (2, 3) and len(data) == 3:
            self.words[self.pointer] = data[1] << 8 | data[2]
        elif len(data) != 1:
            raise io_error(errno.EREMOTEIO)

    def read(self, length):
        self._run()
        if self.pointer == 0:
            value = self.temperature
        elif self.pointer == 1:
            value = self.config | (0 if self._one_shot_done is not None else 0x8000)
        else:
            value = self.words[self.pointer]
        return bytes([value >> 8, value & 0xFF] * ((length + 1) // 2))[:length]
