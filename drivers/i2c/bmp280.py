"""Bosch BMP280: temperature and air pressure over I2C."""

from __future__ import annotations

from pibridge.readings import Quantity

from .. import register
from ._bosch import BMP280_IDS, BoschDriver


@register
class BMP280(BoschDriver):
    """A BMP280 breakout: temperature (°C) and pressure (hPa), no humidity.

    Wire it like a BME280: VIN to 3.3 V (pin 1), GND to ground (pin 6), SDA
    to GPIO2 (pin 3), SCL to GPIO3 (pin 5).  Address 0x76, or 0x77 with SDO
    tied high.  If the chip turns out to be a BME280 the driver tells you to
    use ``driver = "bme280"`` and get humidity too.
    """

    name = "bmp280"
    summary = "Bosch BMP280 temperature and pressure (I2C)"
    chip = "BMP280"
    chip_ids = BMP280_IDS
    has_humidity = False
    provides = (
        Quantity("temperature", "°C", "air temperature"),
        Quantity("pressure", "hPa", "air pressure at the sensor (not sea-level corrected)"),
    )
