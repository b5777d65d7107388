"""Devices on the 1-Wire bus, read through the kernel's w1 sysfs tree (``dtoverlay=w1-gpio``)."""
