"""The outbox: a bounded, ordered SQLite buffer of readings the agent has not acknowledged.

How the bridge uses it::

    outbox = Outbox(storage_dir / "outbox.db")
    outbox.append(readings_not_acknowledged_in_time)   # cheap, memory only
    ...                                                 # durable within commit_interval
    for entry in outbox.peek(100):                      # oldest first
        publish(entry.reading)                          # QoS 1
    outbox.remove(ids_whose_puback_arrived)             # only now do they leave
    outbox.close()

Threads.  Every public method may be called from any thread.  ``append``,
``remove``, ``peek`` and ``stats`` hold the memory lock only for
microseconds; they never wait for the disk (``peek`` and ``stats`` read the
file through their own WAL reader connection, which does not wait for a
commit in progress).  The disk is written only by ``commit``, which the
background thread ``pibridge-outbox`` calls every ``commit_interval`` seconds,
or every ``offline_commit_interval`` while the agent is away (see
:meth:`Outbox.commit_due_in`), or the owner calls ``maybe_commit()`` from its
loop, with ``auto_commit=False``.  ``append`` commits in the caller's thread
only when more than ``memory_limit`` readings wait and the disk is healthy,
which is back-pressure, not the normal path.

What is durable when: a reading is on disk once the ``commit`` that wrote it
has returned (a committed WAL transaction with ``synchronous=FULL``: the WAL
is fsynced before the commit returns).  ``append`` alone is memory only.  See
docs/delivery.md for the delivery guarantee and the loss bounds.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from pibridge.outbox.codec import Codec, Encoded, UndecodablePayload
from pibridge.outbox.files import (
    OutboxClosed,
    OutboxError,
    OutboxInUse,
)
from pibridge.outbox.lifecycle import FileLifecycle
from pibridge.outbox.limits import (
    DISK_FULL,
    EPISODE_QUIET,
    MAX_AGE,
    MAX_BYTES,
    MEMORY_LIMIT,
    UNDECODABLE,
    UNWRITABLE_AT_CLOSE,
    DropLog,
)
from pibridge.outbox.recovery import (
    CORRUPT_CODES,
    REOPEN_CODES,
    Tally,
    describe,
    fix_for,
    now_text,
    sqlite_code,
)
from pibridge.outbox.stats import OutboxStats, read_only_uri, read_stats, used_bytes
from pibridge.outbox.transaction import Batch, FileFigures, write_batch
from pibridge.readings import Reading

log = logging.getLogger("pibridge.outbox")

__all__ = ["Outbox", "OutboxClosed", "OutboxEntry", "OutboxError", "OutboxInUse", "OutboxStats", "read_stats"]

MIN_BYTES = 64 * 1024
#: A failing disk is retried after commit_interval, then twice as long each time, up to this.
RETRY_MAX = 10.0



@dataclass(frozen=True)
class OutboxEntry:
    """One reading waiting in the outbox; ``id`` is what :meth:`Outbox.remove` takes."""

    id: int
    reading: Reading


class Outbox(FileLifecycle):
    """A bounded FIFO of readings on disk, in SQLite, in WAL mode.

    ``path`` is the database file (its directory is created if missing).
    ``max_bytes`` bounds the file's live pages, ``max_age`` (seconds, or
    None) how old the head of the queue may get; both drop the oldest
    readings first, at commit time, and count them.  Commits come every
    ``commit_interval`` seconds; while the agent is away (the last commit
    only added readings and none have left since), every
    ``offline_commit_interval`` (by default the same), because every commit
    rewrites a few whole pages of the file whatever it adds, and an SD card
    wears by the page.  ``memory_limit`` bounds the readings held in memory
    while they cannot be written.  Raises
    :class:`OutboxInUse` when another process has the file open; disk
    problems never raise: see :meth:`stats`.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        max_bytes: int = 64 * 2**20,
        max_age: float | None = 7 * 86400,
        commit_interval: float = 1.0,
        offline_commit_interval: float | None = None,
        memory_limit: int = 10_000,
        auto_commit: bool = True,
    ) -> None:
        if max_bytes < MIN_BYTES:
            raise ValueError(f"outbox max_bytes must be at least {MIN_BYTES} bytes, not {max_bytes}")
        if max_age is not None and max_age <= 0:
            raise ValueError(f"outbox max_age must be positive seconds or None, not {max_age}")
        if commit_interval <= 0:
            raise ValueError(f"outbox commit_interval must be positive seconds, not {commit_interval}")
        if offline_commit_interval is None:
            offline_commit_interval = commit_interval
        if offline_commit_interval <= 0:
            raise ValueError(
                f"outbox offline_commit_interval must be positive seconds, not {offline_commit_interval}")
        if memory_limit < 1:
            raise ValueError(f"outbox memory_limit must be at least 1 reading, not {memory_limit}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.commit_interval = commit_interval
        self.offline_commit_interval = offline_commit_interval
        self.memory_limit = memory_limit

        # Lock order: _db_lock, then _read_lock, then _lock.  _lock is never
        # held while waiting for the disk.
        self._lock = threading.Lock()
        self._db_lock = threading.RLock()
        self._read_lock = threading.Lock()
        self._wake = threading.Condition(threading.Lock())

        self._codec = Codec()
        self._pending: dict[int, Encoded] = {}  # appended, not yet handed to a commit
        self._writing: dict[int, Encoded] = {}  # in the commit running now
        self._removed: set[int] = set()  # acknowledged; their rows go at the next commit
        self._deleting: set[int] = set()  # acknowledged, their rows being deleted by the commit running now
        self._undecodable: set[int] = set()  # rows peek could not decode; moved to `rejected`
        self._renumbered: dict[int, int] = {}  # old id -> id, after adopting a file (see _adopt_ids)
        self._next_id = 1

        self._db: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._checked = False
        self._tally_floor: Counter[str] = Counter()  # drop totals of the tally, merged into the file's on open
        self._tally_due = False  # losses found on open: record the new figures at once
        self._recount = False
        self._corrupt_seen: str | None = None
        self._disk_depth = 0
        self._stored_next_id = 0
        self._floor = 0  # every row with an id up to this is deleted or acknowledged (see _read_head)

        self._dropped: Counter[str] = Counter()  # totals, including those not yet persisted
        self._dropped_unsaved: Counter[str] = Counter()
        self._write_errors = 0
        self._last_error: str | None = None
        self._healthy = True
        self._drops = DropLog(self.path, self._limit_text, lambda reason: self._dropped[reason])
        self._last_commit = time.monotonic()
        # The last commit that did anything added readings and removed none: nothing is being
        # delivered from the outbox, the agent is away.
        self._away = False
        self._retry_delay = commit_interval
        self._crashes: dict[str, int] = {}
        self._crash_logged = 0.0
        self._retry_at = 0.0
        self._closed = False  # no more appends
        self._shut = False  # file closed for good
        self._stopping = False

        self._open(at_start=True)
        self._thread: threading.Thread | None = None
        if auto_commit:
            self._thread = threading.Thread(target=self._run, name="pibridge-outbox", daemon=True)
            self._thread.start()

    # -- the public API --------------------------------------------------------------------------

    def append(self, readings: Iterable[Reading]) -> None:
        """Queue readings (memory only until the next commit).

        Raises TypeError, before queueing any of them, when a value is not
        float, int, bool or str.  Never raises for disk problems.
        """
        encoded = [self._codec.encode(r) for r in readings]
        if not encoded:
            return
        with self._lock:
            if self._closed:
                raise OutboxClosed(f"outbox {self.path} is closed")
            for e in encoded:
                self._pending[self._next_id] = e
                self._next_id += 1
            backlog = len(self._pending) + len(self._writing)
            healthy = self._healthy
        if backlog > self.memory_limit // 2 and healthy and self._thread is not None:
            # Commit early while the disk takes it.  A failing disk is left to the retry
            # back-off: waking the thread on every append would retry on every append.
            with self._wake:
                self._wake.notify()
        if backlog > self.memory_limit:
            if healthy:
                self.commit()
            self._shed_memory()

    def commit(self) -> None:
        """Write everything appended and remove everything acknowledged, in one durable transaction.

        Also enforces ``max_bytes``/``max_age``.  Never raises for disk
        problems: the readings stay in memory and the next commit retries.
        """
        with self._db_lock:
            if self._shut:
                return
            self._last_commit = time.monotonic()
            if self._db is None or self._corrupt_seen:
                if self._corrupt_seen:
                    self._quarantine_open_file(self._corrupt_seen)
                if not self._open():
                    self._shed_memory()
                    return
            with self._lock:
                # _writing keeps the batch visible to peek (and removable)
                # until it is on disk; _deleting hides the acknowledged rows
                # until their deletion is.
                self._writing, self._pending = self._pending, {}
                items = list(self._writing.items())
                self._deleting, self._removed = self._removed, set()
                rejects, self._undecodable = self._undecodable, set()
                drops = Counter(self._dropped_unsaved)
            deletes = self._deleting
            layouts = self._codec.unsaved()
            try:
                result = self._write(Batch(items, deletes, rejects, drops, layouts, self.max_bytes, self.max_age))
            except BaseException as exc:
                with self._lock:
                    self._pending = {**self._writing, **self._pending}
                    self._writing = {}
                    self._removed |= deletes
                    self._deleting = set()
                    self._undecodable |= rejects
                if not isinstance(exc, (sqlite3.Error, OSError)):
                    raise
                self._write_failed(exc)
                self._shed_memory()
                return
            with self._lock:
                self._writing = {}
                self._deleting = set()
                self._dropped_unsaved -= drops
                if items or deletes:
                    self._away = bool(items) and not deletes
            if result is not None:
                for layout in layouts:
                    layout.saved = True
            for reason in (MAX_BYTES, MAX_AGE, DISK_FULL, UNDECODABLE):
                self._drops.record(reason, result.get(reason, 0) if result else 0)
            if not self._healthy:
                self._recovered()

    def maybe_commit(self) -> None:
        """Commit if ``commit_interval`` has passed since the last commit (for ``auto_commit=False``).

        While the disk fails, the retries back off instead: see :meth:`_retry_due`.
        """
        if time.monotonic() - self._last_commit >= self.commit_due_in() and self._retry_due():
            self.commit()

    def commit_due_in(self) -> float:
        """Seconds between commits now: ``offline_commit_interval`` while the agent is away (the
        last commit added readings and removed none, and none have been removed since), else
        ``commit_interval``."""
        with self._lock:
            away = self._away and not self._removed
        return self.offline_commit_interval if away else self.commit_interval

    def peek(self, limit: int, after_id: int = 0) -> list[OutboxEntry]:
        """The oldest ``limit`` readings, oldest first, committed or not.

        ``after_id`` skips entries up to that id (to page past readings
        already in flight).  Peeking does not take them out: only
        :meth:`remove` does.
        """
        if limit <= 0:
            return []
        with self._lock:
            removed = self._removed | self._deleting | self._undecodable
            waiting = itertools.chain(self._writing.items(), self._pending.items())
            later = ((i, e.reading) for i, e in waiting if i > after_id)
            memory = list(itertools.islice(later, limit))
        disk = self._read_head(limit, after_id, removed)
        seen: set[int] = set()
        out: list[OutboxEntry] = []
        for entry_id, reading in sorted(disk + memory, key=lambda item: item[0]):
            if entry_id not in seen and entry_id not in removed:
                seen.add(entry_id)
                out.append(OutboxEntry(entry_id, reading))
        return out[:limit]

    def remove(self, ids: Iterable[int]) -> None:
        """Acknowledged: these readings leave the outbox (on disk at the next commit).

        ``ids`` are :attr:`OutboxEntry.id` values from :meth:`peek`; an id
        that is not (or no longer) in the outbox is ignored.
        """
        with self._lock:
            for entry_id in ids:
                entry_id = self._renumbered.pop(entry_id, entry_id)
                if self._pending.pop(entry_id, None) is not None:
                    continue  # never reached the disk, and now never will
                if entry_id not in self._deleting:
                    # On disk, or being written right now: delete at the next commit.
                    self._writing.pop(entry_id, None)
                    self._removed.add(entry_id)
            back = self._away and bool(self._removed)
        if back and self._thread is not None:
            # The agent is back: commit at the shorter interval from now, not at the end of a long wait.
            with self._wake:
                self._wake.notify()

    def stats(self) -> OutboxStats:
        with self._lock:
            in_memory = len(self._pending) + len(self._writing)
            gone = len(self._removed) + len(self._deleting) + len(self._undecodable)
            depth = max(0, self._disk_depth - gone) + in_memory
            dropped = dict(self._dropped)
            write_errors, last_error, healthy = self._write_errors, self._last_error, self._healthy
        head = self.peek(1)
        return OutboxStats(
            depth=depth,
            bytes=self._live_bytes(),
            oldest_timestamp_ms=head[0].reading.timestamp_ms if head else None,
            dropped=sum(dropped.values()),
            dropped_reason=dropped,
            write_errors=write_errors,
            last_error=last_error,
            healthy=healthy,
            in_memory=in_memory,
        )

    def close(self) -> None:
        """Commit what is pending, stop the background thread and close the file."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._thread is not None:
            with self._wake:
                self._stopping = True
                self._wake.notify()
            self._thread.join()
        with self._db_lock:
            self.commit()
            with self._lock:
                lost = len(self._pending)
                self._pending = {}
                if lost:
                    self._dropped[UNWRITABLE_AT_CLOSE] += lost
            if lost:
                log.error(
                    "outbox %s: %d readings could not be written before closing and are lost (%s)",
                    self.path, lost, self._last_error,
                )
            self._close_connections()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
            self._shut = True

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the background thread -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._wake:
                if self._stopping:
                    return
                self._wake.wait(self.commit_due_in())
                if self._stopping:
                    return
            if not self._retry_due():
                continue
            try:
                self.commit()
            except Exception as exc:  # the thread must outlive any bug in one commit
                self._commit_crashed(exc)

    def _commit_crashed(self, exc: Exception) -> None:
        """Log a bug met by a commit: its traceback the first time, then a line a minute with the count."""
        kind = type(exc).__name__
        seen = self._crashes.get(kind, 0)
        self._crashes[kind] = seen + 1
        now = time.monotonic()
        if seen == 0:
            log.error("outbox %s: a commit failed (a bug; please report it); the readings stay in memory and "
                      "the commit is retried", self.path, exc_info=exc)
            self._crash_logged = now
        elif now - self._crash_logged >= EPISODE_QUIET:
            log.error("outbox %s: commits keep failing: %s: %s (%d times so far)", self.path, kind, exc, seen + 1)
            self._crash_logged = now

    def is_alive(self) -> bool:
        """Whether the commit thread runs (always True with ``auto_commit=False`` until closed)."""
        return not self._shut and (self._thread is None or self._thread.is_alive())

    def _retry_due(self) -> bool:
        """Whether the next commit may run now: always while the disk is fine; after a failure,
        once the back-off has passed (commit_interval, doubling up to RETRY_MAX), so that a
        failing disk costs a retry every few seconds, not one per commit interval or append."""
        return self._healthy or time.monotonic() >= self._retry_at

    # -- writing ---------------------------------------------------------------------------------

    def _write(self, batch: Batch) -> Counter[str] | None:
        """One transaction; the readings it dropped by reason, or None when there was nothing to do."""
        written = write_batch(self._db, self.path, batch, FileFigures(
            self._disk_depth, self._stored_next_id, self._write_errors, self._last_error))
        if written is None:
            return None
        with self._lock:
            self._disk_depth = written.depth
            self._stored_next_id = written.next_id
            self._dropped += written.dropped
        self._write_tally(Tally(written.next_id, written.head, written.depth, dict(+written.totals)))
        return written.dropped

    def _limit_text(self, reason: str) -> str:
        if reason == MAX_BYTES:
            return f"full (max_bytes = {self.max_bytes} bytes)"
        if reason == MAX_AGE:
            return f"holds readings older than max_age = {self.max_age:g} s"
        if reason == DISK_FULL:
            return f"the file system of {self.path.parent} is full"
        if reason == UNDECODABLE:
            return "holds readings that cannot be decoded (moved to the table `rejected`)"
        return f"cannot write to disk and already holds memory_limit = {self.memory_limit} readings in memory"

    def _shed_memory(self) -> None:
        """Keep at most memory_limit readings in memory, dropping the oldest of them."""
        with self._lock:
            over = len(self._pending) + len(self._writing) - self.memory_limit
            shed = min(max(0, over), len(self._pending))
            if shed:
                self._pending = dict(itertools.islice(self._pending.items(), shed, None))
                self._dropped[MEMORY_LIMIT] += shed
                self._dropped_unsaved[MEMORY_LIMIT] += shed
        if shed:
            self._drops.record(MEMORY_LIMIT, shed)

    def _write_failed(self, exc: BaseException, opening: bool = False) -> None:
        if isinstance(exc, sqlite3.DatabaseError) and sqlite_code(exc) in CORRUPT_CODES:
            self._quarantine_open_file(f"SQLite reported damage while using it ({exc})")
            return
        if isinstance(exc, sqlite3.IntegrityError) and self._db is not None:
            # Ids taken by rows this process did not write (the file was
            # written by someone else meanwhile): move ours behind them.
            with contextlib.suppress(sqlite3.Error):
                (max_id,) = self._db.execute("SELECT max(id) FROM reading").fetchone()
                with self._lock:
                    self._adopt_ids(max(self._stored_next_id, (max_id or 0) + 1))
        if isinstance(exc, sqlite3.Error) and sqlite_code(exc) in REOPEN_CODES:
            self._close_connections()
        action = "open" if opening else "write"
        message = f"{now_text()}: cannot {action} {self.path}: {describe(exc)}"
        self._retry_delay = self.commit_interval if self._healthy else min(
            max(RETRY_MAX, self.commit_interval), 2 * self._retry_delay)
        self._retry_at = time.monotonic() + self._retry_delay
        with self._lock:
            was_healthy = self._healthy
            self._healthy = False
            self._write_errors += 1
            self._last_error = message
            in_memory = len(self._pending) + len(self._writing)
        if self._reader is None:
            self._read_only_fallback()
        if was_healthy:
            log.error(
                "outbox: %s. Keeping readings in memory (%d now, at most %d, the oldest dropped beyond that) "
                "and retrying in %g s, then less often (at least every %g s). Fix: %s",
                message, in_memory, self.memory_limit, self._retry_delay, max(RETRY_MAX, self.commit_interval),
                fix_for(exc, self.path),
            )

    def _read_only_fallback(self) -> None:
        """While the file cannot be written, still read it, so that peek keeps delivering oldest first."""
        try:
            if not self.path.is_file():
                return
            reader = sqlite3.connect(
                read_only_uri(self.path), uri=True, isolation_level=None, check_same_thread=False, timeout=5
            )
        except (sqlite3.Error, OSError):
            return
        try:
            self._load(reader)
        except sqlite3.Error:
            reader.close()
            return
        with self._read_lock:
            self._reader = reader

    def _recovered(self) -> None:
        with self._lock:
            self._healthy = True
            depth = self._disk_depth
        log.warning("outbox %s: writable again; %d readings on disk, %d dropped for memory_limit so far",
                    self.path, depth, self._dropped[MEMORY_LIMIT])
        self._drops.record(MEMORY_LIMIT, 0, ended=True)

    # -- reading ---------------------------------------------------------------------------------

    def _read_head(self, limit: int, after_id: int, removed: set[int]) -> list[tuple[int, Reading]]:
        """Up to ``limit`` committed rows after ``after_id`` that are not in ``removed``, decoded."""
        out: list[tuple[int, Reading]] = []
        bad: list[int] = []
        with self._read_lock:
            reader = self._reader
            if reader is None:
                return out
            # Rows below the floor are all deleted or acknowledged: start there,
            # not at the head, so that a drain does not step over its own
            # acknowledged rows again on every peek until the next commit.
            floor = self._floor
            start = max(after_id, floor)
            try:
                while len(out) < limit:
                    rows = reader.execute(
                        "SELECT id, schema, ts, payload FROM reading WHERE id > ? ORDER BY id LIMIT ?",
                        (start, limit),
                    ).fetchall()
                    for entry_id, schema, ts, payload in rows:
                        if entry_id in removed:
                            if floor == start:
                                floor = entry_id
                        elif len(out) < limit:
                            try:
                                out.append((entry_id, self._codec.decode(schema, ts, payload)))
                            except UndecodablePayload as exc:
                                bad.append(entry_id)
                                log.error("outbox %s: reading %d cannot be decoded (%s); moving it to the table "
                                          "`rejected`", self.path, entry_id, exc)
                        start = entry_id
                    if len(rows) < limit:
                        break
            except sqlite3.DatabaseError as exc:
                if sqlite_code(exc) in CORRUPT_CODES:
                    self._corrupt_seen = f"SQLite reported damage while reading ({exc})"
                log.error("outbox %s: cannot read: %s", self.path, exc)
                return []
            if after_id <= self._floor:
                self._floor = max(self._floor, floor)
        if bad:
            with self._lock:
                self._undecodable.update(bad)
        return out

    def _live_bytes(self) -> int:
        with self._read_lock:
            if self._reader is None:
                return 0
            try:
                return used_bytes(self._reader)
            except sqlite3.Error:
                return 0
