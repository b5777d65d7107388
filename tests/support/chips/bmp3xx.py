"""Bosch BMP388 / BMP390 as the BMP388 datasheet (BST-BMP388-DS001) describes it, in forced mode.

Chip id at 0x00 (0x50 BMP388, 0x60 BMP390), ERR_REG 0x02, STATUS 0x03
(drdy_press bit 5, drdy_temp bit 6), data 0x04..0x09 (pressure then
temperature, 24 bits each, least significant byte first), PWR_CTRL 0x1B
(press_en, temp_en, mode bits 5:4), OSR 0x1C, trimming coefficients at
0x31..0x45, soft reset 0xB6 to CMD 0x7E.  A forced measurement takes the
section 3.9.2 conversion time, then the chip is back in sleep mode with
both data-ready bits set; reading the data clears them.
"""

from __future__ import annotations

import time

from tests.support.smbus_fake import RegisterChip

#: NVM_PAR_T1 .. NVM_PAR_P11 of a real BMP388, with its raw data: 100876.006 Pa and 30.4993 °C
#: (the elixir-sensors/bmp3xx test suite, computed with the datasheet's section 9 formulas).
REFERENCE_NVM = bytes.fromhex("236B5849F65CFFCEF42300EA636E79F3F6AA4312C4")
REFERENCE_DATA = bytes.fromhex("979F6D73D885")


class BMP3Chip(RegisterChip):
    def __init__(self, address=0x77, clock=time, chip_id=0x50, nvm=REFERENCE_NVM, data=REFERENCE_DATA):
        super().__init__(address)
        self.clock = clock
        self.chip_id, self.nvm, self.data = chip_id, bytes(nvm), bytes(data)
        self.error = 0
        self.measurements = 0
        self._done_at = None
        self._reset()

    def _reset(self):
        r = self.registers
        r[:] = bytes(len(r))
        r[0x00] = self.chip_id
        r[0x31:0x46] = self.nvm
        r[0x03] = 0x10  # cmd_rdy
        self._done_at = None

    def _conversion_s(self):
        osr = self.registers[0x1C]
        return (234 + 392 + (1 << (osr & 0x07)) * 2020 + 163 + (1 << (osr >> 3 & 0x07)) * 2020) / 1e6

    def on_write(self, register, value):
        if register == 0x7E:
            if value == 0xB6:
                self._reset()
            return
        self.registers[register] = value
        if register == 0x1B and (value >> 4) & 0x03 in (0b01, 0b10) and value & 0x03 == 0x03:
            self._done_at = self.clock.monotonic() + self._conversion_s()
            self.registers[0x03] &= ~0x60

    def on_read(self, register):
        if self._done_at is not None and self.clock.monotonic() >= self._done_at:
            self._done_at = None
            self.measurements += 1
            self.registers[0x04:0x0A] = self.data
            self.registers[0x03] |= 0x60
            self.registers[0x1B] &= 0x0F  # back to sleep
        if register == 0x02:
            return self.error
        if 0x04 <= register <= 0x09:
            self.registers[0x03] &= ~0x60
        return self.registers[register]
