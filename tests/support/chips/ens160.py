"""ScioSense ENS160 as its datasheet (v0.95, December 2020, section 16) describes it.

PART_ID 0x0160 at 0x00 (LSB first); OPMODE at 0x10 (0x00 deep sleep, 0x01
idle, 0x02 standard, 0xF0 reset); TEMP_IN/RH_IN at 0x13/0x15 (kelvin x 64,
%RH x 512, LSB first); DEVICE_STATUS at 0x20 (STATAS bit 7, STATER bit 6,
validity bits 3:2, NEWDAT bit 1); DATA_AQI 0x21, DATA_TVOC 0x22, DATA_ECO2
0x24.  In standard mode a new result lands every second; reading the data
registers clears NEWDAT.  The validity flag is 1 (warm-up) for the first
``warm_up_s`` seconds of standard mode, then ``validity``.
"""

from __future__ import annotations

import time

from tests.support.smbus_fake import RegisterChip


class ENS160Chip(RegisterChip):
    def __init__(self, address=0x53, clock=time, part_id=0x0160, aqi=2, tvoc=150, eco2=600, validity=0,
                 warm_up_s=0.0):
        super().__init__(address)
        self.clock = clock
        self.aqi, self.tvoc, self.eco2 = aqi, tvoc, eco2
        self.validity, self.warm_up_s = validity, warm_up_s
        self.error = False
        self.mode = 0x00
        self.resets = 0
        self.started_at = 0.0
        self.taken = 0
        self.new_data = False
        self.compensation: list[tuple[int, int]] = []
        self.registers[0x00], self.registers[0x01] = part_id & 0xFF, part_id >> 8

    def on_write(self, register, value):
        if register == 0x10:
            if value == 0xF0:
                self.mode, self.error, self.resets = 0x00, False, self.resets + 1
            elif value in (0x00, 0x01, 0x02):
                if value == 0x02 and self.mode != 0x02:
                    self.started_at, self.taken, self.new_data = self.clock.monotonic(), 0, False
                self.mode = value
            return
        self.registers[register] = value
        if register == 0x16:  # the last byte of TEMP_IN + RH_IN
            r = self.registers
            self.compensation.append((r[0x14] << 8 | r[0x13], r[0x16] << 8 | r[0x15]))

    def _update(self):
        if self.mode != 0x02:
            return
        due = int((self.clock.monotonic() - self.started_at) // 1.0)
        if due > self.taken:
            self.taken, self.new_data = due, True
            r = self.registers
            r[0x21] = self.aqi
            r[0x22], r[0x23] = self.tvoc & 0xFF, self.tvoc >> 8
            r[0x24], r[0x25] = self.eco2 & 0xFF, self.eco2 >> 8

    def on_read(self, register):
        self._update()
        if register == 0x10:
            return self.mode
        if register == 0x20:
            warming = self.clock.monotonic() - self.started_at < self.warm_up_s
            validity = 1 if warming else self.validity
            return ((0x80 if self.mode == 0x02 else 0) | (0x40 if self.error else 0) | validity << 2
                    | (0x02 if self.new_data else 0))
        if 0x21 <= register <= 0x25:
            self.new_data = False
        return self.registers[register]
