"""What the Sensirion drivers share: 16-bit commands, CRC-checked words, the conversions and the CO2 options."""

from __future__ import annotations

from typing import Any, Mapping

from .. import OptionError, ReadFailed
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


def check_co2_compensation(sensor: str, config: Mapping[str, Any], max_pressure: float) -> None:
    """Check the SCD30's and SCD4x's altitude, pressure, compensate_from and temperature_offset.

    Both take 0 to 3000 m and a fixed pressure from 700 hPa up to *max_pressure*
    (their datasheets differ there), or compensate_from instead of the pressure.
    """
    if not 0 <= config["altitude"] <= 3000:
        raise OptionError("altitude", f"sensor {sensor!r}: altitude must be 0 to 3000 m, not {config['altitude']}")
    if config["pressure"] and not 700.0 <= config["pressure"] <= max_pressure:
        raise OptionError(
            "pressure", f"sensor {sensor!r}: pressure must be 700 to {max_pressure:g} hPa, not {config['pressure']}"
        )
    if config["pressure"] and config["compensate_from"]:
        raise OptionError("pressure", f"sensor {sensor!r}: give either pressure or compensate_from, not both")
    if not 0.0 <= config["temperature_offset"] <= 20.0:
        raise OptionError("temperature_offset", f"sensor {sensor!r}: temperature_offset must be 0 to 20 °C")
