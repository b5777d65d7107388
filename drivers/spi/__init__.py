"""Chips on the Pi's SPI bus, read through spidev.

SPI0 is on the header: MOSI GPIO10 (pin 19), MISO GPIO9 (pin 21), SCLK
GPIO11 (pin 23), and two chip selects, CE0 GPIO8 (pin 24) and CE1 GPIO7
(pin 26).  ``/dev/spidev0.0`` is the chip on CE0, ``/dev/spidev0.1`` the
one on CE1.  ``_bus`` opens a device and turns the kernel's errors into
advice; every other module here is one device.
"""
