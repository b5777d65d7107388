"""Vishay VEML7700 (datasheet doc. 84286, application note doc. 84323): 16-bit command
registers sent least significant byte first, continuous integration while ALS_SD = 0."""

from __future__ import annotations

import errno
import math
import time

from tests.support.smbus_fake import Chip, io_error

GAIN = {0b00: 1.0, 0b01: 2.0, 0b10: 0.125, 0b11: 0.25}
IT_MS = {0b1100: 25, 0b1000: 50, 0b0000: 100, 0b0001: 200, 0b0010: 400, 0b0011: 800}


class VEML7700Chip(Chip):
    """ALS_CONF 00h (power-on 0001h: shut down), PSM 03h, ALS 04h, WHITE 05h, ID 07h = C481h.

    ``linear_lux`` is the light the ALS count stands for before the application note's
    correction: the count is that divided by the resolution of the settings, at most FFFFh.
    Like the chip, it starts integrating 2.5 ms after ALS_SD is cleared; a result appears at
    the end of each integration period, made with the settings the period started with, so
    settings written while it runs only count from the next period.
    """

    def __init__(self, address=0x10, linear_lux=100.0, ident=0xC481, clock=time.monotonic):
        super().__init__(address)
        self.linear_lux, self.clock = linear_lux, clock
        self.words = {0: 0x0001, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 7: ident}
        self.pointer = 0
        self.written: list[tuple[int, int]] = []
        self.results: list[tuple[float, int, int]] = []  # (gain, ms, count) of each finished period
        self._period_start = None
        self._period_settings = 0

    @staticmethod
    def resolution(gain, ms):
        return 0.0036 * (2.0 / gain) * (800 / ms)

    def _settings(self, config):
        return GAIN[(config >> 11) & 0b11], IT_MS[(config >> 6) & 0b1111]

    def _run(self):
        now = self.clock()
        while self._period_start is not None:
            gain, ms = self._settings(self._period_settings)
            end = self._period_start + ms / 1000
            if now < end:
                return
            count = min(0xFFFF, math.floor(self.linear_lux / self.resolution(gain, ms)))
            self.words[4] = self.words[5] = count
            self.results.append((gain, ms, count))
            self._period_start, self._period_settings = end, self.words[0]

    def write(self, data):
        if not data:
            return
        self.pointer = data[0]
        if self.pointer > 7:
            raise io_error(errno.EREMOTEIO)
        if len(data) == 1:
            return
        if len(data) != 3 or self.pointer not in (0, 1, 2, 3):
            raise io_error(errno.EREMOTEIO)
        value = data[1] | data[2] << 8
        self.written.append((self.pointer, value))
        self._run()
        if self.pointer == 0:
            if IT_MS.get((value >> 6) & 0b1111) is None:
                raise io_error(errno.EREMOTEIO)
            was_off = self.words[0] & 0x0001
            self.words[0] = value
            if value & 0x0001:
                self._period_start = None
            elif was_off:
                self._period_start, self._period_settings = self.clock() + 0.0025, value
        else:
            self.words[self.pointer] = value

    def read(self, length):
        self._run()
        value = self.words.get(self.pointer, 0)
        return bytes([value & 0xFF, value >> 8] * ((length + 1) // 2))[:length]
