"""Sensirion SHT30/SHT31/SHT35: temperature and humidity over I2C, CRC-checked."""

from __future__ import annotations

import time

from pibridge.readings import Quantity

from .. import DeviceNotFound, Option, OptionError, ReadFailed, ValueRejected, register
from ._bus import bus_options
from ._sensirion import SensirionDriver, celsius

#: repeatability -> (single-shot command without clock stretching, longest duration in s),
#: from the datasheet's measurement commands and timing tables
SINGLE_SHOT = {"high": (0x2400, 0.0155), "medium": (0x240B, 0.0065), "low": (0x2416, 0.0045)}
SOFT_RESET = 0x30A2
READ_STATUS = 0xF32D


@register
class SHT3x(SensirionDriver):
    """An SHT30, SHT31 or SHT35 board: temperature (°C) and humidity (%RH).

    Wire VIN to 3.3 V (pin 1), GND to ground, SDA to GPIO2 (pin 3), SCL to
    GPIO3 (pin 5).  The address is 0x44, or 0x45 when the ADDR pin is tied
    to 3.3 V.  Every answer carries a CRC; a mismatch (noise on a long
    cable) is reported and the read retried instead of passing on a wrong
    value.
    """

    name = "sht3x"
    summary = "Sensirion SHT30/31/35 temperature and humidity (I2C)"
    chip = "SHT3x"
    addresses = (0x44, 0x45)
    options = {
        **bus_options((0x44, 0x45)),
        "repeatability": Option(str, "high", "measurement repeatability: high, medium or low (faster)"),
    }
    provides = (
        Quantity("temperature", "°C", "air temperature"),
        Quantity("humidity", "%RH", "relative humidity"),
    )

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        if self.config["repeatability"] not in SINGLE_SHOT:
            raise OptionError("repeatability", f"sensor {sensor!r}: repeatability must be high, medium or low")

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    def setup(self) -> None:
        self.send(SOFT_RESET >> 8, SOFT_RESET & 0xFF)
        time.sleep(0.002)
        self.send(READ_STATUS >> 8, READ_STATUS & 0xFF)
        try:
            self.read_words(1, "status register")
        except ReadFailed as exc:
            raise DeviceNotFound(f"{exc}; if this persists, the chip at this address is not an SHT3x") from None

    def measure(self) -> dict[str, float]:
        command, duration = SINGLE_SHOT[self.config["repeatability"]]
        self.send(command >> 8, command & 0xFF)
        time.sleep(duration)
        t_raw, rh_raw = self.read_words(2, "measurement")
        temperature = celsius(t_raw)
        humidity = 100.0 * rh_raw / 65535.0
        if not -40.0 <= temperature <= 125.0:
            raise ValueRejected(
                f"{self.where()}: temperature {temperature:.2f} °C is outside the chip's range (-40 to 125 °C)"
            )
        return {"temperature": round(temperature, 2), "humidity": round(humidity, 2)}
