"""A stand-in for adafruit_dht's DHT11/DHT22 objects.

It behaves like the library (adafruit-circuitpython-dht 4.x): ``temperature``
and ``humidity`` each call ``measure()``, which only talks to the sensor if
more than ``hold`` seconds (2 s in the library) have passed since the last
attempt and otherwise leaves the previous values; failures raise
``RuntimeError`` with the library's own messages.  Each real measurement
takes the next outcome from ``script``.
"""

from __future__ import annotations

import array
import time

CHECKSUM = "Checksum did not validate. Try again."
SHORT_BUFFER = "A full buffer was not returned. Try again."
NOT_FOUND = "DHT sensor not found, check wiring"


class FakeDHT:
    def __init__(self, script, hold=0.02):
        self.script = list(script)
        self.hold = hold
        self.measurements = 0
        self.exited = False
        self._last_called = 0.0
        self._temperature = None
        self._humidity = None

    def measure(self):
        if self.exited:
            raise RuntimeError("device used after exit()")
        if self._last_called and time.monotonic() - self._last_called <= self.hold:
            return
        self._last_called = time.monotonic()
        self.measurements += 1
        outcome = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(outcome, str):
            raise RuntimeError(outcome)
        self._temperature, self._humidity = outcome

    @property
    def temperature(self):
        self.measure()
        return self._temperature

    @property
    def humidity(self):
        self.measure()
        return self._humidity

    def exit(self):
        self.exited = True


class DHTFactory:
    """Replacement for ``drivers.gpio.dht.make_device``: records the arguments, returns the prepared device."""

    def __init__(self, device):
        self.device = device
        self.calls = []

    def __call__(self, model, pin, use_pulseio, who):
        self.calls.append((model, pin, use_pulseio))
        return self.device


def frame(humidity: int, humidity_tenths: int, integral: int, decimal: int, checksum: int | None = None) -> bytes:
    """The five bytes a DHT sends; the checksum is the low byte of the sum of the four unless given."""
    body = bytes([humidity, humidity_tenths, integral, decimal])
    return body + bytes([sum(body) & 0xFF if checksum is None else checksum])


def line_pulses(data: bytes) -> array.array:
    """The pulse train of *data* on the DATA line, as adafruit_dht's readers hand it to its decoder.

    Per bit, most significant first: the 50 µs low that starts it, then the high whose length
    is the bit (datasheet timing: 26-28 µs for 0, 70 µs for 1).  Durations in microseconds.
    """
    pulses = array.array("H")
    for byte in data:
        for bit in range(7, -1, -1):
            pulses.extend([50, 70 if byte >> bit & 1 else 27])
    pulses.append(50)  # the sensor's final low, ending the frame
    return pulses
