"""Watching a running daemon from outside: /proc samples, and what the simulator's store says arrived.

The scaling, Pi-class, feature and peer benchmarks all look at a process
the same way: CPU seconds, RSS and thread count from /proc/<pid>, and the
readings the agent simulator stored (``pushed_values``: the push's
``timestamp_ms``, taken when the sensor was read, and ``received_at``, when
the simulator stored it).  Nothing here touches the daemon's insides, so the
figures hold whatever its scheduler or delivery code looks like.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection, Iterator

from _common import proc_cpu_seconds, proc_status_kb, stop


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (0-100) by nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def threads(pid: int) -> int:
    """The ``Threads:`` line of /proc/<pid>/status (0 once the process is gone)."""
    return proc_status_kb(pid, "Threads")


@dataclass
class Window:
    """CPU, memory and threads of one process over a stretch of time (see :class:`Sampler`)."""

    seconds: float
    cpu_seconds: float
    rss_mean_mb: float
    hwm_mb: float
    threads_max: int

    @property
    def cpu_percent(self) -> float:
        """Percent of one core, averaged over the window."""
        return 100 * self.cpu_seconds / self.seconds if self.seconds else math.nan


@dataclass
class Sampler:
    """Samples one process every ``every`` seconds while the caller waits: ``with Sampler(pid) as s: s.run(30)``."""

    pid: int
    every: float = 1.0
    _rss: list[int] = field(default_factory=list)
    _threads: list[int] = field(default_factory=list)

    def run(self, seconds: float, proc: subprocess.Popen | None = None) -> Window:
        t0, c0 = time.monotonic(), proc_cpu_seconds(self.pid)
        end = t0 + seconds
        while (now := time.monotonic()) < end:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"process {self.pid} exited with {proc.returncode} during the measurement")
            self._rss.append(proc_status_kb(self.pid, "VmRSS"))
            self._threads.append(threads(self.pid))
            time.sleep(min(self.every, max(0.0, end - now)))
        c1, t1 = proc_cpu_seconds(self.pid), time.monotonic()
        rss = self._rss or [0]
        return Window(t1 - t0, c1 - c0, sum(rss) / len(rss) / 1024,
                      proc_status_kb(self.pid, "VmHWM") / 1024, max(self._threads or [0]))


@contextlib.contextmanager
def stopping(*procs: subprocess.Popen) -> Iterator[list[subprocess.Popen]]:
    """Yield a list of processes to stop on the way out, errors included (``list.append`` more)."""
    running = list(procs)
    try:
        yield running
    finally:
        for proc in reversed(running):
            stop(proc)


# -- what arrived ---------------------------------------------------------------------------------


@dataclass
class Arrivals:
    """Readings of one client whose read time falls in [start, end) of a clock grid, as the simulator stored them."""

    sensors: int
    metrics: int
    slots: int
    values: int
    readings: int
    jitter_ms: list[float]
    delay_ms: list[float]

    @property
    def expected_values(self) -> int:
        return self.sensors * self.metrics * self.slots

    @property
    def expected_readings(self) -> int:
        return self.sensors * self.slots


def _db(sim: object) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{sim.store.path}?mode=ro", uri=True, timeout=30)


def _only(client_id: str, sensors: Collection[str] | None, metrics: Collection[str] | None) -> tuple[str, list]:
    """SQL narrowing ``pushed_values`` to sensors and metrics named so in the config (None: all of them)."""
    sql, args = "", []
    if sensors is not None:
        sql += (" AND sensor_id IN (SELECT sensor_id FROM sensors WHERE client_id = ? AND name IN"
                f" ({', '.join('?' * len(sensors))}))")
        args += [client_id, *sensors]
    if metrics is not None:
        sql += (" AND (sensor_id, metric_id) IN (SELECT sensor_id, metric_id FROM metrics WHERE client_id = ?"
                f" AND name IN ({', '.join('?' * len(metrics))}))")
        args += [client_id, *metrics]
    return sql, args


def count_in(sim: object, client_id: str, start_ms: int, end_ms: int, *,
             sensors: Collection[str] | None = None, metrics: Collection[str] | None = None) -> int:
    """Values stored for the client whose timestamp lies in [start_ms, end_ms), of the named sensors and metrics only if given."""
    only, args = _only(client_id, sensors, metrics)
    with contextlib.closing(_db(sim)) as db:
        return db.execute(
            "SELECT count(*) FROM pushed_values WHERE client_id = ? AND timestamp_ms >= ? AND timestamp_ms < ?" + only,
            (client_id, start_ms, end_ms, *args)).fetchone()[0]


def sensors_seen(sim: object, client_id: str) -> int:
    """How many of the client's sensors the simulator has stored at least one value from."""
    with contextlib.closing(_db(sim)) as db:
        return db.execute("SELECT count(DISTINCT sensor_id) FROM pushed_values WHERE client_id = ?",
                          (client_id,)).fetchone()[0]


