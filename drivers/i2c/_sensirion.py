"""What the Sensirion drivers share: 16-bit commands, CRC-checked words and the conversions."""

from __future__ import annotations

from .. import ReadFailed
from .._crc import sensirion_crc8
from ._bus import I2CDriver


class SensirionDriver(I2CDriver):
    """A chip that answers with 16-bit words, each followed by its CRC-8."""

    def command(self, code: int, *words: int) -> None:
        """Send a 16-bit command and its argument words, each word followed by its CRC-8
        (SCD4x datasheet section 3.3, SGP40 datasheet section 4.4)."""
        data = [code >> 8, code & 0xFF]
        for word in words:
            pair = [(word >> 8) & 0xFF, word & 0xFF]
            data += pair + [sensirion_crc8(pair)]
        self.send(*data)

    def read_words(self, count: int, what: str) -> list[int]:
        data = self.receive(3 * count)
        words = []
        for i in range(0, 3 * count, 3):
            pair, crc = data[i : i + 2], data[i + 2]
            expected = sensirion_crc8(pair)
            if crc != expected:
                raise ReadFailed(
                    f"{self.where()}: CRC mismatch in the {what} (got {crc:#04x}, expected {expected:#04x} "
                    f"for {pair.hex()}): noise on the bus; keep I2C wires short and check the pull-ups"
                )
            words.append(pair[0] << 8 | pair[1])
        return words


def celsius(raw: int) -> float:
    """T = -45 + 175 * S / (2^16 - 1): SHT3x datasheet section 4.13 and the SHT4x datasheet, "Conversion of Signal Output"."""
    return -45.0 + 175.0 * raw / 65535.0
