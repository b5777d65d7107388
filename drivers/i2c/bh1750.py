"""ROHM BH1750: ambient light in lux over I2C."""

from __future__ import annotations

import time

from pibridge.readings import Quantity

from .. import Option, OptionError, ValueRejected, register
from ._bus import I2CDriver, bus_options

POWER_ON = 0x01
RESET = 0x07
#: resolution -> (one-time measurement opcode, longest duration in s, lx per count), from the
#: datasheet's instruction set and measurement mode tables
MODES = {"high": (0x20, 0.180, 1 / 1.2), "high2": (0x21, 0.180, 1 / 2.4), "low": (0x23, 0.024, 1 / 1.2)}


@register
class BH1750(I2CDriver):
    """A BH1750 (GY-30, GY-302) light sensor: illuminance in lux.

    Wire VCC to 3.3 V (pin 1), GND to ground, SDA to GPIO2 (pin 3), SCL to
    GPIO3 (pin 5).  Address 0x23 with the ADDR pin low or open, 0x5C with
    ADDR at 3.3 V.  Each read makes one measurement, after which the chip
    powers itself down.  ``resolution = "high"`` gives 1 lx steps up to
    54612 lx, ``"high2"`` 0.5 lx up to 27306 lx, ``"low"`` 4 lx and is
    faster (24 ms instead of 180 ms).
    """

    name = "bh1750"
    summary = "ROHM BH1750 ambient light in lux (I2C)"
    chip = "BH1750"
    addresses = (0x23, 0x5C)
    options = {
        **bus_options((0x23, 0x5C)),
        "resolution": Option(str, "high", "high (1 lx), high2 (0.5 lx) or low (4 lx, faster)"),
    }
    provides = (Quantity("illuminance", "lx", "ambient light"),)

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        if self.config["resolution"] not in MODES:
            raise OptionError("resolution", f"sensor {sensor!r}: resolution must be high, high2 or low")

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    def setup(self) -> None:
        # The BH1750 has no id register: an acknowledged power-on command is all it says.
        self.send(POWER_ON)
        self.send(RESET)

    def measure(self) -> dict[str, float]:
        opcode, duration, lux_per_count = MODES[self.config["resolution"]]
        self.send(opcode)
        time.sleep(duration)
        high, low = self.receive(2)
        counts = high << 8 | low
        # In low resolution the two lowest bits carry no information, so the top is 0xFFFC.
        if counts >= 0xFFFC:
            raise ValueRejected(
                f"{self.where()}: the light sensor is saturated (above {0xFFFF * lux_per_count:.0f} lx); "
                + ("use resolution = \"high\" for bright light" if self.config["resolution"] == "high2"
                   else "shade it or put a diffuser in front")
            )
        return {"illuminance": round(counts * lux_per_count, 2)}
