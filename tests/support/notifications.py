"""Helpers for the input driver tests: a notify callback to wait on, a clock the test moves."""

from __future__ import annotations

import threading


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
