"""MAX31855 as the Maxim datasheet describes it: a read-only 32-bit frame.

D31..D18 the thermocouple temperature (14-bit two's complement, 0.25 °C),
D17 reserved (0), D16 fault, D15..D4 the internal (cold-junction)
temperature (12-bit two's complement, 0.0625 °C), D3 reserved (0), D2 SCV,
D1 SCG, D0 OC (Table 2, "Memory Map—Bit Weights and Functions").  Clocking on
past D0 reads zeros.  An open thermocouple sets OC and the fault bit.
"""

from __future__ import annotations

from tests.support.spidev_fake import SpiChip

OC, SCG, SCV = 0x1, 0x2, 0x4


class MAX31855Chip(SpiChip):
    modes = (0,)

    def __init__(self, thermocouple: float = 25.0, internal: float = 25.0):
        super().__init__()
        self.thermocouple_code = round(thermocouple / 0.25) & 0x3FFF
        self.internal_code = round(internal / 0.0625) & 0xFFF
        self.faults = 0

    def set_thermocouple(self, celsius: float) -> None:
        self.thermocouple_code = round(celsius / 0.25) & 0x3FFF

    def frame(self) -> int:
        fault = 1 if self.faults else 0
        return self.thermocouple_code << 18 | fault << 16 | self.internal_code << 4 | self.faults

    def exchange(self, data: list[int]) -> list[int]:
        frame = self.frame().to_bytes(4, "big")
        return [frame[i] if i < 4 else 0 for i in range(len(data))]
