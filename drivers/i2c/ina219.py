"""TI INA219: bus voltage, current and power through a shunt resistor, over I2C."""

from __future__ import annotations

import math
import time
from fractions import Fraction

from pibridge.readings import Quantity

from .. import DeviceNotFound, Option, OptionError, ValueRejected, register
from .._bits import signed
from ._bus import I2CDriver, bus_options

REG_CONFIG, REG_SHUNT, REG_BUS, REG_POWER, REG_CURRENT, REG_CALIBRATION = range(6)
RESET = 0x8000
#: PGA setting -> (PG bits 12:11 of the configuration register, shunt full-scale in volts)
SHUNT_RANGES = ((0b00, 0.04), (0b01, 0.08), (0b10, 0.16), (0b11, 0.32))
ADC_12BIT = 0b0011
MODE_CONTINUOUS = 0b111
BUS_OVERFLOW = 0x0001
#: The 0.04096 of the calibration equation (datasheet 8.5.1, equation 1).
CALIBRATION_SCALE = Fraction(4096, 100000)


def nice_current_lsb(max_current: float) -> Fraction:
    """The smallest 1, 2 or 5 x 10^n amperes at least max_current / 2^15 (datasheet 8.5.1, equation 2)."""
    minimum = Fraction(repr(max_current)) / 32768
    exponent = math.floor(math.log10(minimum))
    for exp in (exponent, exponent + 1):
        for mantissa in (1, 2, 5):
            lsb = mantissa * Fraction(10) ** exp
            if lsb >= minimum:
                return lsb
    raise AssertionError("unreachable")


@register
class INA219(I2CDriver):
    """An INA219 board: the voltage of a supply, the current it delivers and the power.

    Wire VCC to 3.3 V (pin 1), GND to ground, SDA to GPIO2 (pin 3), SCL to
    GPIO3 (pin 5).  Put VIN+ and VIN- in the positive supply line of the load
    (the current flows through the board's shunt resistor) and connect the
    load's ground to the Pi's ground.  Address 0x40 by default; solder
    bridges A0/A1 select 0x41 .. 0x4F.  Keep the load supply below 26 V.

    Set ``shunt_ohms`` to the resistor on your board (0.1 Ω on most: "R100")
    and ``max_current`` to the highest current you expect; the driver works
    out the calibration register (datasheet section 8.5.1) and the smallest
    shunt range that fits.  After a brown-out the chip forgets its
    calibration; the driver notices and writes it again.
    """

    name = "ina219"
    summary = "TI INA219 bus voltage, current and power (I2C)"
    chip = "INA219"
    addresses = tuple(range(0x40, 0x50))
    options = {
        **bus_options(tuple(range(0x40, 0x50))),
        "shunt_ohms": Option(float, 0.1, "resistance of the shunt resistor in ohms"),
        "max_current": Option(float, 3.2, "largest expected current in amperes (sets the resolution)"),
        "bus_voltage_range": Option(int, 32, "16 or 32 (volts): full scale of the bus voltage measurement"),
    }
    provides = (
        Quantity("voltage", "V", "bus voltage (load side of the shunt)"),
        Quantity("current", "A", "current through the shunt"),
        Quantity("power", "W", "power delivered to the load"),
        Quantity("shunt_voltage", "mV", "voltage across the shunt"),
    )

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        shunt, max_current = self.config["shunt_ohms"], self.config["max_current"]
        if shunt <= 0:
            raise OptionError("shunt_ohms", f"sensor {sensor!r}: shunt_ohms must be positive")
        if max_current <= 0:
            raise OptionError("max_current", f"sensor {sensor!r}: max_current must be positive")
        if self.config["bus_voltage_range"] not in (16, 32):
            raise OptionError("bus_voltage_range", f"sensor {sensor!r}: bus_voltage_range must be 16 or 32")
        drop = shunt * max_current
        fitting = [(bits, volts) for bits, volts in SHUNT_RANGES if drop <= volts + 1e-12]
        if not fitting:
            raise OptionError(
                "max_current",
                f"sensor {sensor!r}: {max_current} A through {shunt} Ω drops {drop * 1000:.0f} mV, more than "
                "the INA219's 320 mV shunt range: use a smaller shunt resistor or a lower max_current",
            )
        self._pga, self.shunt_range = fitting[0]
        ohms = Fraction(repr(shunt))
        # Bit 0 of the calibration register is void (datasheet Figure 27, note 1): the chip stores
        # the value with that bit clear, so compute it that way and derive the current step from
        # what the chip really holds; then the read-back and the arithmetic agree.
        wanted = int(CALIBRATION_SCALE / (nice_current_lsb(max_current) * ohms))
        self.calibration = wanted & ~1
        if not 2 <= self.calibration <= 0xFFFE:
            raise OptionError(
                "shunt_ohms",
                f"sensor {sensor!r}: shunt_ohms = {shunt} and max_current = {max_current} give a calibration "
                f"value of {wanted}, outside 2..65534: check both",
            )
        self.current_lsb = CALIBRATION_SCALE / (self.calibration * ohms)
        brng = 1 if self.config["bus_voltage_range"] == 32 else 0
        self.config_word = brng << 13 | self._pga << 11 | ADC_12BIT << 7 | ADC_12BIT << 3 | MODE_CONTINUOUS

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    def _program(self) -> None:
        self.write_word_be(REG_CONFIG, self.config_word)
        self.write_word_be(REG_CALIBRATION, self.calibration)

    def setup(self) -> None:
        self.write_word_be(REG_CONFIG, RESET)
        self._program()
        got = self.read_word_be(REG_CONFIG), self.read_word_be(REG_CALIBRATION)
        if got != (self.config_word, self.calibration):
            raise DeviceNotFound(
                f"{self.where()}: wrote config {self.config_word:#06x} and calibration {self.calibration:#06x} "
                f"but read back {got[0]:#06x} and {got[1]:#06x}: the chip at this address is not an INA219"
            )
        time.sleep(0.002)  # one 12-bit conversion of shunt and bus (2 x 532 µs)

    def measure(self) -> dict[str, float]:
        if self.read_word_be(REG_CALIBRATION) != self.calibration:
            # A brown-out reset the chip: current and power read 0 until it is calibrated again.
            self._program()
            time.sleep(0.002)
        bus = self.read_word_be(REG_BUS)
        if bus & BUS_OVERFLOW:
            raise ValueRejected(
                f"{self.where()}: the chip flags a math overflow: the current is beyond "
                f"max_current = {self.config['max_current']} A or shunt_ohms is wrong; raise max_current"
            )
        shunt = signed(self.read_word_be(REG_SHUNT), 16)
        current = signed(self.read_word_be(REG_CURRENT), 16)
        power = self.read_word_be(REG_POWER)
        lsb = float(self.current_lsb)
        return {
            "voltage": round((bus >> 3) * 0.004, 3),
            "current": round(current * lsb, 6),
            "power": round(power * 20 * lsb, 6),
            "shunt_voltage": round(shunt * 0.01, 2),
        }


