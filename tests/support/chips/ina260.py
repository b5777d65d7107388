"""TI INA260 (datasheet SBOS656): current, bus voltage and power registers behind a 2 mΩ shunt.

Register map (section 8.6): 00h configuration (reset 6127h; bits 14-12 reserved, read 110b),
01h current (two's complement, 1.25 mA), 02h bus voltage (1.25 mV), 03h power (10 mW),
06h Mask/Enable (bit 3 conversion ready, cleared by reading it; bit 2 math overflow),
07h alert limit, FEh manufacturer id 5449h, FFh die id 2270h.  In continuous mode a new set of
results is ready every averages x (bus + shunt conversion time); power is the product of the
current and bus-voltage registers (section 8.3.3.1).
"""

from __future__ import annotations

import errno
import time

from tests.support.hardware_chips import WordRegisterChip
from tests.support.smbus_fake import io_error

AVERAGES = (1, 4, 16, 64, 128, 256, 512, 1024)
CONVERSION_US = (140, 204, 332, 588, 1100, 2116, 4156, 8244)
RESET_CONFIG = 0x6127


class INA260Chip(WordRegisterChip):
    def __init__(self, address=0x40, current_raw=0, bus_raw=0, die_id=0x2270, manufacturer=0x5449):
        super().__init__(address)
        self.current_raw, self.bus_raw = current_raw, bus_raw
        self.die_id, self.manufacturer = die_id, manufacturer
        self.overflow = False
        self.resets = 0
        self.reset()

    def reset(self):
        """Power-on or bit 15: every register back to its reset value."""
        self.resets += 1
        self.config = RESET_CONFIG
        self.mask_enable = 0
        self._restart()

    def cycle_seconds(self):
        averages = AVERAGES[self.config >> 9 & 0x07]
        bus_us = CONVERSION_US[self.config >> 6 & 0x07]
        shunt_us = CONVERSION_US[self.config >> 3 & 0x07]
        return averages * (bus_us + shunt_us) / 1e6

    def _restart(self):
        self._ready_at = time.monotonic() + self.cycle_seconds()

    def power_raw(self):
        # Power = Current x Bus voltage; in register steps 1.25 mA x 1.25 mV / 10 mW = 1 / 6400.
        return min(abs(self.current_raw) * self.bus_raw // 6400, 0xFFFF)

    def write_register(self, pointer, value):
        if pointer == 0x00:
            if value & 0x8000:
                self.reset()
            else:
                self.config = 0x6000 | (value & 0x0FFF)  # the reserved bits keep reading 110b
                self._restart()
        elif pointer == 0x06:
            self.mask_enable = value & 0xFC03
        elif pointer != 0x07:
            raise io_error(errno.EREMOTEIO)

    def read_register(self, pointer):
        if pointer == 0x00:
            return self.config
        if pointer == 0x01:
            return self.current_raw & 0xFFFF
        if pointer == 0x02:
            return self.bus_raw & 0xFFFF
        if pointer == 0x03:
            return self.power_raw()
        if pointer == 0x06:
            ready = time.monotonic() >= self._ready_at
            if ready:
                self._restart()  # reading clears the flag until the next set of results
            return self.mask_enable | (0x0008 if ready else 0) | (0x0004 if self.overflow else 0)
        if pointer == 0x07:
            return 0
        if pointer == 0xFE:
            return self.manufacturer
        if pointer == 0xFF:
            return self.die_id
        raise io_error(errno.EREMOTEIO)
