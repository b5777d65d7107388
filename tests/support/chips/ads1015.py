"""TI ADS1015 (datasheet SBAS473): the ADS1115's registers with 12-bit, left-justified results."""

from __future__ import annotations

import time

from tests.support.hardware_chips import ADS1115Chip


class ADS1015Chip(ADS1115Chip):
    """Conversion 0x00, config 0x01 (reset 0x8583: 1600 SPS); results in bits 15:4, bits 3:0 read 0.

    Section 8.6.3: DR[7:5] = 128, 250, 490, 920, 1600, 2400, 3300, 3300 SPS; one conversion
    takes 1 / DR.  Section 8.5.3 (data format): the result is clipped to 7FFh / 800h at the ends of the range.
    """

    SPS = {0: 128, 1: 250, 2: 490, 3: 920, 4: 1600, 5: 2400, 6: 3300, 7: 3300}

    def code(self, config):
        positive, negative = self.MUX[(config >> 12) & 0x07]
        volts = self.inputs[positive] - (self.inputs[negative] if negative is not None else 0.0)
        fsr = self.FSR[(config >> 9) & 0x07]
        return max(-2048, min(2047, round(volts / fsr * 2048))) << 4

    def write_register(self, pointer, value):
        if pointer != 0x01:
            return
        self.config = value & 0x7FFF
        if value & 0x8000 and value & 0x0100:
            self._done_at = time.monotonic() + 1.0 / self.SPS[(value >> 5) & 0x07]
