"""TI INA260: voltage, current and power through its own 2 mΩ shunt, over I2C."""

from __future__ import annotations

from pibridge.readings import Quantity

from .. import ValueRejected, register
from .._bits import signed
from ._bus import bus_options
from ._ina import INAMonitor, averaging_options

REG_CURRENT, REG_BUS, REG_POWER, REG_MASK_ENABLE = 0x01, 0x02, 0x03, 0x06
#: Mask/Enable bits (datasheet 8.6.5): conversion ready, math overflow.
CONVERSION_READY, MATH_OVERFLOW = 0x0008, 0x0004
#: Bits 14-12 of the configuration register are reserved and read 110b (reset value 6127h).
RESERVED_BITS = 0x6000
#: Fixed steps of the result registers (datasheet 8.6.2-8.6.4).
CURRENT_LSB, BUS_LSB, POWER_LSB = 0.00125, 0.00125, 0.010
#: The bus inputs stand at most 36 V (recommended operating conditions).
MAX_BUS_VOLTS = 36.0
ADDRESSES = tuple(range(0x40, 0x50))


@register
class INA260(INAMonitor):
    """An INA260 board: the voltage of a supply, the current it delivers and the power, up to 15 A.

    Wire VCC to 3.3 V (pin 1), GND to ground, SDA to GPIO2 (pin 3), SCL to
    GPIO3 (pin 5).  Put the board's VIN+ and VIN- terminals in the positive
    supply line of the load; the current flows through the chip's own
    2 mΩ shunt, so there is nothing to calibrate.  The bus voltage is
    measured at VBUS, tied to VIN+ on most boards (high-side).  Address
    0x40 by default; the A0/A1 pads select 0x41 .. 0x4F.  Keep the supply
    below 36 V.

    ``averages`` and ``conversion_time`` trade speed for noise: the chip
    averages that many samples of each input, each taking
    ``conversion_time`` µs, so one reading takes averages x 2 x
    conversion_time (16 x 2 x 1.1 ms = 35 ms by default).
    """

    name = "ina260"
    summary = "TI INA260 bus voltage, current and power with integrated 2 mΩ shunt (I2C)"
    chip = "INA260"
    addresses = ADDRESSES
    die_id = 0x2270
    options = {**bus_options(ADDRESSES), **averaging_options(16)}
    provides = (
        Quantity("voltage", "V", "bus voltage (at VBUS)"),
        Quantity("current", "A", "current through the shunt (negative when it flows from VIN- to VIN+)"),
        Quantity("power", "W", "power delivered to the load"),
    )

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    def conversions(self) -> int:
        return 2

    def fixed_bits(self) -> int:
        return RESERVED_BITS

    @classmethod
    def plausible_config(cls, word: int) -> bool:
        return word & 0x7000 == RESERVED_BITS

    def conversion_ready(self) -> bool:
        return bool(self.read_word_be(REG_MASK_ENABLE) & CONVERSION_READY)

    def measure(self) -> dict[str, float]:
        self.ensure_configured()
        if self.read_word_be(REG_MASK_ENABLE) & MATH_OVERFLOW:
            raise ValueRejected(f"{self.where()}: the chip flags a math overflow in its power calculation")
        current_raw = signed(self.read_word_be(REG_CURRENT), 16)
        bus_raw = self.read_word_be(REG_BUS)
        power_raw = self.read_word_be(REG_POWER)
        if current_raw in (0x7FFF, -0x8000):
            raise ValueRejected(
                f"{self.where()}: the current register is at its end ({current_raw * CURRENT_LSB:+.2f} A): "
                "the current is beyond what the 2 mΩ shunt can measure; the chip is rated for 15 A"
            )
        volts = bus_raw * BUS_LSB
        if volts > MAX_BUS_VOLTS:
            raise ValueRejected(
                f"{self.where()}: bus voltage {volts:.3f} V is above the {MAX_BUS_VOLTS:g} V the INA260 "
                "tolerates: check what VBUS is wired to"
            )
        return {
            "voltage": round(volts, 5),
            "current": round(current_raw * CURRENT_LSB, 5),
            "power": round(power_raw * POWER_LSB, 2),
        }