def arrivals(sim: object, client_id: str, sensors: int, metrics: int, interval: float,
             start: float, end: float, *, names: Collection[str] | None = None) -> Arrivals:
    """What arrived of the readings due on the grid slots from ``start`` to ``end`` (Unix seconds, on the grid).

    A reading's jitter is its read time minus the grid slot it belongs to
    (the latest multiple of ``interval`` at or before it); its delay is the
    simulator's ``received_at`` minus its read time.  One reading = one
    (sensor, timestamp) pair; its first stored value counts for the delay.
    With ``names`` only those sensors (by their config names) count.
    """
    step = int(round(interval * 1000))
    start_ms, end_ms = int(round(start * 1000)), int(round(end * 1000))
    only, args = _only(client_id, names, None)
    with contextlib.closing(_db(sim)) as db:
        rows = db.execute(
            "SELECT sensor_id, timestamp_ms, count(*), min(received_at) FROM pushed_values"
            " WHERE client_id = ? AND timestamp_ms >= ? AND timestamp_ms < ?" + only + " GROUP BY sensor_id, timestamp_ms",
            (client_id, start_ms, end_ms, *args)).fetchall()
    jitter = [float(ts % step) for _sensor, ts, _n, _r in rows]
    delay = [received * 1000 - ts for _sensor, ts, _n, received in rows]
    return Arrivals(sensors, metrics, (end_ms - start_ms) // step, sum(r[2] for r in rows), len(rows), jitter, delay)


def wait_arrived(sim: object, client_id: str, expected: int, start: float, end: float, timeout: float, *,
                 sensors: Collection[str] | None = None, metrics: Collection[str] | None = None) -> int:
    """Wait (at most ``timeout`` s) until ``expected`` values with read times in [start, end) are stored (see :func:`count_in`)."""
    deadline = time.monotonic() + timeout
    start_ms, end_ms = int(start * 1000), int(end * 1000)
    while ((n := count_in(sim, client_id, start_ms, end_ms, sensors=sensors, metrics=metrics)) < expected
           and time.monotonic() < deadline):
        time.sleep(0.5)
    return n


def next_grid(interval: float, after: float | None = None) -> float:
    """The first multiple of ``interval`` (Unix seconds) after ``after`` (default: now)."""
    now = time.time() if after is None else after
    return (math.floor(now / interval) + 1) * interval


def sleep_until(unix_time: float) -> None:
    time.sleep(max(0.0, unix_time - time.time()))


def provision_client(config: Path, log: Path) -> str:
    """``pibridge provision`` with ``config``: the client ID it prints (the identity stays on disk)."""
    from _common import pibridge_cmd

    out = subprocess.run(pibridge_cmd("provision", "--config", str(config)), capture_output=True, text=True, timeout=120)
    with log.open("a") as f:
        f.write(out.stdout + out.stderr)
    if out.returncode != 0:
        raise RuntimeError(f"pibridge provision failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    for word in out.stdout.split():
        if len(word) == 32 and all(c in "0123456789abcdef" for c in word.lower()):
            return word
    raise RuntimeError(f"pibridge provision printed no client ID: {out.stdout!r}")


def fmt_ms(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.0f} ms" if x >= 10 else f"{x:.1f} ms"

