"""Chips on the Pi's I2C bus (SDA GPIO2 pin 3, SCL GPIO3 pin 5), read through smbus2.

``_bus`` opens the bus and turns the kernel's errors into advice; the other
underscore modules hold what a chip family shares (Bosch compensation,
Sensirion CRC-checked words, the ADS1x15 and LM75 register maps).  Every
other module here is one device.
"""
