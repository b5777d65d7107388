"""Sensirion SCD30 as its Interface Description (version 1.0, May 2020) describes it.

Section 1.4's commands: continuous measurement with an optional ambient
pressure (0 or 700..1400 mbar), a measurement interval of 2..1800 s, the
data-ready word, and read measurement returning CO2, temperature and
humidity as big-endian IEEE-754 floats, two CRC-protected words each
(section 1.5).  Settings with a "get" form are read back by sending the
command without argument.  Reads before data is ready are answered with
the data-ready word 0 and a read_measurement then is not acknowledged.
"""

from __future__ import annotations

import errno
import struct
import time

from tests.support.chips.sensirion import SensirionCommandChip
from tests.support.smbus_fake import io_error

#: Section 1.5's example: 439.09 ppm, 27.24 °C, 48.81 %RH.
EXAMPLE_WORDS = (0x43DB, 0x8C2E, 0x41D9, 0xE7FF, 0x4243, 0x3A1B)


def float_words(value: float) -> tuple[int, int]:
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return high, low


class SCD30Chip(SensirionCommandChip):
    def __init__(self, address=0x61, clock=time, words=EXAMPLE_WORDS, firmware=0x0342):
        super().__init__(address, clock)
        self.words = tuple(words)
        self.firmware = firmware
        self.interval = 2
        self.altitude = 0
        self.temperature_offset = 0
        self.asc = 0
        self.pressure: int | None = None
        self.measuring = False
        self.started_at = 0.0
        self.taken = 0
        self.ready = False
        self.flash_writes = 0
        self.triggers: list[int] = []

    def _update(self):
        if self.measuring:
            due = int((self.clock.monotonic() - self.started_at) // self.interval)
            if due > self.taken:
                self.taken, self.ready = due, True

    def _setting(self, name, args, low, high):
        if not args:
            self.answer(getattr(self, name), after=0.003)
            return
        (value,) = args
        if not low <= value <= high:
            raise io_error(errno.EREMOTEIO)
        setattr(self, name, value)
        self.flash_writes += 1

    def run(self, command, args):
        self._update()
        self.response = b""
        if command == 0x0010:
            (pressure,) = args
            if pressure and not 700 <= pressure <= 1400:
                raise io_error(errno.EREMOTEIO)
            self.pressure = pressure
            self.triggers.append(pressure)
            self.measuring, self.started_at, self.taken, self.ready = True, self.clock.monotonic(), 0, False
        elif command == 0x0104:
            self.measuring = False
        elif command == 0x4600:
            self._setting("interval", args, 2, 1800)
        elif command == 0x5102:
            self._setting("altitude", args, 0, 65535)
        elif command == 0x5403:
            self._setting("temperature_offset", args, 0, 65535)
        elif command == 0x5306:
            self._setting("asc", args, 0, 1)
        elif command == 0x0202:
            self.answer(1 if self.ready else 0, after=0.003)
        elif command == 0x0300:
            if not self.ready:
                raise io_error(errno.EREMOTEIO)
            self.ready = False
            self.answer(*self.words, after=0.003)
        elif command == 0xD100:
            self.answer(self.firmware, after=0.003)
        else:
            raise io_error(errno.EREMOTEIO)
