"""TI ADS1015: four analog inputs (or two differential pairs) in volts over I2C, 12 bits, fast."""

from __future__ import annotations

from .. import DeviceNotFound, register
from ._ads1x15 import ADS1x15, channel_options

#: samples per second -> DR[7:5] (ADS1015 datasheet SBAS473, section 8.6.3, config register
#: table; 111 also selects 3300 SPS, so only 110 is used for it)
DATA_RATES = {128: 0b000, 250: 0b001, 490: 0b010, 920: 0b011, 1600: 0b100, 2400: 0b101, 3300: 0b110}


@register
class ADS1015(ADS1x15):
    """An ADS1015 board: up to four voltages, 12 bits, up to 3300 samples per second.

    The 12-bit sibling of the ADS1115, with the same pins, addresses and
    options: wire VDD to 3.3 V (pin 1), GND to ground, SDA to GPIO2 (pin 3),
    SCL to GPIO3 (pin 5); ADDR to GND 0x48, VDD 0x49, SDA 0x4A, SCL 0x4B.
    Never put more than VDD + 0.3 V on an input.

    ``channels``, ``gain`` and the names of the quantities work as for the
    ADS1115; one step is 2 mV at gain 1 (±4.096 V), 0.125 mV at gain 16.
    ``data_rate`` is 128, 250, 490, 920, 1600 (the chip's default), 2400 or
    3300 samples per second.  A board that is really an ADS1115 (it returns
    16-bit results) is refused with a hint to use ``driver = "ads1115"``.
    """

    name = "ads1015"
    summary = "TI ADS1015 12-bit ADC, 4 single-ended or 2 differential inputs in volts (I2C)"
    chip = "ADS1015"
    bits = 12
    data_rates = DATA_RATES
    options = channel_options(DATA_RATES, 1600)

    def check_result(self, word: int) -> None:
        # SBAS473, conversion register (section 8.6.2): bits 3:0 always read 0 on an ADS1015.
        if word & 0x000F:
            raise DeviceNotFound(
                f"{self.where()}: the conversion register holds a 16-bit result ({word:#06x}): "
                'this board carries an ADS1115, not an ADS1015; use driver = "ads1115"'
            )
