"""LM75 family (National/TI LM75, NXP LM75A/LM75B): a pointer byte, an 8-bit configuration
register and 16-bit temperature, T_HYST and T_OS registers, MSB first."""

from __future__ import annotations

import errno
import math
import time

from tests.support.smbus_fake import Chip, io_error


class LM75Chip(Chip):
    """Temperature 0, configuration 1 (bits 7:5 reserved), T_HYST 2 (75 °C), T_OS 3 (80 °C).

    ``bits`` = 9 (0.5 °C, D15..D7) or 11 (0.125 °C, D15..D5); the bits below the value read
    ``filler`` (the LM75 datasheets call them undefined).  The register reads 0 °C after
    power-up or shutdown until a conversion (``conversion_s``) has finished.  Reads longer
    than a register repeat it, as the chips do.
    """

    def __init__(self, address=0x48, celsius=21.0, bits=9, filler=0, conversion_s=0.1, clock=time.monotonic):
        super().__init__(address)
        self.celsius, self.bits, self.filler = celsius, bits, filler
        self.conversion_s, self.clock = conversion_s, clock
        self.config = 0x00
        self.words = {2: 75 << 8, 3: 80 << 8}
        self.pointer = 0
        self.written: list[tuple[int, int]] = []
        self._converted_at = clock() + conversion_s

    def write(self, data):
        if not data:
            return
        self.pointer = data[0] & 0x03
        if data[0] > 0x03:
            raise io_error(errno.EREMOTEIO)
        if self.pointer == 1 and len(data) >= 2:
            self.written.append((1, data[1]))
            if self.config & 0x01 and not data[1] & 0x01:
                self._converted_at = self.clock() + self.conversion_s
            self.config = data[1] & 0x1F
        elif self.pointer in (2, 3) and len(data) == 3:
            self.words[self.pointer] = data[1] << 8 | data[2]
        elif len(data) != 1:
            raise io_error(errno.EREMOTEIO)

    def temperature_word(self):
        if self.clock() < self._converted_at:
            return 0x0000
        shift = 16 - self.bits
        code = math.floor(self.celsius * (1 << (self.bits - 8)))
        return ((code << shift) | (self.filler & ((1 << shift) - 1))) & 0xFFFF

    def read(self, length):
        if self.pointer == 1:
            return bytes([self.config] * length)
        value = self.temperature_word() if self.pointer == 0 else self.words[self.pointer]
        return bytes([value >> 8, value & 0xFF] * ((length + 1) // 2))[:length]
