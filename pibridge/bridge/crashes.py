"""How a long-lived thread outlives a bug in one turn of its loop, without hiding it.

Each thread of the daemon (a sensor's reader, the delivery thread) runs its
loop inside ``try``; an exception that escapes one turn goes to
:meth:`Crashes.record`, which logs the first traceback of each kind with
the thread's name (later ones of the same kind as one line with a count,
so a bug hit every second does not flood the journal) and says whether to
carry on.  After ``limit`` crashes with no good turn in between, the thread
gives up and ends; the daemon's control loop notices the dead thread and
exits with status 1, so systemd restarts the whole daemon instead of
leaving it running without that thread.
"""

from __future__ import annotations

import logging
import traceback


class Crashes:
    """Crashes of one thread's loop; one instance per thread, used only by that thread."""

    def __init__(self, log: logging.Logger, what: str, limit: int = 5):
        self.log = log
        self.what = what
        self.limit = limit
        self.total = 0
        self.in_a_row = 0
        self._seen: dict[tuple[str, str], int] = {}

    def record(self, exc: BaseException) -> bool:
        """Log *exc* (from inside an ``except`` block); True to carry on, False to give up."""
        self.total += 1
        self.in_a_row += 1
        frames = traceback.extract_tb(exc.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        kind = (type(exc).__name__, where)
        seen = self._seen.get(kind, 0)
        self._seen[kind] = seen + 1
        if seen == 0:
            self.log.error("%s failed (a bug; please report it): %s: %s", self.what, type(exc).__name__, exc,
                           exc_info=exc)
        else:
            self.log.error("%s failed again: %s: %s at %s (%d times so far; traceback logged the first time)",
                           self.what, type(exc).__name__, exc, where, seen + 1)
        if self.in_a_row >= self.limit:
            self.log.critical("%s failed %d times in a row; giving up on it, pibridge exits so that it is "
                              "restarted", self.what, self.in_a_row)
            return False
        return True

    def turn_went_well(self) -> None:
        self.in_a_row = 0
