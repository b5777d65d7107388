"""What the outbox drops when a limit is reached, and how it tells.

Every limit drops from the head of the queue, the oldest readings first, inside
the commit's transaction: ``max_age`` (:func:`drop_expired`), ``max_bytes``
and a nearly full file system (:func:`drop_over_size`, with the room
:func:`room_on_disk` leaves).  :class:`DropLog` logs a run of drops once when
it starts and once when it ends, never per reading.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pibridge.outbox.stats import used_bytes

log = logging.getLogger("pibridge.outbox")

#: The page size of a new outbox file.  Each commit rewrites whole pages (the last, partly
#: filled page of ``reading``, ``meta``, a page of the tree above them), so a small page
#: wears an SD card less: 1 KiB pages write about a third less per commit than 4 KiB ones
#: (bench/sdcard_bench.py).  A file keeps the page size it was created with.
PAGE_SIZE = 1024
#: Checkpoint the WAL into the database every this many bytes (4 MiB) and truncate it back
#: to at most this size afterwards.
WAL_BYTES = 4 * 2**20
#: Below this much free space on its file system the outbox checkpoints its WAL after every
#: commit and never grows beyond what is free (less LOW_SPACE_RESERVE): a checkpoint needs
#: room for the pages it moves into the database, so waiting for ENOSPC would be too late.
LOW_SPACE = 2 * WAL_BYTES
#: Free space the outbox leaves to others on a nearly full file system.
LOW_SPACE_RESERVE = 64 * 1024
#: A run of drops ends (and its total is logged) after this long without one.
EPISODE_QUIET = 60.0

# Why a reading left the outbox without being delivered.
MAX_BYTES = "max_bytes"
MAX_AGE = "max_age"
DISK_FULL = "disk_full"
MEMORY_LIMIT = "memory_limit"
CORRUPT = "corrupt"
UNDECODABLE = "undecodable"
UNWRITABLE_AT_CLOSE = "unwritable_at_close"

_UNTIL = {
    MAX_BYTES: "the agent takes readings again (or raise storage max_bytes)",
    MAX_AGE: "the queue holds only younger readings (or raise storage max_age)",
    DISK_FULL: "there is free space again (free space on it: df -h shows how much)",
    MEMORY_LIMIT: "the disk can be written again (free space, or make the storage dir writable)",
    UNDECODABLE: "they are all moved (see the error above for each)",
}


def head_expired(db: sqlite3.Connection, cutoff_ms: float) -> bool:
    """Whether the reading at the head of the queue was taken before *cutoff_ms*."""
    row = db.execute("SELECT ts FROM reading ORDER BY id LIMIT 1").fetchone()
    return row is not None and row[0] < cutoff_ms


def drop_expired(db: sqlite3.Connection, cutoff_ms: float) -> int:
    """Drop from the head while the head was taken before *cutoff_ms*; how many went.

    The queue is in arrival order, so this stops at the first reading young
    enough; an older one further back (a clock that jumped) goes when it
    reaches the head.  That keeps the check to the rows dropped.
    """
    last_old = None
    cur = db.execute("SELECT id, ts FROM reading ORDER BY id")
    try:
        for entry_id, ts in cur:
            if ts >= cutoff_ms:
                break
            last_old = entry_id
    finally:
        cur.close()
    if last_old is None:
        return 0
    return db.execute("DELETE FROM reading WHERE id <= ?", (last_old,)).rowcount


def drop_over_size(db: sqlite3.Connection, depth: int, limit: int) -> int:
    """Drop from the head until the live pages fit *limit* bytes; how many went.

    Only a page emptied completely is freed, so each round drops at least
    a page's worth of rows: a few rows over the limit cost one page of
    readings, not a round per row.
    """
    dropped = 0
    for _ in range(16):
        used = used_bytes(db)
        rows = depth - dropped
        if used <= limit or rows <= 0:
            break
        per_row = used / rows
        count = math.ceil(max(used - limit, page_size(db)) / per_row)
        dropped += db.execute(
            "DELETE FROM reading WHERE id IN (SELECT id FROM reading ORDER BY id LIMIT ?)", (count,)
        ).rowcount
    return dropped


def room_on_disk(db: sqlite3.Connection, path: Path, payload_bytes: int, rows: int) -> int | None:
    """The live bytes the file at *path* may hold before *rows* new readings of *payload_bytes* go
    in, when its file system is nearly full; None when there is space enough not to care.

    The file may fill the pages it has (its free list included) and what the
    file system can spare beyond LOW_SPACE_RESERVE.  Pages so far only in the
    WAL count as taken already: a checkpoint adds them to the database file.
    """
    try:
        fs = os.statvfs(path.parent)
        file_bytes = path.stat().st_size
    except OSError:
        return None
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    size = page_size(db)
    free = fs.f_bavail * fs.f_frsize - max(0, pages * size - file_bytes)
    if free >= LOW_SPACE:
        return None
    need = payload_bytes + 24 * rows + size
    return pages * size + max(0, free - LOW_SPACE_RESERVE) - need


def page_size(db: sqlite3.Connection) -> int:
    """The file's own page size (an older file keeps the one it was created with)."""
    (size,) = db.execute("PRAGMA page_size").fetchone()
    return size


@dataclass
class _Episode:
    """A run of drops for one reason."""

    dropped: int
    started: float = field(default_factory=time.monotonic)
    last_drop: float = field(default_factory=time.monotonic)


class DropLog:
    """Logs the first drop of a run, and the run's total once it is over, per reason.

    *describe(reason)* says which limit bit (for the first line); *total(reason)*
    gives the total since the file was created (for the last).  Any thread.
    """

    def __init__(self, path: Path, describe: Callable[[str], str], total: Callable[[str], int]):
        self.path = path
        self._describe = describe
        self._total = total
        self._episodes: dict[str, _Episode] = {}
        self._lock = threading.Lock()

    def record(self, reason: str, dropped: int, ended: bool = False) -> None:
        """*dropped* more readings for *reason* (0: none this time).

        A run is over when ``ended`` (the disk is back, for memory_limit) or
        after EPISODE_QUIET seconds without a drop, so a limit that bites
        every few commits does not log every few commits.
        """
        now = time.monotonic()
        with self._lock:
            episode = self._episodes.get(reason)
            if dropped and episode is None:
                self._episodes[reason] = _Episode(dropped)
                log.warning(
                    "outbox %s: %s: dropped the oldest %d readings, and will drop the oldest until %s",
                    self.path, self._describe(reason), dropped, _UNTIL[reason],
                )
            elif dropped:
                episode.dropped += dropped
                episode.last_drop = now
            elif episode is not None and (ended or now - episode.last_drop > EPISODE_QUIET):
                del self._episodes[reason]
                log.warning(
                    "outbox %s: stopped dropping (%s): %d readings dropped in %.0f s, %d in total since the "
                    "file was created",
                    self.path, reason, episode.dropped, episode.last_drop - episode.started, self._total(reason),
                )
