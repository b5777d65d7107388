"""The reload part of the feature benchmark: SIGHUP a running daemon again and again and see what it costs.

Each reload rewrites the config so that one sensor really changes (turn by
turn the interval of the first sensor, then a filter of the second), sends
SIGHUP, and waits for the daemon's own word that the reload is over: the
``READY=1`` it sends on its ``$NOTIFY_SOCKET`` (the systemd notify
protocol, here a Unix datagram socket the benchmark holds), checked against
the ``reload done:`` line of its log.  The next reload waits until a reading
of an unchanged sensor taken after the reload has reached the simulator, so
the reloads are spread over the readings instead of piling up in one second.

A changed sensor gets a new reader, and with it new filters: a median of 5
holds the first four readings after each reload.  The benchmark counts what
arrived of the second sensor (its interval stays 1 s) to show how much.

Figures: seconds from SIGHUP to ``READY=1``; RSS and threads before the
first reload and after the last; and whether every reading of the
unchanged sensors due while the reloads went on reached the simulator.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from _common import proc_status_kb, wait_for
from _observe import Arrivals, arrivals, count_in, sleep_until, threads, wait_arrived

#: A reload's config, given which of the two changes are in: (first sensor's interval changed, second one's filter changed).
Writer = Callable[[bool, bool], None]


class NotifySocket:
    """The supervisor's end of the sd_notify protocol: pass ``env`` to the daemon, then :meth:`wait_for` its messages."""

    def __init__(self, path: Path):
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))

    @property
    def env(self) -> dict[str, str]:
        return {"NOTIFY_SOCKET": str(self.path)}

    def drain(self) -> None:
        """Forget what was sent so far (start-up's ``READY=1``, ``STATUS=`` lines)."""
        self._sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                self._sock.recv(4096)

    def wait_for(self, assignment: str, timeout: float) -> float:
        """Block until a message holding ``assignment`` (e.g. ``READY=1``) arrives; its ``time.monotonic()``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self._sock.settimeout(left)
            try:
                message = self._sock.recv(4096).decode("utf-8", "replace")
            except TimeoutError:
                break
            if assignment in message.splitlines():
                return time.monotonic()
        raise TimeoutError(f"no {assignment} on {self.path} within {timeout:g} s")

    def close(self) -> None:
        self._sock.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


@dataclass
class ReloadRun:
    """What :func:`reload_many` measured."""

    seconds: list[float]
    what: list[str]
    rss_before_mb: float
    rss_first_mb: float
    rss_after_mb: float
    threads_before: int
    threads_after: int
    unchanged: Arrivals
    #: the second sensor's, whose interval stays: its filters start empty after each of its reloads
    refiltered: Arrivals
    changed_back: int
    changed: int
    #: WARNING and ERROR lines the daemon logged while it reloaded
    complaints: list[str]

    @property
    def lost_values(self) -> int:
        return self.unchanged.expected_values - self.unchanged.values


def reload_many(sim: object, proc: subprocess.Popen, notify: NotifySocket, log: Path, client_id: str, *,
                write: Writer, names: list[str], metrics: int, reloads: int, timeout: float = 30.0) -> ReloadRun:
    """Reload the daemon ``reloads`` times through SIGHUP; ``names`` are its sensors (the first two are changed)."""
    changed, unchanged = names[:2], names[2:]
    rss_before, threads_before = proc_status_kb(proc.pid, "VmRSS") / 1024, threads(proc.pid)
    seconds, what = [], []
    interval_changed = filter_changed = False
    first = last_applied = rss_first = math.nan
    complaints: list[str] = []
    for turn in range(reloads):
        if turn % 2 == 0:
            interval_changed = not interval_changed
            what.append(f"{changed[0]} interval")
        else:
            filter_changed = not filter_changed
            what.append(f"{changed[1]} filter")
        write(interval_changed, filter_changed)
        notify.drain()
        marker = log.stat().st_size
        sent = time.monotonic()
        if turn == 0:
            first = time.time()
        os.kill(proc.pid, signal.SIGHUP)
        notify.wait_for("RELOADING=1", timeout)
        seconds.append(notify.wait_for("READY=1", timeout) - sent)
        last_applied = time.time()
        if turn == 0:
            rss_first = proc_status_kb(proc.pid, "VmRSS") / 1024
        complaints += _check_applied(log, marker, turn + 1)
        # The next reload once the data path has carried a reading taken after this one.
        since = int(last_applied * 1000)
        wait_for(lambda: count_in(sim, client_id, since, 2**62, sensors=unchanged[:1]) > 0, timeout,
                 f"a reading of {unchanged[0]} after reload {turn + 1}", 0.1)
    threads_after = threads(proc.pid)
    # Every slot from two before the first SIGHUP to two after the last reload.
    start, end = math.floor(first) - 2.0, math.floor(last_applied) + 3.0
    slots = int(end - start)
    expected = len(unchanged) * metrics * slots
    sleep_until(end)
    wait_arrived(sim, client_id, expected, start, end, timeout, sensors=unchanged)
    got = arrivals(sim, client_id, len(unchanged), metrics, 1.0, start, end, names=unchanged)
    refiltered = arrivals(sim, client_id, 1, metrics, 1.0, start, end, names=changed[1:])
    since = int(last_applied * 1000)
    back = 0
    for name in changed:
        with contextlib.suppress(TimeoutError):
            wait_for(lambda n=name: count_in(sim, client_id, since, 2**62, sensors=[n]) > 0, timeout,
                     f"a value of {name} after the last reload", 0.2)
            back += 1
    return ReloadRun(seconds, what, rss_before, rss_first, proc_status_kb(proc.pid, "VmRSS") / 1024, threads_before,
                     threads_after, got, refiltered, back, len(changed), complaints)


def _check_applied(log: Path, marker: int, turn: int) -> list[str]:
    """The WARNING and ERROR lines of the log from ``marker`` on; raise unless it says the reload was applied."""
    with log.open("rb") as f:
        f.seek(marker)
        lines = f.read().decode("utf-8", "replace").splitlines()
    done = [line for line in lines if "reload done:" in line]
    if not done or " 1 changed" not in done[-1]:
        said = "\n".join(lines[-20:])
        raise RuntimeError(f"reload {turn} was not applied with one sensor changed; the daemon said:\n{said}")
    return [line for line in lines if " WARNING " in line or " ERROR " in line or " CRITICAL " in line]
