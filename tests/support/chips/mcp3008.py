"""MCP3008 / MCP3004 as the Microchip datasheet (DS21295) describes them, bit by bit.

The chip ignores DIN until the first 1 after chip select goes low (the start
bit), then takes SGL/DIFF and D2..D0, samples for one clock, drives a null
bit (0) and clocks out B9..B0 most significant first, then again least
significant first (B1..B9), then zeros (section 5.0, figures 5-1 and 6-1).
Before the null bit DOUT is high impedance and reads as the floating line.
The code is 1024 x VIN / VREF, clipped to 0..1023 (section 4.0, Equation 4-1);
a differential input with IN+ below IN- reads 0.
"""

from __future__ import annotations

from tests.support.spidev_fake import SpiChip


class MCP3008Chip(SpiChip):
    modes = (0, 3)

    def __init__(self, volts=None, vref: float = 3.3, channels: int = 8, floating: int = 1):
        super().__init__()
        self.channels = channels
        self.volts = list(volts or [0.0] * channels)
        self.vref = vref
        self.floating = floating
        self.conversions: list[tuple[bool, int]] = []

    def code(self, single: bool, select: int) -> int:
        if single:
            vin = self.volts[select]
        else:
            # Table 5-2: 000 is CH0 = IN+ / CH1 = IN-, 001 the other way round, and so on per pair.
            vin = self.volts[select] - self.volts[select ^ 1]
        return max(0, min(1023, int(1024 * vin / self.vref)))

    def exchange(self, data: list[int]) -> list[int]:
        bits_in = [(byte >> (7 - i)) & 1 for byte in data for i in range(8)]
        out = [self.floating] * len(bits_in)
        try:
            start = bits_in.index(1)
        except ValueError:
            return [0xFF if self.floating else 0x00] * len(data)
        if start + 4 < len(bits_in):
            single = bool(bits_in[start + 1])
            select = bits_in[start + 2] << 2 | bits_in[start + 3] << 1 | bits_in[start + 4]
            if self.channels == 4:
                select &= 0b011  # D2 is "don't care" on the MCP3004
            code = self.code(single, select)
            self.conversions.append((single, select))
            msb_first = [(code >> (9 - i)) & 1 for i in range(10)]
            stream = [0] + msb_first + msb_first[-2::-1]  # null bit, B9..B0, then B1..B9
            for offset, bit in enumerate(stream):
                index = start + 6 + offset
                if index < len(out):
                    out[index] = bit
            for index in range(start + 6 + len(stream), len(out)):
                out[index] = 0
        reply = []
        for i in range(0, len(out), 8):
            byte = 0
            for bit in out[i : i + 8]:
                byte = byte << 1 | bit
            reply.append(byte)
        return reply
