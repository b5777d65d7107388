"""What the Sensirion stand-ins share: 16-bit commands with CRC-checked arguments, CRC-protected answers.

As on the chips (SCD4x datasheet section 3.3, SGP40 datasheet section 4.4):
a write is a 16-bit command, optionally followed by argument words each
with its CRC-8; a wrong argument CRC or an unknown command is not
acknowledged; a read before the answer is ready is not acknowledged either.
"""

from __future__ import annotations

import errno
import time

from tests.support.hardware_chips import crc8_sensirion
from tests.support.smbus_fake import CommandChip, io_error


def words_with_crc(*words: int, corrupt: bool = False) -> bytes:
    out = bytearray()
    for word in words:
        pair = bytes([word >> 8 & 0xFF, word & 0xFF])
        crc = crc8_sensirion(pair)
        out += pair + bytes([crc ^ 0x01 if corrupt else crc])
    return bytes(out)


class SensirionCommandChip(CommandChip):
    """A chip taking ``command [word crc]*`` writes; subclasses implement :meth:`run`."""

    def __init__(self, address: int, clock=time):
        super().__init__(address)
        self.clock = clock
        self.corrupt_crc = False
        self._ready_at = 0.0

    def on_command(self, data: bytes) -> None:
        if len(data) < 2 or (len(data) - 2) % 3:
            raise io_error(errno.EREMOTEIO)
        words = []
        for i in range(2, len(data), 3):
            pair = data[i : i + 2]
            if crc8_sensirion(pair) != data[i + 2]:
                raise io_error(errno.EREMOTEIO)
            words.append(pair[0] << 8 | pair[1])
        self.run(data[0] << 8 | data[1], words)

    def run(self, command: int, args: list[int]) -> None:
        raise NotImplementedError

    def answer(self, *words: int, after: float = 0.0) -> None:
        self.response = words_with_crc(*words, corrupt=self.corrupt_crc)
        self._ready_at = self.clock.monotonic() + after

    def on_read(self, length: int) -> bytes:
        if not self.response or self.clock.monotonic() < self._ready_at:
            raise io_error(errno.EREMOTEIO)
        data, self.response = self.response, b""
        return data
