"""Nova Fitness SDS011 as its "Laser Dust Sensor Control Protocol V1.3" describes it.

Commands are 19 bytes: AA B4, 13 data bytes (the first the command id),
the device id (FF FF: any), a checksum (low 8 bits of the sum of the data
bytes and the id) and AB.  Replies and measurements are 10 bytes: AA, C5
(reply) or C0 (data), 6 data bytes, checksum of those, AB.  A measurement
is PM2.5 x 10 and PM10 x 10, each low byte first, then the device id.
Reporting mode, work/sleep and the working period are answered whether
queried or set; a sleeping sensor answers only the work/sleep command.
"""

from __future__ import annotations

from tests.support.serial_pty import SerialStandIn, take_command


def reply_frame(kind: int, data: bytes) -> bytes:
    return bytes([0xAA, kind]) + data + bytes([sum(data) & 0xFF, 0xAB])


def data_frame(pm2_5: float, pm10: float, device: bytes = b"\xa1\x60", corrupt: bool = False) -> bytes:
    data = round(pm2_5 * 10).to_bytes(2, "little") + round(pm10 * 10).to_bytes(2, "little") + device
    frame = bytearray(reply_frame(0xC0, data))
    if corrupt:
        frame[8] ^= 0x01
    return bytes(frame)


class SDS011StandIn(SerialStandIn):
    def __init__(self, pm2_5: float = 12.3, pm10: float = 45.6, period: float = 0.02, device: bytes = b"\xa1\x60"):
        super().__init__(period)
        self.pm2_5, self.pm10 = pm2_5, pm10
        self.device = device
        self.active_reporting = True
        self.awake = True
        self.work_period = 0
        self.flash_writes = 0
        self.commands: list[bytes] = []
        self.answering = True

    def frame(self) -> bytes | None:
        if not (self.awake and self.active_reporting):
            return None
        return data_frame(self.pm2_5, self.pm10, self.device)

    def on_bytes(self, pending: bytearray) -> None:
        while (cmd := take_command(pending, b"\xaa\xb4", 19)) is not None:
            if cmd[18] != 0xAB or sum(cmd[2:17]) & 0xFF != cmd[17]:
                continue
            self.commands.append(cmd)
            if cmd[15:17] not in (b"\xff\xff", self.device) or not self.answering:
                continue
            self._handle(cmd[2], cmd[3], cmd[4])

    def _handle(self, command_id: int, set_it: int, value: int) -> None:
        if not self.awake and command_id != 0x06:
            return
        if command_id == 0x02:
            if set_it:
                self.active_reporting = value == 0
                self.flash_writes += 1
            current = 0 if self.active_reporting else 1
        elif command_id == 0x06:
            if set_it:
                self.awake = value == 1
            current = 1 if self.awake else 0
        elif command_id == 0x08:
            if set_it:
                self.work_period = value
                self.flash_writes += 1
            current = self.work_period
        elif command_id == 0x04:
            self.send(data_frame(self.pm2_5, self.pm10, self.device))
            return
        else:
            return
        self.send(reply_frame(0xC5, bytes([command_id, set_it, current, 0]) + self.device))
