"""How the outbox opens its file, checks it against the tally of its last commit, and moves a
damaged one aside.

A part of :class:`pibridge.outbox.store.Outbox` (it shares its state and its locks): the
commit thread calls these on start, after a disk problem and when a commit finds the file
damaged.  :mod:`pibridge.outbox.recovery` decides what is damaged; this applies it to the
outbox's own counts, so that what was lost is counted as ``corrupt``, never dropped silently.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections import Counter

from pibridge.outbox.files import OutboxInUse, connect, make_private_dir, take_lock
from pibridge.outbox.limits import CORRUPT
from pibridge.outbox.recovery import Tally, examine, quarantine

log = logging.getLogger("pibridge.outbox")


class FileLifecycle:
    """Opening, checking and replacing the outbox's file; mixed into ``Outbox``."""

    def _open(self, at_start: bool = False) -> bool:
        """Open (or create) the file; on a disk problem stay in memory and return False.

        Raises OutboxInUse only ``at_start``: later (retrying after a disk
        problem) another process having taken the file is one more reason
        to keep the readings in memory and report it.
        """
        self._close_connections()  # a read-only fallback reader, if any
        try:
            make_private_dir(self.path.parent)
            if self._lock_fd is None:
                self._lock_fd = take_lock(self.path)
            if not self._checked:
                self._check_on_open()
                self._checked = True
            self._db = connect(self.path)
            self._load(self._db)
            self._reader = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=5)
            if self._tally_due:
                self._save_tally()
            return True
        except OutboxInUse as exc:
            if at_start:
                raise
            self._write_failed(exc, opening=True)
            return False
        except (sqlite3.Error, OSError) as exc:
            self._close_connections()
            self._write_failed(exc, opening=True)
            return False

    def _check_on_open(self) -> None:
        """Compare the file with the tally of its last commit; count what is missing (see :func:`examine`)."""
        found = examine(self.path)
        self._tally_floor = found.tally_dropped
        if found.moved_aside:
            self._codec.forget_saved()
        if found.problem:
            self._last_error = found.problem
        self._recount = found.recount
        if found.tally_due:
            self._count_lost_at_open(found.lost)

    def _count_lost_at_open(self, lost: int) -> None:
        self._tally_due = True
        if lost:
            self._dropped[CORRUPT] += lost
            self._dropped_unsaved[CORRUPT] += lost

    def _save_tally(self) -> None:
        """Record the figures of the file as they are now (after open, after moving a file aside)."""
        self._tally_due = False
        with self._lock:
            tally = Tally(self._stored_next_id, self._stored_next_id - self._disk_depth,
                          self._disk_depth, dict(+self._dropped))
        tally.head = max(1, tally.head)
        self._write_tally(tally)

    def _write_tally(self, tally: Tally) -> None:
        try:
            tally.save(self.path)
        except OSError as exc:
            # Only the detection of a later loss suffers; the next commit tries again.
            log.debug("outbox %s: cannot write its tally: %s", self.path, exc)

    def _quarantine_open_file(self, problem: str) -> None:
        """The open file turned out damaged: move it aside and start a fresh one."""
        self._corrupt_seen = None
        self._close_connections()
        with self._lock:
            lost = max(0, self._disk_depth - len(self._removed) - len(self._deleting))
        try:
            self._last_error = quarantine(self.path, problem, lost)
        except OSError as exc:
            self._write_failed(exc)
            return
        self._codec.forget_saved()
        with self._lock:
            self._removed.clear()
            self._undecodable.clear()
            self._disk_depth = 0
            if lost:
                self._dropped[CORRUPT] += lost
            # The fresh file starts with the totals so far, so that `dropped` never goes down.
            self._dropped_unsaved = Counter(self._dropped)
        self._tally_due = True

    def _load(self, db: sqlite3.Connection) -> None:
        meta = dict(db.execute("SELECT key, value FROM meta"))
        self._codec.load(db.execute("SELECT id, sensor, fields FROM schema").fetchall())
        (max_id,) = db.execute("SELECT max(id) FROM (SELECT max(id) AS id FROM reading UNION ALL SELECT max(id) FROM rejected)").fetchone()
        depth = meta.get("depth")
        if depth is None or self._recount:
            (depth,) = db.execute("SELECT count(*) FROM reading").fetchone()
            self._recount = False
        stored_drops = Counter({k.removeprefix("dropped:"): v for k, v in meta.items() if k.startswith("dropped:")})
        # Totals the tally knew and the file does not (it lost its last commits, or was replaced).
        behind = self._tally_floor - stored_drops
        self._tally_floor = Counter()
        with self._lock:
            self._dropped_unsaved += behind
            self._disk_depth = depth
            self._stored_next_id = max(int(meta.get("next_id", 1)), (max_id or 0) + 1)
            self._dropped = stored_drops + self._dropped_unsaved
            self._write_errors = max(self._write_errors, int(meta.get("write_errors", 0)))
            self._adopt_ids(self._stored_next_id)

    def _adopt_ids(self, first_free: int) -> None:
        """Give readings kept in memory ids after the file's own, keeping their order (holds _lock)."""
        waiting = list(self._writing.items()) + list(self._pending.items())
        if not waiting or waiting[0][0] >= first_free:
            self._next_id = max(self._next_id, first_free)
            return
        self._pending = {}
        for old_id, entry in waiting:
            self._pending[first_free] = entry
            self._renumbered[old_id] = first_free
            first_free += 1
        self._writing = {}
        self._next_id = first_free

    def _close_connections(self) -> None:
        with self._read_lock:
            for con in (self._reader, self._db):
                if con is not None:
                    with contextlib.suppress(sqlite3.Error):
                        con.close()
            self._reader = self._db = None
            self._floor = 0
