"""Devices wired straight to a GPIO pin: contacts, counters, DHT sensors, ultrasonic rangers.

``_pins`` holds the pin options and the advice for GPIO errors that these drivers share.
"""
