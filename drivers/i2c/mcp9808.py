"""Microchip MCP9808: ±0.25 °C digital thermometer over I2C."""

from __future__ import annotations

import time

from pibridge.readings import Quantity

from .. import DeviceNotFound, Option, OptionError, ValueRejected, register
from ._bus import I2CDriver, bus_options

REG_CONFIG = 0x01
REG_AMBIENT = 0x05
REG_MANUFACTURER = 0x06
REG_DEVICE = 0x07
REG_RESOLUTION = 0x08
MANUFACTURER_ID = 0x0054
DEVICE_ID = 0x04
#: °C per step -> (resolution register bits 1:0, conversion time tCONV in s), datasheet DS25095
#: section 5.1.6 (resolution register) and the tCONV rows of the electrical characteristics
RESOLUTIONS = {0.5: (0b00, 0.030), 0.25: (0b01, 0.065), 0.125: (0b10, 0.130), 0.0625: (0b11, 0.250)}
MARGIN = 1.25
CONTINUOUS = 0x0000  # SHDN = 0, alert output off, no limits locked
ADDRESSES = tuple(range(0x18, 0x20))


def ambient_celsius(word: int) -> float:
    """The ambient temperature register (section 5.1.3) in °C.

    Bits 15:13 are the TCRIT/TUPPER/TLOWER comparison flags, bit 12 the sign, bits 11:0
    the magnitude in 1/16 °C: bits 12:0 are a 13-bit two's complement number.  (The
    datasheet's sample code for negative values, 256 - (UpperByte x 16 + LowerByte / 16),
    gives the magnitude, not the signed value.)
    """
    code = word & 0x1FFF
    if code & 0x1000:
        code -= 0x2000
    return code / 16


@register
class MCP9808(I2CDriver):
    """An MCP9808 board: air or surface temperature in °C, ±0.25 °C typical (±0.5 °C max).

    Wire VDD to 3.3 V (pin 1), GND to ground, SDA to GPIO2 (pin 3), SCL to
    GPIO3 (pin 5).  Address 0x18 with A0, A1 and A2 low (the boards pull
    them down); each pin tied high adds 1, 2 or 4 (0x18 .. 0x1F).  The chip
    is checked by its manufacturer id (0x0054) and device id (0x04) at start.

    ``resolution`` is the step in °C: 0.0625 (default, a new value every
    250 ms), 0.125 (130 ms), 0.25 (65 ms) or 0.5 (30 ms).  The chip converts
    continuously; the first reading waits one conversion after start.  The
    alert pin and its limits are not used.
    """

    name = "mcp9808"
    summary = "Microchip MCP9808 temperature, ±0.25 °C (I2C)"
    chip = "MCP9808"
    addresses = ADDRESSES
    options = {
        **bus_options(ADDRESSES),
        "resolution": Option(float, 0.0625, "°C per step: 0.0625 (250 ms), 0.125, 0.25 or 0.5 (30 ms)"),
    }
    provides = (Quantity("temperature", "°C", "temperature of the chip's package"),)

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        if self.config["resolution"] not in RESOLUTIONS:
            raise OptionError(
                "resolution", f"sensor {sensor!r}: resolution must be 0.0625, 0.125, 0.25 or 0.5 (°C per step)"
            )
        self._bits, self.conversion_time = RESOLUTIONS[self.config["resolution"]]
        self._ready_at = 0.0

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    def min_interval(self) -> float:
        return self.conversion_time

    @classmethod
    def identify(cls, bus, address):
        try:
            manufacturer = bus.read_i2c_block_data(address, REG_MANUFACTURER, 2)
            device = bus.read_i2c_block_data(address, REG_DEVICE, 2)
        except OSError:
            return None
        return (manufacturer[0] << 8 | manufacturer[1]) == MANUFACTURER_ID and device[0] == DEVICE_ID

    def setup(self) -> None:
        manufacturer = self.read_word_be(REG_MANUFACTURER)
        device = self.read_word_be(REG_DEVICE)
        if manufacturer != MANUFACTURER_ID or device >> 8 != DEVICE_ID:
            raise DeviceNotFound(
                f"{self.where()}: manufacturer id {manufacturer:#06x} and device id {device >> 8:#04x} "
                f"(expected {MANUFACTURER_ID:#06x} and {DEVICE_ID:#04x}): the chip at this address is not an MCP9808"
            )
        self.write_word_be(REG_CONFIG, CONTINUOUS)
        self.write_byte(REG_RESOLUTION, self._bits)
        # The register holds a value of the old resolution (or nothing after power-up) until
        # one conversion at the new resolution has finished; tCONV is a typical figure, so
        # wait a quarter more.
        self._ready_at = time.monotonic() + self.conversion_time * MARGIN

    def measure(self) -> dict[str, float]:
        wait = self._ready_at - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        temperature = ambient_celsius(self.read_word_be(REG_AMBIENT))
        if not -40.0 <= temperature <= 125.0:
            raise ValueRejected(
                f"{self.where()}: temperature {temperature:.4f} °C is outside the chip's range (-40 to 125 °C)"
            )
        return {"temperature": temperature}
