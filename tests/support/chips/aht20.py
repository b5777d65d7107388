"""Aosong AHT20 / AHT10 as the AHT20 datasheet (version 1.1) describes it, section 5.4.

A plain read returns the status byte (bit 7 busy, bit 3 calibration
enabled), then the 20-bit humidity and 20-bit temperature, then (AHT20
only) a CRC-8 over those six bytes (polynomial 0x31, start 0xFF).  0xBE
0x08 0x00 (AHT10: 0xE1 0x08 0x00) loads the calibration; 0xAC 0x33 0x00
starts a measurement that keeps the busy bit set for 80 ms; 0xBA resets.
"""

from __future__ import annotations

import errno
import time

from tests.support.hardware_chips import crc8_sensirion
from tests.support.smbus_fake import CommandChip, io_error


class AHT20Chip(CommandChip):
    def __init__(self, address=0x38, clock=time, model="aht20", raw_h=0x80000, raw_t=0x60000, calibrated=False):
        super().__init__(address)
        self.clock = clock
        self.model = model
        self.raw_h, self.raw_t = raw_h, raw_t
        self.calibrated = calibrated
        self.corrupt_crc = False
        self.busy_until = 0.0
        self.data = bytes(5)

    def on_command(self, data):
        init = (0xBE, 0x08, 0x00) if self.model == "aht20" else (0xE1, 0x08, 0x00)
        if tuple(data) == init:
            self.calibrated = True
        elif tuple(data) == (0xAC, 0x33, 0x00):
            self.busy_until = self.clock.monotonic() + 0.080
            h, t = self.raw_h, self.raw_t
            self.data = bytes([h >> 12, (h >> 4) & 0xFF, (h & 0x0F) << 4 | t >> 16, (t >> 8) & 0xFF, t & 0xFF])
        elif tuple(data) == (0xBA,):
            self.calibrated = False
        else:
            raise io_error(errno.EREMOTEIO)

    def on_read(self, length):
        busy = self.clock.monotonic() < self.busy_until
        frame = bytes([(0x80 if busy else 0) | (0x08 if self.calibrated else 0) | 0x10]) + self.data
        if self.model == "aht20":
            crc = crc8_sensirion(frame)
            frame += bytes([crc ^ 0x01 if self.corrupt_crc else crc])
        return frame
