"""TI ADS1115: four analog inputs (or two differential pairs) in volts over I2C, 16 bits."""

from __future__ import annotations

from .. import register
from ._ads1x15 import ADS1x15, channel_options

#: samples per second -> DR[7:5] (ADS1115 datasheet SBAS444, config register table)
DATA_RATES = {8: 0b000, 16: 0b001, 32: 0b010, 64: 0b011, 128: 0b100, 250: 0b101, 475: 0b110, 860: 0b111}


@register
class ADS1115(ADS1x15):
    """An ADS1115 board: up to four voltages (soil moisture probes, batteries, potentiometers).

    Wire VDD to 3.3 V (pin 1), GND to ground, SDA to GPIO2 (pin 3), SCL to
    GPIO3 (pin 5).  The ADDR pin picks the address: GND 0x48, VDD 0x49, SDA
    0x4A, SCL 0x4B.  Never put more than VDD + 0.3 V on an input, whatever
    the gain.

    ``channels`` lists what to measure: ``"A0"`` .. ``"A3"`` against ground,
    or the pairs ``"A0-A1"``, ``"A0-A3"``, ``"A1-A3"``, ``"A2-A3"``
    differentially.  As a list the quantities are named ``a0``, ``a0_a1``;
    as a table (``channels = { battery = "A0" }``) you choose the names.
    ``gain`` sets the full-scale range: 2/3 = ±6.144 V, 1 = ±4.096 V,
    2 = ±2.048 V, 4 = ±1.024 V, 8 = ±0.512 V, 16 = ±0.256 V.  A reading at
    the end of the range is refused, since the real voltage may be higher.
    """

    name = "ads1115"
    summary = "TI ADS1115 16-bit ADC, 4 single-ended or 2 differential inputs in volts (I2C)"
    chip = "ADS1115"
    bits = 16
    data_rates = DATA_RATES
    options = channel_options(DATA_RATES, 128)
