"""Helpers for the input driver tests: a notify callback to wait on, a clock the test moves, polls to wait for."""

from __future__ import annotations

import threading

from tests.support.waiting import wait_until


class Notifications:
    """A notify callback that counts calls; wait_for blocks until the count is reached."""

    def __init__(self):
        self.count = 0
        self._cond = threading.Condition()

    def __call__(self):
        with self._cond:
            self.count += 1
            self._cond.notify_all()

    def wait_for(self, n, timeout=5.0):
        with self._cond:
            return self._cond.wait_for(lambda: self.count >= n, timeout)


class FakeClock:
    """Stands in for time.monotonic in the debounce: time moves only when the test says so."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def polls_after(chip, n=3):
    """Wait until a port expander's poller has read *chip* *n* more times, so a change made before is seen."""
    start = chip.reads
    wait_until(lambda: chip.reads >= start + n, timeout=5, what=f"{n} polls of the chip")
