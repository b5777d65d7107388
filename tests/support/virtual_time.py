"""A clock that jumps: stands in for the ``time`` module of a driver and of its chip emulator.

Light sensors integrate for up to 800 ms and a driver that auto-ranges waits for several
integrations per reading; on this clock ``sleep`` moves ``monotonic`` on at once, so such a
test takes milliseconds and still fails if the driver reads before the chip is done.
"""

from __future__ import annotations


class VirtualClock:
    """``monotonic()`` and ``sleep()``; every sleep is recorded in :attr:`sleeps`."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)

    def install(self, monkeypatch, *modules) -> "VirtualClock":
        """Make each module's ``time`` (and the I2C bus layer's, which polls) this clock."""
        from pibridge.drivers.i2c import _bus

        for module in (_bus, *modules):
            monkeypatch.setattr(module, "time", self)
        return self
