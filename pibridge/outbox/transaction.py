"""One commit of the outbox: a single SQLite transaction that writes what was appended, deletes
what was delivered, applies the limits and records the figures.

:func:`write_batch` is called by :meth:`Outbox.commit` in whichever thread commits, with the
database lock held; it touches nothing but the connection it is given.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from pibridge.outbox.codec import Encoded, Layout
from pibridge.outbox.limits import (
    DISK_FULL,
    MAX_AGE,
    MAX_BYTES,
    UNDECODABLE,
    drop_expired,
    drop_over_size,
    head_expired,
    room_on_disk,
)


@dataclass(frozen=True)
class Batch:
    """What one commit has to do.

    ``items``: (id, encoded reading) to insert, in queue order; ``deletes``:
    ids delivered; ``rejects``: ids that could not be decoded (moved to
    ``rejected``); ``drops``: drop counts not yet in the file; ``layouts``:
    schemas not yet in the file; ``max_bytes``/``max_age``: the limits.
    """

    items: list[tuple[int, Encoded]]
    deletes: set[int]
    rejects: set[int]
    drops: Counter[str]
    layouts: list[Layout]
    max_bytes: int
    max_age: float | None


@dataclass(frozen=True)
class FileFigures:
    """The file as of the last commit: readings queued, the next id, failed writes, the last problem."""

    depth: int
    next_id: int
    write_errors: int
    last_error: str | None


@dataclass(frozen=True)
class Written:
    """What a commit did: the readings it dropped by reason, the new figures and the drop totals."""

    dropped: Counter[str]
    depth: int
    next_id: int
    head: int
    totals: Counter[str]


def write_batch(db: sqlite3.Connection, path: Path, batch: Batch, before: FileFigures) -> Written | None:
    """Do *batch* in one transaction on *db* (the file at *path*); None when there was nothing to do.

    Raises sqlite3.Error or OSError (after rolling back) when the disk
    refuses; nothing is then changed.
    """
    now_ms = int(time.time() * 1000)
    cutoff = None if batch.max_age is None else now_ms - batch.max_age * 1000
    expired = cutoff is not None and head_expired(db, cutoff)
    if not (batch.items or batch.deletes or batch.rejects or batch.drops or batch.layouts or expired):
        return None
    db.execute("BEGIN IMMEDIATE")
    try:
        if batch.layouts:
            db.executemany(
                "INSERT OR REPLACE INTO schema (id, sensor, fields) VALUES (?, ?, ?)",
                [(lay.id, lay.sensor, lay.fields_json) for lay in batch.layouts],
            )
        depth = before.depth
        dropped: Counter[str] = Counter()
        # On a nearly full file system, room for the new readings is made first, from the head,
        # so that they go into freed pages and the file does not grow.
        room = room_on_disk(db, path, sum(len(e.payload) for _, e in batch.items), len(batch.items))
        if room is not None:
            dropped[DISK_FULL] = drop_over_size(db, depth, room)
            depth -= dropped[DISK_FULL]
        if batch.items:
            db.executemany(
                "INSERT INTO reading (id, schema, ts, payload) VALUES (?, ?, ?, ?)",
                [(i, e.layout.id, e.reading.timestamp_ms, e.payload) for i, e in batch.items],
            )
            depth += len(batch.items)
        if batch.rejects:
            marks = [(i,) for i in batch.rejects]
            db.executemany(
                "INSERT OR IGNORE INTO rejected SELECT id, schema, ts, payload, 'undecodable' FROM reading WHERE id = ?",
                marks,
            )
            dropped[UNDECODABLE] = db.executemany("DELETE FROM reading WHERE id = ?", marks).rowcount
            depth -= dropped[UNDECODABLE]
        if batch.deletes:
            depth -= db.executemany("DELETE FROM reading WHERE id BETWEEN ? AND ?", runs(batch.deletes)).rowcount
        if cutoff is not None:
            dropped[MAX_AGE] = drop_expired(db, cutoff)
            depth -= dropped[MAX_AGE]
        dropped[MAX_BYTES] = drop_over_size(db, depth, batch.max_bytes)
        depth -= dropped[MAX_BYTES]
        totals = dropped_in_file(db) + batch.drops + dropped
        next_id = max(before.next_id, (batch.items[-1][0] + 1) if batch.items else 0)
        values = [("depth", depth), ("next_id", next_id), ("write_errors", before.write_errors)]
        values += [(f"dropped:{reason}", n) for reason, n in totals.items()]
        if before.last_error:
            values.append(("last_error", before.last_error))
        db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", values)
        (head,) = db.execute("SELECT min(id) FROM reading").fetchone()
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise
    if room is not None:
        # Nearly full: move the WAL into the database now, while that needs only the room
        # this commit left, and let the next commit reuse the WAL's space from its start.
        with contextlib.suppress(sqlite3.Error):
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")
    return Written(dropped, depth, next_id, head or next_id, totals)


def dropped_in_file(db: sqlite3.Connection) -> Counter[str]:
    rows = db.execute("SELECT key, value FROM meta WHERE key LIKE 'dropped:%'")
    return Counter({k.removeprefix("dropped:"): v for k, v in rows})


def runs(ids: Iterable[int]) -> list[tuple[int, int]]:
    """Consecutive ids as (first, last) ranges: acknowledgements mostly come in runs."""
    out: list[tuple[int, int]] = []
    for i in sorted(ids):
        if out and out[-1][1] == i - 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out
