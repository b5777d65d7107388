"""TAOS/ams TSL2561 (and TSL2560): illuminance in lux over I2C from two photodiodes."""

from __future__ import annotations

import time

from pibridge.readings import Quantity

from .. import DeviceNotFound, Option, OptionError, ValueRejected, register
from ._bus import I2CDriver, bus_options

#: Command register: CMD (bit 7) = 1, WORD (bit 5) = 1 for the two-byte channel reads.
COMMAND = 0x80
WORD = 0x20
REG_CONTROL = 0x0
REG_TIMING = 0x1
REG_ID = 0xA
REG_DATA0 = 0xC
REG_DATA1 = 0xE
POWER_UP, POWER_DOWN = 0x03, 0x00
HIGH_GAIN = 0x10
#: PARTNO (ID register bits 7:4) -> (part, package)
PARTS = {0b0000: ("TSL2560", "CS"), 0b0001: ("TSL2561", "CS"), 0b0100: ("TSL2560", "T"), 0b0101: ("TSL2561", "T")}
#: nominal integration time in ms -> (INTEG bits 1:0, oscillator cycles /918 of it, full-scale count);
#: datasheet notes to the electrical characteristics: 11, 81 and 322 cycles give 13.7, 101 and
#: 402 ms, and the full scale is cycles x 918 / 2 - 2 = 5047, 37177, or the 16-bit 65535.
INTEGRATION = {13.7: (0b00, 11, 5047), 101.0: (0b01, 81, 37177), 402.0: (0b10, 322, 65535)}
#: The datasheet's piecewise-linear lux approximation ("Simplified Lux Calculation"), one row per
#: CH1/CH0 range: (upper bound of the ratio K, B, M) with lux = B x CH0 - M x CH1; beyond the
#: last row the light is infrared and the illuminance 0.
LUX_TABLE = {
    "T": (  # T (TMB-6), FN and CL packages
        (0.125, 0.0304, 0.0272),
        (0.250, 0.0325, 0.0440),
        (0.375, 0.0351, 0.0544),
        (0.50, 0.0381, 0.0624),
        (0.61, 0.0224, 0.0310),
        (0.80, 0.0128, 0.0153),
        (1.30, 0.00146, 0.00112),
    ),
    "CS": (  # ChipScale package
        (0.130, 0.0315, 0.0262),
        (0.260, 0.0337, 0.0430),
        (0.390, 0.0363, 0.0529),
        (0.520, 0.0392, 0.0605),
        (0.65, 0.0229, 0.0291),
        (0.80, 0.0157, 0.0180),
        (1.30, 0.00338, 0.00260),
    ),
}
#: The datasheet's wait is one integration; a quarter more covers a slow oscillator.
MARGIN = 1.25


def lux(ch0: float, ch1: float, package: str) -> float:
    """Illuminance from channel counts already scaled to 402 ms and 16x gain (the table's basis)."""
    if ch0 <= 0:
        return 0.0
    ratio = ch1 / ch0
    for upper, b, m in LUX_TABLE[package]:
        if ratio <= upper:
            return max(b * ch0 - m * ch1, 0.0)
    return 0.0


@register
class TSL2561(I2CDriver):
    """A TSL2561 board: illuminance in lux, 0.1 to 40000 lx.

    Wire VCC to 3.3 V (pin 1), GND to ground, SDA to GPIO2 (pin 3), SCL to
    GPIO3 (pin 5).  The ADDR pin picks the address: floating 0x39 (most
    boards), GND 0x29, VDD 0x49.  The id register is checked at start and
    names the package, whose lux formula the driver then uses (T/FN/CL or
    the ChipScale CS).

    ``gain`` is 1 (default, bright rooms and daylight) or 16 (dim light);
    ``integration_time`` is 13.7, 101 or 402 ms (default): longer is more
    sensitive.  Each read powers the chip up, waits one integration and
    powers it down.  A saturated channel (direct sun at gain 16) is refused.
    """

    name = "tsl2561"
    summary = "TAOS/ams TSL2561 ambient light in lux (I2C)"
    chip = "TSL2561"
    addresses = (0x39, 0x29, 0x49)
    options = {
        **bus_options((0x39, 0x29, 0x49)),
        "gain": Option(int, 1, "1 (bright light) or 16 (dim light)"),
        "integration_time": Option(float, 402.0, "ms: 13.7, 101 or 402"),
    }
    provides = (Quantity("illuminance", "lx", "ambient light"),)

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        if self.config["gain"] not in (1, 16):
            raise OptionError("gain", f"sensor {sensor!r}: gain must be 1 or 16, not {self.config['gain']}")
        match = [t for t in INTEGRATION if abs(t - self.config["integration_time"]) < 0.5]
        if not match:
            raise OptionError("integration_time", f"sensor {sensor!r}: integration_time must be 13.7, 101 or 402 (ms)")
        self.integration_ms = match[0]
        bits, self._cycles, self.full_scale = INTEGRATION[self.integration_ms]
        self.timing = (HIGH_GAIN if self.config["gain"] == 16 else 0) | bits
        self.part, self.package = "", ""

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    @classmethod
    def identify(cls, bus, address):
        try:
            return bus.read_byte_data(address, COMMAND | REG_ID) >> 4 in PARTS
        except OSError:
            return None

    def setup(self) -> None:
        ident = self.read_byte(COMMAND | REG_ID)
        if ident >> 4 not in PARTS:
            raise DeviceNotFound(
                f"{self.where()}: its id register reads {ident:#04x}, which names no TSL2560/TSL2561 "
                "(part number 0, 1, 4 or 5 in bits 7:4): the chip at this address is not a TSL2561"
            )
        self.part, self.package = PARTS[ident >> 4]
        self.write_byte(COMMAND | REG_CONTROL, POWER_DOWN)
        self.write_byte(COMMAND | REG_TIMING, self.timing)

    def _channel(self, register: int) -> int:
        low, high = self.read_block(COMMAND | WORD | register, 2)
        return high << 8 | low

    def measure(self) -> dict[str, float]:
        if self.read_byte(COMMAND | REG_TIMING) & 0x1B != self.timing:
            self.write_byte(COMMAND | REG_TIMING, self.timing)  # a brown-out reset it
        self.write_byte(COMMAND | REG_CONTROL, POWER_UP)
        try:
            time.sleep(self.integration_ms / 1000 * MARGIN)
            ch0, ch1 = self._channel(REG_DATA0), self._channel(REG_DATA1)
        finally:
            self.write_byte(COMMAND | REG_CONTROL, POWER_DOWN)
        if max(ch0, ch1) >= self.full_scale:
            raise ValueRejected(
                f"{self.where()}: the light sensor is saturated ({max(ch0, ch1)} counts, full scale "
                f"{self.full_scale} at {self.integration_ms:g} ms): "
                + ("use gain = 1" if self.config["gain"] == 16 else "use a shorter integration_time")
            )
        # The table is for 402 ms and 16x gain: scale the counts up to that (datasheet lux code).
        scale = 322 / self._cycles * (16 if self.config["gain"] == 1 else 1)
        return {"illuminance": round(lux(ch0 * scale, ch1 * scale, self.package), 4)}
