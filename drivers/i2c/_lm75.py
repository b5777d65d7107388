"""What the LM75 and the TMP102 share: the register map and the temperature register format.

Both have a pointer register selecting temperature (0), configuration (1), T_HYST (2) and
T_OS/T_HIGH (3); the temperature register is a two's complement number, most significant
byte first, left-justified: 9 bits in 0.5 °C steps on the LM75 (D15..D7), 11 bits in
0.125 °C on the NXP LM75A/LM75B (D15..D5), 12 bits in 0.0625 °C on the TMP102 (D15..D4)
and 13 bits in 0.0625 °C in the TMP102's extended mode (D15..D3, which moves the value one
bit to the right).  Neither chip has an id register.
"""

from __future__ import annotations

from dataclasses import dataclass

from pibridge.readings import Quantity

from .. import ValueRejected
from .._bits import signed
from ._bus import I2CDriver

REG_TEMPERATURE = 0x00
REG_CONFIG = 0x01
#: Every LM75-compatible chip answers at 0x48 .. 0x4F, selected by A0..A2.
LM75_ADDRESSES = tuple(range(0x48, 0x50))


@dataclass(frozen=True)
class TemperatureFormat:
    """Where the value sits in the temperature register and what one step is worth."""

    bits: int
    shift: int  # right shift that leaves the value's least significant bit at bit 0
    step: float  # °C per step
    low: float  # the chip's specified range in °C
    high: float

    def celsius(self, word: int) -> float:
        return (signed(word, 16) >> self.shift) * self.step


class LM75Family(I2CDriver):
    """Base of the ``lm75`` and ``tmp102`` drivers: one temperature register, no id register."""

    provides = (Quantity("temperature", "°C", "temperature of the chip's package"),)
    format: TemperatureFormat

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    def temperature(self) -> float:
        """Read the temperature register and check it against the chip's range."""
        temperature = self.format.celsius(self.read_word_be(REG_TEMPERATURE))
        if not self.format.low <= temperature <= self.format.high:
            raise ValueRejected(
                f"{self.where()}: temperature {temperature:g} °C is outside the chip's range "
                f"({self.format.low:g} to {self.format.high:g} °C)"
            )
        return temperature
