"""TI INA3221 (datasheet SBOS576): three channels of shunt and bus voltage.

Register map (section 8.6): 00h configuration (reset 7127h: all three channels on, 1 average,
1.1 ms conversions, continuous), 01h/03h/05h shunt voltage of channels 1-3, 02h/04h/06h bus
voltage, each a 13-bit two's complement value in bits 15-3 (40 µV and 8 mV steps),
0Fh Mask/Enable (bit 0 conversion ready, cleared by reading it or writing the configuration),
FEh manufacturer id 5449h, FFh die id 3220h.  A disabled channel is not converted and reads 0;
one cycle takes averages x (bus + shunt conversion time) for every enabled channel.
"""

from __future__ import annotations

import errno
import time

from tests.support.hardware_chips import WordRegisterChip
from tests.support.smbus_fake import io_error

AVERAGES = (1, 4, 16, 64, 128, 256, 512, 1024)
CONVERSION_US = (140, 204, 332, 588, 1100, 2116, 4156, 8244)
RESET_CONFIG = 0x7127
ENABLE_BITS = {1: 0x4000, 2: 0x2000, 3: 0x1000}


def clamp13(value: int) -> int:
    return max(-4096, min(4095, value))


class INA3221Chip(WordRegisterChip):
    def __init__(self, address=0x40, shunt_raw=(0, 0, 0), bus_raw=(0, 0, 0), die_id=0x3220):
        super().__init__(address)
        self.shunt_raw, self.bus_raw = list(shunt_raw), list(bus_raw)  # 13-bit counts per channel
        self.die_id = die_id
        self.reset()

    def reset(self):
        self.config = RESET_CONFIG
        self._restart()

    def enabled(self, channel: int) -> bool:
        return bool(self.config & ENABLE_BITS[channel])

    def cycle_seconds(self):
        averages = AVERAGES[self.config >> 9 & 0x07]
        per_channel = CONVERSION_US[self.config >> 6 & 0x07] + CONVERSION_US[self.config >> 3 & 0x07]
        return averages * per_channel * sum(self.enabled(n) for n in (1, 2, 3)) / 1e6

    def _restart(self):
        self._ready_at = time.monotonic() + self.cycle_seconds()

    def write_register(self, pointer, value):
        if pointer == 0x00:
            if value & 0x8000:
                self.reset()
            else:
                self.config = value
                self._restart()
        elif not 0x07 <= pointer <= 0x11:
            raise io_error(errno.EREMOTEIO)

    def read_register(self, pointer):
        if pointer == 0x00:
            return self.config
        if 0x01 <= pointer <= 0x06:
            channel = (pointer + 1) // 2
            if not self.enabled(channel):
                return 0
            raw = self.shunt_raw[channel - 1] if pointer % 2 else self.bus_raw[channel - 1]
            return (clamp13(raw) << 3) & 0xFFF8
        if pointer == 0x0F:
            ready = time.monotonic() >= self._ready_at
            if ready:
                self._restart()
            return 0x0001 if ready else 0
        if 0x07 <= pointer <= 0x11:
            return 0
        if pointer == 0xFE:
            return 0x5449
        if pointer == 0xFF:
            return self.die_id
        raise io_error(errno.EREMOTEIO)
