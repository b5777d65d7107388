"""Who reads which sensor when: one scheduler thread and a handful of workers for all sensors.

A bridge with a thousand sensors must not need a thousand threads (on a Pi
Zero 2 W each costs stack memory and scheduling), yet a device that hangs
must delay only itself.  The :class:`ReadPool` does both:

* **The scheduler thread** (``read-scheduler``) keeps every sensor's next
  due time in a heap and sleeps until the first one is due.  The times lie
  on the wall-clock grid of the sensor's interval (:func:`next_slot`), but
  the sleeps are measured with the monotonic clock, so a clock step (NTP
  setting the time after a Pi booted without a real-time clock) never makes
  a wait last for hours.  When a sensor is due, the scheduler puts it on its
  worker queue; it never touches a device itself.
* **One worker per bus** (``read-i2c:1-1``): the drivers of sensors that
  share a bus say so (:meth:`pibridge.drivers.Driver.bus`, such as
  ``"i2c:1"`` or ``"spi:0"``), and all sensors of one bus are read by one
  thread, one after the other, so two drivers never talk over one bus at
  once.
* **A shared pool** (``read-pool-1`` ...; :data:`POOL_SIZE` threads at most,
  started as they are needed) reads the sensors whose device has a line of
  its own (a GPIO pin, the CPU temperature, the mock).

A sensor that is still being read (or waits for its worker) when its next
slot comes is not queued again: the slot is counted as missed
(``SensorHealth.missed``).  When a worker has been busy with one read for
longer than ``max(stuck_after, 2 intervals)``, the pool takes it as hung:
it starts a new worker for the rest of that queue and lets the stuck
thread end when its read returns.  For the shared pool that means the
other sensors carry on at once; the other sensors of a bus carry on too, in
the new thread, after waiting out that bound (until then they wait for the
bus like any read on a bus does).  So there are ``1 + buses + 4`` threads
at most in the normal case, and one more per hung device.

A :class:`Job` (the bridge's :class:`~pibridge.bridge.scheduler.SensorReader`)
does the reading; the pool only decides when and in which thread.

Threading: :meth:`ReadPool.add`, :meth:`~ReadPool.remove` and
:meth:`~ReadPool.wake` may be called from any thread and never block on a
read.  Every piece of the pool's bookkeeping is guarded by one lock, which
is never held while a device is read.  A bug in the scheduler or a worker
is logged and the thread carries on; after repeated crashes it gives up,
:meth:`ReadPool.dead` names it, and the daemon exits with status 1
(:mod:`pibridge.bridge.crashes`).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
import time
from collections import deque
from typing import Callable, Protocol

from pibridge.bridge.crashes import Crashes

log = logging.getLogger("pibridge.read_pool")

#: Threads of the shared pool, for sensors that share no bus.
POOL_SIZE = 4
#: A read running this long (or two intervals, if longer) is taken as hung (seconds).
STUCK_AFTER = 5.0
#: Pause of the scheduler after a bug in one of its turns (seconds).
_AFTER_A_CRASH = 0.1

# What a queued turn is for.
_READ, _RETRY, _FINISH = "read", "retry", "finish"
# What the scheduler's heap holds besides grid slots.
_SLOT, _EVENT = "slot", "event"
# Where a sensor is: waiting for its next slot, on a worker queue, being read, waiting to retry.
_IDLE, _QUEUED, _RUNNING, _RETRY_WAIT = "idle", "queued", "running", "retry-wait"


def next_slot(now: float, interval: float) -> float:
    """The next multiple of *interval* (seconds since the epoch) strictly after *now*."""
    return (math.floor(now / interval) + 1) * interval


class Job(Protocol):
    """What the pool needs of a sensor's reader."""

    name: str
    #: Seconds between grid slots.
    interval: float
    #: The shared bus its device is on (``"i2c:1"``), or None.
    bus: str | None

    def turn(self, retry: bool) -> float | None:
        """One read (worker thread); seconds until a retry, or None when done."""

    def finish(self) -> None:
        """Save, close the device, mark the job ended (worker thread)."""

    @property
    def ended(self) -> bool:
        """True once :meth:`finish` ran."""

    def count_missed(self, slots: int) -> None:
        """*slots* of the grid passed without a read (scheduler thread; must be quick)."""

    def earliest_read(self) -> float:
        """The monotonic time before which the device must not be read again (its minimum interval)."""


