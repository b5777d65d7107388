"""Opening the outbox file: its private directory, the lock that keeps a second process out, and
an SQLite connection in WAL mode with the outbox's tables."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path

from pibridge.outbox.limits import PAGE_SIZE, WAL_BYTES, page_size
from pibridge.outbox.recovery import FILE_MODE, FORMAT, sync_dir

DIR_MODE = 0o700

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS schema (id INTEGER PRIMARY KEY, sensor TEXT NOT NULL, fields TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reading (id INTEGER PRIMARY KEY, schema INTEGER NOT NULL, ts INTEGER NOT NULL, payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS rejected (id INTEGER PRIMARY KEY, schema INTEGER, ts INTEGER, payload BLOB, reason TEXT);
"""


class OutboxError(Exception):
    """The outbox cannot be used at all (not raised for disk errors, which degrade to memory)."""


class OutboxInUse(OutboxError):
    """Another process (or another Outbox in this one) already has this outbox open."""


class OutboxClosed(OutboxError):
    """The outbox was closed."""


def make_private_dir(directory: Path) -> None:
    """Create *directory* (and its parents) 0700 if missing; an existing one is left as it is."""
    if not directory.is_dir():
        directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        os.chmod(directory, DIR_MODE)  # mkdir's mode is masked by the umask


def take_lock(path: Path) -> int:
    """Lock ``<path>.lock`` for this process; its descriptor (closing it lets go).

    Raises OutboxInUse when another process (or another Outbox here) holds it.
    """
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise OutboxInUse(
            f"outbox {path} is already open in another pibridge process (lock {lock_path}); "
            "stop the other one, or give this one its own storage dir"
        ) from None
    return fd


def connect(path: Path) -> sqlite3.Connection:
    """A connection to the outbox at *path* (created 0600 if missing), in WAL mode, tables in place."""
    new = not path.exists()
    if new:
        # SQLite creates the file (and later its -wal and -shm, with the same mode) as
        # 0644 less the umask: create it first, private.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE))
        os.chmod(path, FILE_MODE)
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=5)
    try:
        db.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # only takes effect on a new file
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise sqlite3.OperationalError(f"cannot switch {path} to WAL mode (it stays in {mode!r} mode)")
        db.execute("PRAGMA synchronous = FULL")
        db.execute(f"PRAGMA wal_autocheckpoint = {WAL_BYTES // page_size(db)}")
        db.execute(f"PRAGMA journal_size_limit = {WAL_BYTES}")
        db.execute("BEGIN IMMEDIATE")
        for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
            db.execute(statement)
        db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('format', ?)", (FORMAT,))
        db.execute("COMMIT")
        if new:
            # SQLite syncs the directory when it creates the -wal, not when it creates the
            # database file itself; without this a power cut soon after the first start
            # could lose the file while its -wal survives.
            sync_dir(path.parent)
    except BaseException:
        db.close()
        raise
    return db
