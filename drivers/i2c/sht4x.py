"""Sensirion SHT40/SHT41/SHT45: temperature and humidity over I2C, CRC-checked."""

from __future__ import annotations

import time

from pibridge.readings import Quantity

from .. import DeviceNotFound, Option, OptionError, ReadFailed, ValueRejected, register
from ._bus import bus_options
from ._sensirion import SensirionDriver, celsius

#: precision -> (measure command, longest duration in s), from the datasheet's command and timing tables
MEASURE = {"high": (0xFD, 0.0083), "medium": (0xF6, 0.0045), "low": (0xE0, 0.0016)}
READ_SERIAL = 0x89
SOFT_RESET = 0x94


@register
class SHT4x(SensirionDriver):
    """An SHT40, SHT41 or SHT45 board: temperature (°C) and humidity (%RH).

    Wire VIN to 3.3 V (pin 1), GND to ground, SDA to GPIO2 (pin 3), SCL to
    GPIO3 (pin 5).  The address is fixed by the part number: 0x44 for most
    (SHT4x-AD1B), 0x45 (BD1B) or 0x46 (CD1B).  Answers are CRC-checked; the
    serial number is read at start to make sure an SHT4x is there.
    """

    name = "sht4x"
    summary = "Sensirion SHT40/41/45 temperature and humidity (I2C)"
    chip = "SHT4x"
    addresses = (0x44, 0x45, 0x46)
    options = {
        **bus_options((0x44, 0x45, 0x46)),
        "precision": Option(str, "high", "measurement precision: high, medium or low (faster)"),
    }
    provides = (
        Quantity("temperature", "°C", "air temperature"),
        Quantity("humidity", "%RH", "relative humidity"),
    )

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        if self.config["precision"] not in MEASURE:
            raise OptionError("precision", f"sensor {sensor!r}: precision must be high, medium or low")
        self.serial_number: int | None = None

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    def setup(self) -> None:
        self.send(SOFT_RESET)
        time.sleep(0.001)
        self.send(READ_SERIAL)
        time.sleep(0.001)
        try:
            high, low = self.read_words(2, "serial number")
        except ReadFailed as exc:
            raise DeviceNotFound(f"{exc}; if this persists, the chip at this address is not an SHT4x") from None
        self.serial_number = high << 16 | low

    def measure(self) -> dict[str, float]:
        command, duration = MEASURE[self.config["precision"]]
        self.send(command)
        time.sleep(duration)
        t_raw, rh_raw = self.read_words(2, "measurement")
        temperature = celsius(t_raw)
        if not -40.0 <= temperature <= 125.0:
            raise ValueRejected(
                f"{self.where()}: temperature {temperature:.2f} °C is outside the chip's range (-40 to 125 °C)"
            )
        # RH = -6 + 125 * S / (2^16 - 1) can leave 0..100 %; the datasheet says to crop it.
        humidity = min(max(-6.0 + 125.0 * rh_raw / 65535.0, 0.0), 100.0)
        return {"temperature": round(temperature, 2), "humidity": round(humidity, 2)}