class _Entry:
    """The pool's bookkeeping for one job."""

    __slots__ = ("job", "queue", "state", "removed", "woken", "event_due", "slot")

    def __init__(self, job: Job, queue: _Queue):
        self.job = job
        self.queue = queue
        self.state = _IDLE
        self.removed = False
        #: A watched change arrived during a read: read again right after it.
        self.woken = False
        #: An immediate read after a watched change waits in the heap for the device's minimum interval.
        self.event_due = False
        #: The wall-clock time of the grid slot last put in the heap.
        self.slot = -math.inf


class _Queue:
    """Turns waiting for the workers of one bus (or of the shared pool)."""

    def __init__(self, name: str, size: int, lock: threading.Lock):
        self.name = name
        self.size = size
        self.items: deque[tuple[_Entry, str]] = deque()
        self.workers: list[_Worker] = []
        self.idle = 0
        self.ready = threading.Condition(lock)
        self.numbers = itertools.count(1)

    def describe(self) -> str:
        return "the shared read pool" if self.name == "pool" else f"bus {self.name}"


class _Worker:
    """One thread taking turns from one queue."""

    def __init__(self, pool: ReadPool, queue: _Queue):
        self.pool = pool
        self.queue = queue
        self.name = f"read-{queue.name}-{next(queue.numbers)}"
        self.entry: _Entry | None = None
        self.since = 0.0
        self.stuck_at = math.inf
        #: Replaced by another worker while hung; ends when its read returns.
        self.stuck = False
        self.crashes = Crashes(log, f"the read worker {self.name}")
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def _run(self) -> None:
        while True:
            item = self.pool._take(self)
            if item is None:
                return
            entry, kind = item
            result = None
            try:
                if kind == _FINISH:
                    entry.job.finish()
                else:
                    result = entry.job.turn(kind == _RETRY)
                self.crashes.turn_went_well()
            except Exception as exc:
                # The job handles its own bugs; what gets here is the pool's or the job's crash handling.
                if not self.crashes.record(exc):
                    self.pool._done(self, entry, None)
                    return
            if not self.pool._done(self, entry, result):
                return


