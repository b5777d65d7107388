"""A clock that moves only when someone sleeps, for chips whose conversions take seconds.

A driver module and its chip stand-in both use it in place of the ``time``
module (``monkeypatch.setattr(module, "time", clock)``): the driver's
``time.sleep(5)`` advances the clock by 5 s at once, and the chip sees that
its measurement is done.  Tests stay fast and the chip's timing rules still
hold: a driver that reads too early gets the NACK a real chip gives.
"""

from __future__ import annotations


class VirtualClock:
    def __init__(self, start: float = 1000.0):
        self.now = start
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.now += seconds
        self.slept += seconds


def install(monkeypatch, *modules) -> VirtualClock:
    """Put one :class:`VirtualClock` in place of ``time`` in each module (the driver's, ``_bus``)."""
    clock = VirtualClock()
    for module in modules:
        monkeypatch.setattr(module, "time", clock)
    return clock
