"""Bosch BME280: temperature, air pressure and humidity over I2C."""

from __future__ import annotations

from pibridge.readings import Quantity

from .. import register
from ._bosch import BME280_ID, BoschDriver


@register
class BME280(BoschDriver):
    """A BME280 breakout: temperature (°C), pressure (hPa) and humidity (%RH).

    Wire VIN to 3.3 V (pin 1), GND to ground (pin 6), SDA to GPIO2 (pin 3)
    and SCL to GPIO3 (pin 5).  The address is 0x76, or 0x77 when the SDO pad
    is tied to 3.3 V (many purple boards ship that way: try both).

    Each read starts one measurement (forced mode) and waits for it, so the
    chip sleeps between reads and does not warm itself.  Boards sold as
    "BME280" are often a BMP280 (no humidity): the driver checks the chip id
    and says so.
    """

    name = "bme280"
    summary = "Bosch BME280 temperature, pressure and humidity (I2C)"
    chip = "BME280"
    chip_ids = (BME280_ID,)
    has_humidity = True
    provides = (
        Quantity("temperature", "°C", "air temperature"),
        Quantity("pressure", "hPa", "air pressure at the sensor (not sea-level corrected)"),
        Quantity("humidity", "%RH", "relative humidity"),
    )
