"""Sensirion SGP40 as its datasheet (version 1.0, July 2020) describes it, Tables 9 to 15.

measure_raw_signal (0x260F) takes two argument words with CRC, humidity
and temperature ticks, and answers one word after 30 ms; execute_self_test
(0x280E) answers 0xD400 (all passed) or 0x4B00 after 320 ms; turn heater
off (0x3615) idles the hot plate; get_serial_number (0x3682) answers three
words.  Reads before the answer is ready, a wrong argument CRC or an
unknown command are not acknowledged.
"""

from __future__ import annotations

import errno
import time

from tests.support.chips.sensirion import SensirionCommandChip
from tests.support.smbus_fake import io_error


class SGP40Chip(SensirionCommandChip):
    def __init__(self, address=0x59, clock=time, raw=30000, self_test=0xD400, serial=(0x0000, 0x0123, 0x4567)):
        super().__init__(address, clock)
        self.raw = raw
        self.self_test = self_test
        self.serial = serial
        self.heating = False
        self.compensation: list[tuple[int, int]] = []

    def run(self, command, args):
        if command == 0x260F:
            if len(args) != 2:
                raise io_error(errno.EREMOTEIO)
            self.compensation.append((args[0], args[1]))
            self.heating = True
            raw = self.raw() if callable(self.raw) else self.raw
            self.answer(raw, after=0.030)
        elif command == 0x280E:
            self.answer(self.self_test, after=0.320)
        elif command == 0x3615:
            self.heating = False
            self.response = b""
        elif command == 0x3682:
            self.answer(*self.serial, after=0.001)
        else:
            raise io_error(errno.EREMOTEIO)
