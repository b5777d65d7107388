"""LM75 and compatibles (TI/National LM75A, NXP LM75A/LM75B, many clones): temperature over I2C."""

from __future__ import annotations

import time

from .. import DeviceNotFound, Option, OptionError, register
from ._bus import bus_options
from ._lm75 import LM75_ADDRESSES, REG_CONFIG, LM75Family, TemperatureFormat

#: bits -> format (LM75 datasheets: 9-bit D15..D7; NXP LM75B datasheet, "Temperature register": 11-bit D15..D5)
FORMATS = {
    9: TemperatureFormat(bits=9, shift=7, step=0.5, low=-55.0, high=125.0),
    11: TemperatureFormat(bits=11, shift=5, step=0.125, low=-55.0, high=125.0),
}
#: Normal operation: comparator mode, active-low OS, one fault; bits 7:5 are reserved (0).
NORMAL = 0x00
RESERVED = 0xE0
#: Longest conversion after power-up or shutdown across LM75 makes (National: 300 ms max).
CONVERSION_S = 0.3


@register
class LM75(LM75Family):
    """An LM75 board (or a clone): temperature in °C, ±2 °C typical.

    Wire VCC to 3.3 V (pin 1), GND to ground, SDA to GPIO2 (pin 3), SCL to
    GPIO3 (pin 5).  Address 0x48 with A0..A2 low; each pin tied high adds 1,
    2 or 4 (0x48 .. 0x4F).  The OS pin (thermostat output) is not used.

    ``bits`` is the resolution of your chip: 9 (0.5 °C steps: LM75, TI
    LM75A and most clones; safe for every LM75) or 11 (0.125 °C: NXP LM75A
    and LM75B).  The chip has no id register: the driver checks that the
    configuration register keeps what it writes and that its reserved bits
    read 0, which rules out many other chips at these addresses but not all.
    """

    name = "lm75"
    summary = "LM75/LM75A/LM75B temperature, 9 or 11 bits (I2C)"
    chip = "LM75"
    addresses = LM75_ADDRESSES
    options = {
        **bus_options(LM75_ADDRESSES),
        "bits": Option(int, 9, "resolution: 9 (0.5 °C, any LM75) or 11 (0.125 °C, NXP LM75A/LM75B)"),
    }

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        if self.config["bits"] not in FORMATS:
            raise OptionError(
                "bits",
                f"sensor {sensor!r}: bits must be 9 (LM75, TI LM75A) or 11 (NXP LM75A/LM75B), not {self.config['bits']}",
            )
        self.format = FORMATS[self.config["bits"]]
        self._ready_at = 0.0

    def min_interval(self) -> float:
        return 0.1

    @classmethod
    def identify(cls, bus, address):
        try:
            config = bus.read_byte_data(address, REG_CONFIG)
        except OSError:
            return None
        return False if config & RESERVED else None

    def setup(self) -> None:
        before = self.read_byte(REG_CONFIG)
        if before & RESERVED:
            raise DeviceNotFound(self._not_an_lm75(f"its configuration register reads {before:#04x}"))
        self.write_byte(REG_CONFIG, NORMAL)
        after = self.read_byte(REG_CONFIG)
        if after != NORMAL:
            what = f"its configuration register reads {after:#04x} after writing {NORMAL:#04x}"
            raise DeviceNotFound(self._not_an_lm75(what))
        # After power-up or shutdown the register reads 0 °C until a conversion has finished,
        # and nothing tells whether the chip has just been powered: wait for one at start.
        self._ready_at = time.monotonic() + CONVERSION_S

    def _not_an_lm75(self, what: str) -> str:
        return (
            f"{self.where()}: {what}; an LM75 keeps what is written there and reads 0 in bits 7:5: "
            "the chip at this address is not an LM75 (it has no id register to say more)"
        )

    def measure(self) -> dict[str, float]:
        wait = self._ready_at - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        return {"temperature": self.temperature()}
