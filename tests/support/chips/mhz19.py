"""Winsen MH-Z19B / MH-Z19C as the Winsen manual (MH-Z19B user's manual V1.0, "Commands") describes it.

Commands are 9 bytes: FF, 01, the command, 5 data bytes, checksum (bytes
1..7 added, negated, plus one).  0x86 is answered with FF 86, the
concentration high and low byte, then (undocumented, as the sensors do)
temperature + 40 and a status byte, two zeros and the checksum.  0x79
switches ABC (A0 on, 00 off) and 0x99 sets the detection range (bytes 6-7)
without an answer.  Commands with a wrong checksum are ignored.
"""

from __future__ import annotations

from tests.support.serial_pty import SerialStandIn, take_command


def checksum(packet: bytes) -> int:
    return (0x100 - (sum(packet[1:8]) & 0xFF)) & 0xFF


class MHZ19StandIn(SerialStandIn):
    def __init__(self, co2: int = 612, temperature: int = 23):
        super().__init__(period=0.05)
        self.streaming = False
        self.co2 = co2
        self.temperature = temperature
        self.abc = True
        self.range = 5000
        self.answering = True
        self.corrupt = False
        self.noise = b""
        self.commands: list[bytes] = []

    def answer(self) -> bytes:
        packet = bytes([0xFF, 0x86, self.co2 >> 8, self.co2 & 0xFF, self.temperature + 40, 0x00, 0x00, 0x00])
        check = checksum(packet) ^ (0x01 if self.corrupt else 0)
        return packet + bytes([check])

    def on_bytes(self, pending: bytearray) -> None:
        while (cmd := take_command(pending, b"\xff\x01", 9)) is not None:
            if checksum(cmd) != cmd[8]:
                continue
            self.commands.append(cmd)
            if cmd[2] == 0x86 and self.answering:
                self.send(self.noise + self.answer())
            elif cmd[2] == 0x79:
                self.abc = cmd[3] == 0xA0
            elif cmd[2] == 0x99:
                self.range = cmd[6] << 8 | cmd[7]