class ReadPool:
    """Schedules every sensor's reads and runs them in a few threads (see the module's description).

    *pool_size* is the number of shared workers, *stuck_after* the shortest
    time a read may take before its worker is replaced, *clock* the wall
    clock the grid is laid on.  Threads start when the first sensor is
    added; :meth:`stop` ends them.
    """

    def __init__(self, *, pool_size: int = POOL_SIZE, stuck_after: float = STUCK_AFTER,
                 clock: Callable[[], float] = time.time):
        self.pool_size = max(1, int(pool_size))
        self.stuck_after = float(stuck_after)
        self._clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, _Entry, str]] = []
        self._order = itertools.count()
        self._entries: dict[int, _Entry] = {}
        self._queues: dict[str, _Queue] = {}
        self._stuck: list[_Worker] = []
        self._stopping = False
        self._scheduler: threading.Thread | None = None
        self._crashes = Crashes(log, "the read scheduler")

    # -- any thread ---------------------------------------------------------------------

    def add(self, job: Job) -> None:
        """Read *job* at once, then on its grid until :meth:`remove`."""
        with self._lock:
            if self._stopping:
                raise RuntimeError("the read pool is stopped")
            if self._scheduler is None:
                self._scheduler = threading.Thread(target=self._schedule, name="read-scheduler", daemon=True)
                self._scheduler.start()
            name = job.bus or "pool"
            queue = self._queues.get(name)
            if queue is None:
                queue = self._queues[name] = _Queue(name, 1 if job.bus else self.pool_size, self._lock)
            entry = self._entries[id(job)] = _Entry(job, queue)
            self._enqueue(entry, _READ)
            self._push_slot(entry, time.monotonic())
            self._changed.notify()

    def remove(self, job: Job) -> None:
        """Take *job* out of the schedule; it finishes (saves and closes) once its current read ends."""
        with self._lock:
            entry = self._entries.get(id(job))
            if entry is None or entry.removed:
                return
            entry.removed = True
            if entry.state in (_IDLE, _RETRY_WAIT):
                self._enqueue(entry, _FINISH)

    def wake(self, job: Job) -> None:
        """Read *job* now (a watched change), or right after its read in progress; never blocks."""
        with self._lock:
            entry = self._entries.get(id(job))
            if entry is not None and not entry.removed:
                self._wake(entry, time.monotonic())

    def read_by(self, job: Job) -> str:
        """Which threads read *job*, for the log."""
        return f"the worker of bus {job.bus}" if job.bus else "the shared read pool"

    def threads(self) -> list[threading.Thread]:
        """The pool's threads that are alive: the scheduler, the workers, hung workers not yet ended."""
        with self._lock:
            workers = [w for q in self._queues.values() for w in q.workers] + self._stuck
            found = [self._scheduler] if self._scheduler is not None else []
            return [t for t in found + [w.thread for w in workers] if t.is_alive()]

    def dead(self) -> list[str]:
        """Names of the pool's threads that ended without :meth:`stop` (they gave up after repeated crashes)."""
        with self._lock:
            if self._stopping:
                return []
            workers = [w for q in self._queues.values() for w in q.workers] + self._stuck
            threads = ([self._scheduler] if self._scheduler is not None else []) + [w.thread for w in workers]
            return [t.name for t in threads if t.ident is not None and not t.is_alive()]

    def stop(self, timeout: float = 1.0) -> bool:
        """End the scheduler and the idle workers (call after the readers have stopped).

        Returns True when every thread ended; a worker stuck in a hung read is left to end with the process.
        """
        with self._lock:
            self._stopping = True
            self._changed.notify_all()
            for queue in self._queues.values():
                queue.ready.notify_all()
            threads = ([self._scheduler] if self._scheduler is not None else [])
            threads += [w.thread for q in self._queues.values() for w in q.workers if w.entry is None]
        deadline = time.monotonic() + timeout
        for thread in threads:
            if thread.ident is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    # -- with the lock held ---------------------------------------------------------------

    def _push(self, at: float, entry: _Entry, kind: str) -> None:
        heapq.heappush(self._heap, (at, next(self._order), entry, kind))

    def _push_slot(self, entry: _Entry, now: float) -> None:
        wall = self._clock()
        interval = entry.job.interval
        slot = next_slot(wall, interval)
        if abs(slot - entry.slot) < interval / 2:
            # Woken a hair before the slot (the wall clock runs a little slow against the
            # monotonic one): that slot is the one just served, so the next is one later.
            slot += interval
        entry.slot = slot
        self._push(now + (slot - wall), entry, _SLOT)

    def _enqueue(self, entry: _Entry, kind: str) -> None:
        queue = entry.queue
        entry.state = _QUEUED
        queue.items.append((entry, kind))
        if queue.idle:
            queue.ready.notify()
        # A worker woken just now may not have taken its turn yet: count the turns, not the wake-ups.
        if len(queue.items) > queue.idle and len(queue.workers) < queue.size:
            worker = _Worker(self, queue)
            queue.workers.append(worker)
            worker.thread.start()

    def _wake(self, entry: _Entry, now: float) -> None:
        if entry.state == _QUEUED:
            return  # the read about to happen sees the change
        if entry.state != _IDLE:
            entry.woken = True
            return
        if entry.event_due:
            return
        at = entry.job.earliest_read()
        if at <= now:
            self._enqueue(entry, _READ)
        else:
            entry.event_due = True
            self._push(at, entry, _EVENT)
            self._changed.notify()

    # -- worker threads ----------------------------------------------------------------------

    def _take(self, worker: _Worker) -> tuple[_Entry, str] | None:
        """The next turn for *worker*, waiting for one; None when the pool stops."""
        queue = worker.queue
        with self._lock:
            while not queue.items and not self._stopping:
                queue.idle += 1
                queue.ready.wait()
                queue.idle -= 1
            if self._stopping:
                return None
            entry, kind = queue.items.popleft()
            entry.state = _RUNNING
            worker.entry = entry
            worker.since = time.monotonic()
            worker.stuck_at = worker.since + max(self.stuck_after, 2 * entry.job.interval)
            return entry, kind

    def _done(self, worker: _Worker, entry: _Entry, retry_in: float | None) -> bool:
        """Book a finished turn; False when *worker* is to end (it was replaced while hung)."""
        now = time.monotonic()
        with self._lock:
            worker.entry = None
            worker.stuck_at = math.inf
            if worker.stuck:
                self._stuck.remove(worker)
                log.info("sensor %r: the read that hung for %.0f s has returned; its thread %s ends",
                         entry.job.name, now - worker.since, worker.name)
            if entry.job.ended:
                entry.removed = True
                self._entries.pop(id(entry.job), None)
            elif entry.removed:
                self._enqueue(entry, _FINISH)
            elif retry_in is not None:
                entry.state = _RETRY_WAIT
                self._push(now + retry_in, entry, _RETRY)
                self._changed.notify()
            else:
                entry.state = _IDLE
                if entry.woken:
                    entry.woken = False
                    self._wake(entry, now)
            return not worker.stuck

    # -- the scheduler thread ---------------------------------------------------------------

    def _schedule(self) -> None:
        with self._lock:
            while not self._stopping:
                try:
                    timeout = self._tick(time.monotonic())
                    self._crashes.turn_went_well()
                except Exception as exc:
                    if not self._crashes.record(exc):
                        return
                    timeout = _AFTER_A_CRASH
                self._changed.wait(timeout)

    def _tick(self, now: float) -> float:
        """Hand out what is due and replace hung workers; how long to sleep then."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, _, entry, kind = heapq.heappop(heap)
            if entry.removed:
                continue
            if kind == _SLOT:
                self._slot_due(entry, now - at, now)
            elif kind == _RETRY:
                self._enqueue(entry, _RETRY)
            else:
                entry.event_due = False
                self._wake(entry, now)
        self._replace_hung(now)
        # Woken at least this often, so a read that starts hanging meanwhile is noticed in time.
        wake = now + self.stuck_after
        if heap:
            wake = min(wake, heap[0][0])
        for queue in self._queues.values():
            for worker in queue.workers:
                wake = min(wake, worker.stuck_at)
        return max(0.0, wake - now)

    def _slot_due(self, entry: _Entry, late: float, now: float) -> None:
        job = entry.job
        # The next slot first: whatever goes wrong below, the sensor stays in the schedule.
        self._push_slot(entry, now)
        # Slots the scheduler itself slept through (a starved CPU) were not read either.
        skipped = int(late // job.interval)
        if entry.state == _IDLE:
            self._enqueue(entry, _READ)
        else:
            skipped += 1  # still being read: never queued twice
        if skipped:
            job.count_missed(skipped)

    def _replace_hung(self, now: float) -> None:
        for queue in self._queues.values():
            for worker in [w for w in queue.workers if w.stuck_at <= now]:
                worker.stuck = True
                queue.workers.remove(worker)
                self._stuck.append(worker)
                log.warning("sensor %r: its read has taken %.0f s so far (the device may hang); the other sensors "
                            "of %s carry on in a new thread, and %s ends when this read returns",
                            worker.entry.job.name, now - worker.since, queue.describe(), worker.name)
                if queue.items:
                    replacement = _Worker(self, queue)
                    queue.workers.append(replacement)
                    replacement.thread.start()


_shared: ReadPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> ReadPool:
    """The process's default pool, for readers made without one (the daemon makes its own)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ReadPool()
        return _shared
