"""Sensirion SCD40/SCD41 as the SCD4x datasheet (version 1.3, September 2022) describes it.

Commands and execution times from section 3.4, Table 9.  In periodic mode a
new measurement lands every 5 s (low power: 30 s) and the chip takes only
the commands Table 9 marks "during measurement"; everything else is not
acknowledged.  read_measurement empties the buffer; with nothing in it the
read is not acknowledged.  Single shot (SCD41 only) takes 5 s.
"""

from __future__ import annotations

import errno
import time

from tests.support.chips.sensirion import SensirionCommandChip
from tests.support.smbus_fake import io_error

ALLOWED_WHILE_MEASURING = {0xEC05, 0x3F86, 0xE000, 0xE4B8}

#: get_sensor_variant words: bits 15:12 give the model
SCD40, SCD41 = 0x0440, 0x1440


class SCD4xChip(SensirionCommandChip):
    def __init__(self, address=0x62, clock=time, co2=0x01F4, t_raw=0x6667, rh_raw=0x5EB9,
                 variant: int | None = SCD41, serial=(0xF896, 0x9F07, 0x3BB9)):
        super().__init__(address, clock)
        self.co2, self.t_raw, self.rh_raw = co2, t_raw, rh_raw
        self.variant = variant
        self.serial = serial
        self.period: float | None = None
        self.started_at = 0.0
        self.buffer: tuple[int, int, int] | None = None
        self.taken = 0  # measurements handed out, to tell when the next lands
        self.busy_until = 0.0
        self.single_shot_at: float | None = None
        self.temperature_offset = round(4.0 * 65535 / 175)
        self.altitude = 0
        self.ambient_pressure: int | None = None
        self.pressures: list[int] = []
        self.asc = 1

    @property
    def measuring(self) -> bool:
        return self.period is not None

    def _update(self) -> None:
        now = self.clock.monotonic()
        if self.period is not None:
            due = int((now - self.started_at) // self.period)
            if due > self.taken:
                self.taken = due
                self.buffer = (self.co2, self.t_raw, self.rh_raw)
        if self.single_shot_at is not None and now >= self.single_shot_at:
            self.single_shot_at = None
            self.buffer = (self.co2, self.t_raw, self.rh_raw)

    def run(self, command, args):
        now = self.clock.monotonic()
        self._update()
        if now < self.busy_until:
            raise io_error(errno.EREMOTEIO)  # still executing the previous command
        if self.measuring and command not in ALLOWED_WHILE_MEASURING:
            raise io_error(errno.EREMOTEIO)
        self.response = b""
        if command == 0x21B1 or command == 0x21AC:
            self.period = 5.0 if command == 0x21B1 else 30.0
            self.started_at, self.taken, self.buffer = now, 0, None
        elif command == 0x3F86:
            self.period = None
            self.busy_until = now + 0.5
        elif command == 0xEC05:
            if self.buffer is None:
                raise io_error(errno.EREMOTEIO)
            self.answer(*self.buffer, after=0.001)
            self.buffer = None
        elif command == 0xE4B8:
            self.answer(0x8006 if self.buffer is not None else 0x8000, after=0.001)
        elif command == 0x3682:
            self.answer(*self.serial, after=0.001)
        elif command == 0x202F:
            if self.variant is None:
                raise io_error(errno.EREMOTEIO)
            self.answer(self.variant, after=0.001)
        elif command == 0x241D:
            (self.temperature_offset,) = args
        elif command == 0x2427:
            (self.altitude,) = args
        elif command == 0xE000:
            (self.ambient_pressure,) = args
            self.pressures.append(self.ambient_pressure)
        elif command == 0x2416:
            (self.asc,) = args
        elif command == 0x219D:
            if self.variant is not None and self.variant >> 12 == 0:
                raise io_error(errno.EREMOTEIO)  # the SCD40 has no single shot
            self.single_shot_at = now + 5.0
            self.busy_until = now + 5.0
        else:
            raise io_error(errno.EREMOTEIO)

    def on_read(self, length):
        self._update()
        return super().on_read(length)
