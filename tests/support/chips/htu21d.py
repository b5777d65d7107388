"""HTU21D / SHT21 / Si7021 as their datasheets describe them: "no hold master" measurements.

0xF3 / 0xF5 start a temperature / humidity conversion; until it is done
the chip does not acknowledge a read (HTU21D datasheet, "No hold master
mode"); then a read gives MSB, LSB (bit 1: 0 temperature, 1 humidity) and
a CRC-8 (polynomial 0x31, start 0).  0xE7 reads and 0xE6 writes the user
register (power-on value 0x02 on the HTU21D/SHT21, 0x3A on the Si7021);
0xFE resets it.
"""

from __future__ import annotations

import errno
import time

from pibridge.drivers._crc import htu21d_crc8
from tests.support.smbus_fake import CommandChip, io_error

CONVERSION_S = {0xF3: 0.050, 0xF5: 0.016}


class HTU21DChip(CommandChip):
    def __init__(self, address=0x40, clock=time, t_word=0x683A, rh_word=0x7C80, user_default=0x02):
        super().__init__(address)
        self.clock = clock
        self.t_word, self.rh_word = t_word, rh_word
        self.user_default = user_default
        self.user = user_default
        self.end_of_battery = False
        self.corrupt_crc = False
        self._pending = None

    def on_command(self, data):
        op = data[0]
        if op in CONVERSION_S and len(data) == 1:
            word = self.t_word if op == 0xF3 else self.rh_word
            kind = 0x02 if op == 0xF5 else 0x00
            word = (word & 0xFFFC) | kind
            self._pending = (self.clock.monotonic() + CONVERSION_S[op], word)
        elif op == 0xE7 and len(data) == 1:
            user = self.user | (0x40 if self.end_of_battery else 0)
            self.response = bytes([user])
        elif op == 0xE6 and len(data) == 2:
            self.user = (self.user & 0x38) | (data[1] & ~0x38 & 0xC7)  # reserved bits keep their value
        elif op == 0xFE and len(data) == 1:
            self.user, self._pending = self.user_default, None
        else:
            raise io_error(errno.EREMOTEIO)

    def on_read(self, length):
        if self._pending is None:
            if self.response:
                data, self.response = self.response, b""
                return data
            raise io_error(errno.EREMOTEIO)
        ready_at, word = self._pending
        if self.clock.monotonic() < ready_at:
            raise io_error(errno.EREMOTEIO)
        self._pending = None
        pair = bytes([word >> 8, word & 0xFF])
        crc = htu21d_crc8(pair)
        return pair + bytes([crc ^ 0x01 if self.corrupt_crc else crc])
