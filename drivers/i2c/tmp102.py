"""TI TMP102: temperature over I2C, 12 bits (13 in extended mode), one-shot conversions."""

from __future__ import annotations

import time

from .. import DeviceNotFound, Option, register
from ._bus import bus_options
from ._lm75 import REG_CONFIG, LM75Family, TemperatureFormat

ADDRESSES = (0x48, 0x49, 0x4A, 0x4B)
#: TMP102 datasheet SBOS397C, "Temperature Register", tables 5 and 6: 12-bit D15..D4, extended mode 13-bit D15..D3
NORMAL = TemperatureFormat(bits=12, shift=4, step=0.0625, low=-55.0, high=127.9375)
EXTENDED = TemperatureFormat(bits=13, shift=3, step=0.0625, low=-55.0, high=150.0)
# Configuration register (SBOS397C "Configuration Register"), first byte: OS R1 R0 F1 F0 POL TM SD;
# second byte: CR1 CR0 AL EM 0 0 0 0.
ONE_SHOT = 0x8000
RESOLUTION_BITS = 0x6000  # R1 R0 read 11 on every TMP102
SHUTDOWN = 0x0100
RATE_4HZ = 0x0080
ALERT = 0x0020  # read-only
EXTENDED_MODE = 0x0010
#: Conversion time: 26 ms typical, 35 ms maximum (electrical characteristics).
CONVERSION_S = 0.026
CONVERSION_MAX_S = 0.035


@register
class TMP102(LM75Family):
    """A TMP102 board: temperature in °C in 0.0625 °C steps, ±0.5 °C from -25 to 85 °C.

    Wire V+ to 3.3 V (pin 1), GND to ground, SDA to GPIO2 (pin 3), SCL to
    GPIO3 (pin 5).  The ADD0 pin picks the address: GND 0x48 (most boards),
    V+ 0x49, SDA 0x4A, SCL 0x4B.  The ALERT pin is not used.

    The chip sleeps between reads: each read starts one conversion (26 ms)
    and waits for it, so the chip does not warm itself.  The normal format
    ends at 127.9375 °C; ``extended_range = true`` switches to the 13-bit
    format that reaches 150 °C.  There is no id register: the driver checks
    the configuration bits that read the same on every TMP102.
    """

    name = "tmp102"
    summary = "TI TMP102 temperature, 0.0625 °C steps (I2C)"
    chip = "TMP102"
    addresses = ADDRESSES
    options = {
        **bus_options(ADDRESSES),
        "extended_range": Option(bool, False, "true: 13-bit extended mode, up to 150 °C"),
    }

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        self.format = EXTENDED if self.config["extended_range"] else NORMAL
        self.config_word = SHUTDOWN | RATE_4HZ | (EXTENDED_MODE if self.config["extended_range"] else 0)

    def min_interval(self) -> float:
        return CONVERSION_MAX_S

    @staticmethod
    def looks_like_tmp102(config: int) -> bool:
        """R1 R0 read 11 and the four lowest bits read 0, whatever was written."""
        return config & RESOLUTION_BITS == RESOLUTION_BITS and not config & 0x000F

    @classmethod
    def identify(cls, bus, address):
        try:
            high, low = bus.read_i2c_block_data(address, REG_CONFIG, 2)
        except OSError:
            return None
        return None if cls.looks_like_tmp102(high << 8 | low) else False

    def setup(self) -> None:
        self.write_word_be(REG_CONFIG, self.config_word)
        got = self.read_word_be(REG_CONFIG)
        if not self.looks_like_tmp102(got) or got & ~(ALERT | ONE_SHOT) != self.config_word | RESOLUTION_BITS:
            raise DeviceNotFound(
                f"{self.where()}: wrote configuration {self.config_word:#06x} and read back {got:#06x}; a TMP102 "
                "reads 1 in bits 14:13, 0 in bits 3:0 and keeps the rest: the chip at this address is not a TMP102 "
                "(it has no id register to say more)"
            )

    def measure(self) -> dict[str, float]:
        self.write_word_be(REG_CONFIG, self.config_word | ONE_SHOT)
        time.sleep(CONVERSION_S)
        # OS reads 0 while the one-shot conversion runs and 1 when it is done ("One-Shot/Conversion Ready").
        self.poll(lambda: self.read_word_be(REG_CONFIG) & ONE_SHOT, CONVERSION_MAX_S, "the one-shot conversion")
        return {"temperature": self.temperature()}
