"""Plantower PMS5003 / PMS7003 as the Plantower manual (PMS5003 series data manual, Appendix I and II) describes it.

Measurement frame (32 bytes): 42 4D, frame length 00 1C (2 x 13 + 2), 13
data words high byte first (PM1.0/PM2.5/PM10 CF=1, the same for the
atmospheric environment, particle counts above 0.3/0.5/1.0/2.5/5.0/10 µm
per 0.1 L, reserved), then the check word: the sum of all bytes before it.
Commands (7 bytes): 42 4D, CMD, DATAH, DATAL, check word.  E2 reads in
passive mode, E1 00/01 sets passive/active, E4 00/01 sleeps/wakes; mode
changes are answered with 42 4D 00 04 CMD DATAL and a check word.  An
active sensor streams; a sleeping one is silent.
"""

from __future__ import annotations

from tests.support.serial_pty import SerialStandIn

NAMES = ("pm1_0_cf1", "pm2_5_cf1", "pm10_cf1", "pm1_0", "pm2_5", "pm10", "particles_0_3um", "particles_0_5um",
         "particles_1_0um", "particles_2_5um", "particles_5_0um", "particles_10um")


def check_word(data: bytes) -> bytes:
    return (sum(data) & 0xFFFF).to_bytes(2, "big")


def measurement_frame(values: dict[str, int], reserved: int = 0x9700, corrupt: bool = False) -> bytes:
    body = b"\x42\x4d\x00\x1c" + b"".join(values[n].to_bytes(2, "big") for n in NAMES) + reserved.to_bytes(2, "big")
    check = check_word(body)
    if corrupt:
        check = bytes([check[0], check[1] ^ 0x01])
    return body + check


class PMS5003StandIn(SerialStandIn):
    def __init__(self, period: float = 0.02, **values: int):
        super().__init__(period)
        self.values = {n: 0 for n in NAMES}
        self.values.update(values)
        self.active = True
        self.asleep = False
        self.commands: list[bytes] = []
        self.bad_commands = 0

    def frame(self) -> bytes | None:
        if self.asleep or not self.active:
            return None
        return measurement_frame(self.values)

    def on_bytes(self, pending: bytearray) -> None:
        while True:
            start = pending.find(b"\x42\x4d")
            if start < 0:
                pending.clear()
                return
            del pending[:start]
            if len(pending) < 7:
                return
            cmd = bytes(pending[:7])
            del pending[:7]
            if check_word(cmd[:5]) != cmd[5:]:
                self.bad_commands += 1
                continue
            self.commands.append(cmd)
            code, data = cmd[2], cmd[3] << 8 | cmd[4]
            if code == 0xE4:
                self.asleep = data == 0
            elif self.asleep:
                continue
            elif code == 0xE1:
                self.active = data == 1
                answer = b"\x42\x4d\x00\x04" + bytes([code, data & 0xFF])
                self.send(answer + check_word(answer))
            elif code == 0xE2 and not self.active:
                self.send(measurement_frame(self.values))
