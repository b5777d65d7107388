"""ams TSL2591: illuminance in lux over I2C, from a full-spectrum and an infrared photodiode."""

from __future__ import annotations

import time

from pibridge.readings import Quantity

from .. import DeviceNotFound, Option, OptionError, ValueRejected, register
from ._bus import I2CDriver, bus_options

#: Command register (datasheet DS000338, "Command Register"): CMD = 1, TRANSACTION = 01 (normal), ADDR.
COMMAND = 0xA0
REG_ENABLE = 0x00
REG_CONTROL = 0x01
REG_ID = 0x12
REG_STATUS = 0x13
REG_C0DATAL = 0x14
CHIP_ID = 0x50
POWER_ON = 0x01
ALS_ENABLE = 0x02
ALS_VALID = 0x01
#: gain name -> (AGAIN bits 5:4 of the control register, gain factor).  The factors are those
#: of ams' published lux code (1, 25, 428, 9876); the datasheet gives typical values near them.
GAINS = {"low": (0b00, 1.0), "medium": (0b01, 25.0), "high": (0b10, 428.0), "max": (0b11, 9876.0)}
#: integration time in ms -> ATIME bits 2:0
INTEGRATION_TIMES = {100: 0b000, 200: 0b001, 300: 0b010, 400: 0b011, 500: 0b100, 600: 0b101}
#: Lux equation of ams' reference code: counts per lux = ATIME_ms x AGAIN / DF, with the device
#: factor DF = 53 x glass attenuation (408 in open air) and the channel coefficients B, C, D.
DEVICE_FACTOR, COEF_B, COEF_C, COEF_D = 408.0, 1.64, 0.59, 0.86
#: Counts at which a channel is saturated: the reference code's 36863 (0x8FFF) at 100 ms, which
#: stays just under the 100 ms full scale, and the 16-bit limit for longer integrations.
SATURATION_100MS, SATURATION = 36863, 65535


def lux(ch0: int, ch1: int, integration_ms: int, gain: float) -> float:
    """Illuminance from the full-spectrum (CH0) and infrared (CH1) counts, ams' two-segment equation.

    lux1 = (C0 - B x C1) / CPL, lux2 = (C x C0 - D x C1) / CPL, CPL = ATIME x AGAIN / DF; the
    larger of the two, and 0 when both are negative (mostly infrared light).
    """
    counts_per_lux = integration_ms * gain / DEVICE_FACTOR
    lux1 = (ch0 - COEF_B * ch1) / counts_per_lux
    lux2 = (COEF_C * ch0 - COEF_D * ch1) / counts_per_lux
    return max(lux1, lux2, 0.0)


@register
class TSL2591(I2CDriver):
    """A TSL2591 board: illuminance in lux, from starlight (0.0002 lx) to about 88000 lx.

    Wire VIN to 3.3 V (pin 1), GND to ground, SDA to GPIO2 (pin 3), SCL to
    GPIO3 (pin 5).  The address is fixed at 0x29; the chip is checked by its
    id register (0x50) at start.

    ``gain`` is ``"low"`` (1x, bright light), ``"medium"`` (25x, default),
    ``"high"`` (428x) or ``"max"`` (9876x, darkness); ``integration_time``
    100 (default) to 600 ms in steps of 100: longer is more sensitive.
    Each read powers the chip up, integrates once and powers it down.  If
    either photodiode saturates, the reading is refused: lower the gain or
    shorten the integration time.
    """

    name = "tsl2591"
    summary = "ams TSL2591 ambient light in lux, full spectrum and infrared (I2C)"
    chip = "TSL2591"
    addresses = (0x29,)
    options = {
        **bus_options((0x29,)),
        "gain": Option(str, "medium", "low (1x), medium (25x), high (428x) or max (9876x)"),
        "integration_time": Option(int, 100, "ms: 100, 200, 300, 400, 500 or 600"),
    }
    provides = (Quantity("illuminance", "lx", "ambient light"),)

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        if self.config["gain"] not in GAINS:
            raise OptionError(
                "gain", f"sensor {sensor!r}: gain must be low, medium, high or max, not {self.config['gain']!r}"
            )
        if self.config["integration_time"] not in INTEGRATION_TIMES:
            raise OptionError(
                "integration_time", f"sensor {sensor!r}: integration_time must be 100, 200, 300, 400, 500 or 600 (ms)"
            )
        again, self.gain = GAINS[self.config["gain"]]
        self.integration_ms = self.config["integration_time"]
        self.control = again << 4 | INTEGRATION_TIMES[self.integration_ms]
        self.saturation = SATURATION_100MS if self.integration_ms == 100 else SATURATION

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    @classmethod
    def identify(cls, bus, address):
        try:
            return bus.read_byte_data(address, COMMAND | REG_ID) == CHIP_ID
        except OSError:
            return None

    def setup(self) -> None:
        chip_id = self.read_byte(COMMAND | REG_ID)
        if chip_id != CHIP_ID:
            raise DeviceNotFound(
                f"{self.where()}: its id register reads {chip_id:#04x}, not {CHIP_ID:#04x}: the chip at this address "
                "is not a TSL2591 (a TSL2561 also sits at 0x29: use driver = \"tsl2561\")"
            )
        self.write_byte(COMMAND | REG_ENABLE, 0)
        self.write_byte(COMMAND | REG_CONTROL, self.control)

    def measure(self) -> dict[str, float]:
        if self.read_byte(COMMAND | REG_CONTROL) != self.control:
            # A brown-out put the chip back to its reset settings.
            self.write_byte(COMMAND | REG_CONTROL, self.control)
        self.write_byte(COMMAND | REG_ENABLE, POWER_ON | ALS_ENABLE)
        try:
            seconds = self.integration_ms / 1000
            time.sleep(seconds)
            self.poll(lambda: self.read_byte(COMMAND | REG_STATUS) & ALS_VALID, seconds / 2 + 0.05, "the integration")
            c0_low, c0_high, c1_low, c1_high = self.read_block(COMMAND | REG_C0DATAL, 4)
        finally:
            self.write_byte(COMMAND | REG_ENABLE, 0)
        ch0, ch1 = c0_high << 8 | c0_low, c1_high << 8 | c1_low
        if max(ch0, ch1) >= self.saturation:
            which = "full-spectrum" if ch0 >= self.saturation else "infrared"
            raise ValueRejected(
                f"{self.where()}: the {which} channel is saturated ({max(ch0, ch1)} counts at gain "
                f"{self.config['gain']}, {self.integration_ms} ms): use a lower gain or a shorter integration_time"
            )
        return {"illuminance": round(lux(ch0, ch1, self.integration_ms, self.gain), 4)}
