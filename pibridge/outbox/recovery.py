"""When the outbox file is damaged or the disk misbehaves: noticing it, counting it, moving files aside.

Three jobs, none of which touches the readings themselves:

* :func:`check_file` tells on open whether ``outbox.db`` can be used at all
  (an SQLite database, a pibridge outbox, of a format this version reads,
  undamaged as far as ``PRAGMA quick_check`` sees);
* :class:`Tally` is the outbox's own record of how many readings it held and
  up to which id, kept in a small file next to the database
  (``outbox.tally``), so that a database that lost its last commits (a
  truncated or garbled ``-wal``, a missing ``-wal``, a file cut to 0 bytes)
  cannot take the evidence with it; :meth:`Tally.lost` compares the two;
* :func:`quarantine` moves a damaged file aside (never deletes it) and
  :func:`fix_for` says what to do about a disk error.

The tally is rewritten in place (one write at offset 0, no rename, no fsync)
after each commit that changed the database: the page cache takes the
rewrites of the same block, so the card sees about one block every half
minute while spilling, and nothing while the agent takes readings live.
Without an fsync a power cut can leave it a few seconds older than the
database (or, on a card that tears a 512-byte sector, unreadable, which is
logged); an older or unreadable tally only ever makes :meth:`Tally.lost` see
less, never invent a loss.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger("pibridge.outbox")

FORMAT = 1
#: Files up to this size get a full ``PRAGMA quick_check`` on open; larger
#: ones a lighter check (schema, first and last row), because quick_check
#: reads every page, which takes seconds on an SD card.
QUICK_CHECK_LIMIT = 16 * 2**20

CORRUPT_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
#: Errors after which the connection is closed and the file opened again on the next try.
REOPEN_CODES = {sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR}

FILE_MODE = 0o600
#: The tally is padded to this many bytes, so that rewriting it in place keeps its length.
TALLY_BYTES = 256


def sqlite_code(exc: sqlite3.Error) -> int:
    return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


def now_text() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())


def describe(exc: BaseException) -> str:
    name = getattr(exc, "sqlite_errorname", None)
    return f"{exc} ({name})" if name else str(exc)


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.Error):
        return sqlite_code(exc) == sqlite3.SQLITE_FULL
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def fix_for(exc: BaseException, path: Path) -> str:
    """What the operator should do about *exc*, met while writing *path*."""
    from pibridge.outbox.files import OutboxInUse

    if isinstance(exc, OutboxInUse):
        return "stop the other pibridge process using this storage dir"
    code = sqlite_code(exc) if isinstance(exc, sqlite3.Error) else 0
    err = exc.errno if isinstance(exc, OSError) else None
    if is_disk_full(exc):
        return f"free space on the file system of {path.parent} (df -h {path.parent})"
    if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN) or err in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"make {path.parent} writable by the user pibridge runs as (mount it read-write, check its owner)"
    return f"check the storage device of {path.parent} (dmesg shows I/O errors)"


def check_file(path: Path) -> str | None:
    """Why the existing file at *path* cannot be used as an outbox, or None when it can (or does not exist)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    if path.is_symlink() or not path.is_file():
        return "it is not a regular file (a directory, a link or a device is in its place)"
    if info.st_size == 0:
        return None
    # Read-only, so that closing it cannot checkpoint a -wal into a damaged file.
    con = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, isolation_level=None, timeout=5)
    try:
        tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            return None
        if not {"meta", "schema", "reading"} <= tables:
            return f"it is an SQLite database but not a pibridge outbox (tables: {', '.join(sorted(tables))})"
        row = con.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        if row is None or row[0] != FORMAT:
            return f"its outbox format is {row[0] if row else 'unknown'}, this pibridge reads format {FORMAT}"
        if info.st_size <= QUICK_CHECK_LIMIT:
            result = [r for (r,) in con.execute("PRAGMA quick_check(5)")]
            if result != ["ok"]:
                return "SQLite's quick_check found damage: " + "; ".join(result)
        else:
            con.execute("SELECT * FROM reading ORDER BY id LIMIT 1").fetchall()
            con.execute("SELECT * FROM reading ORDER BY id DESC LIMIT 1").fetchall()
            con.execute("SELECT count(*) FROM schema").fetchall()
        return None
    except sqlite3.DatabaseError as exc:
        if sqlite_code(exc) in CORRUPT_CODES:
            return f"SQLite cannot read it ({exc})"
        raise
    finally:
        con.close()


def is_empty(path: Path) -> bool:
    """True for a 0-byte file, or a database without the outbox's tables (what a cut file opens as)."""
    try:
        if path.stat().st_size == 0:
            return True
    except FileNotFoundError:
        return True
    con = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, isolation_level=None, timeout=5)
    try:
        return con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'reading'").fetchone()[0] == 0
    finally:
        con.close()


def file_figures(path: Path) -> tuple[int, int, int | None]:
    """(next id, readings held, readings its last commit recorded) of a file :func:`check_file` passed."""
    con = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, isolation_level=None, timeout=5)
    try:
        meta = dict(con.execute("SELECT key, value FROM meta WHERE key IN ('depth', 'next_id')"))
        (max_id,) = con.execute(
            "SELECT max(id) FROM (SELECT max(id) AS id FROM reading UNION ALL SELECT max(id) FROM rejected)"
        ).fetchone()
        next_id = max(int(meta.get("next_id", 1)), (max_id or 0) + 1)
        recorded = meta.get("depth") if isinstance(meta.get("depth"), int) else None
        if path.stat().st_size > QUICK_CHECK_LIMIT:
            return next_id, recorded or 0, recorded  # counting would read the whole file
        (count,) = con.execute("SELECT count(*) FROM reading").fetchone()
        return next_id, count, recorded
    finally:
        con.close()


def sync_dir(directory: Path) -> None:
    """Make a new or renamed file's directory entry durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def aside_name(path: Path) -> Path:
    """``outbox.corrupt-<UTC time>.sqlite`` next to *path*, not taken yet."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.stem}.corrupt-{stamp}.sqlite")
    n = 1
    while target.exists() or Path(f"{target}-wal").exists():
        n += 1
        target = path.with_name(f"{path.stem}.corrupt-{stamp}-{n}.sqlite")
    return target


def quarantine(path: Path, problem: str, readings: int | None = None) -> str:
    """Move *path* (with its ``-wal`` and ``-shm``) aside, log it, and return the message for ``last_error``."""
    target = aside_name(path)
    os.rename(path, target)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.rename(f"{path}{suffix}", f"{target}{suffix}")
    sync_dir(path.parent)
    held = f" It held {readings} readings (counted as dropped, cause corrupt)." if readings else ""
    log.error(
        "outbox %s cannot be used: %s. Moved it to %s and started an empty outbox.%s "
        "Nothing in it was deleted: inspect it with `sqlite3 %s 'SELECT count(*) FROM reading'`, "
        "and delete it once you no longer need it.",
        path, problem, target, held, target,
    )
    return f"{now_text()}: moved unusable outbox aside to {target}: {problem}"


def keep_wal_copy(path: Path) -> Path | None:
    """Copy a damaged ``-wal`` aside (the database goes on with what SQLite could read of it)."""
    wal = Path(f"{path}-wal")
    if not wal.exists():
        return None
    target = Path(f"{aside_name(path)}-wal")
    try:
        shutil.copyfile(wal, target)
        os.chmod(target, FILE_MODE)
    except OSError as exc:
        log.warning("outbox %s: could not keep a copy of its damaged %s: %s", path, wal, exc)
        return None
    return target


@dataclass
class Tally:
    """How many readings the outbox held after its last commit, up to which id, and what it dropped.

    ``next_id``: the id the next appended reading gets (every id below was
    handed out).  ``head``: the lowest id still queued (``next_id`` when
    empty).  ``depth``: readings queued.  ``dropped``: totals by cause.
    """

    next_id: int = 1
    head: int = 1
    depth: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def file_for(path: Path) -> Path:
        return path.with_suffix(".tally")

    @classmethod
    def load(cls, path: Path) -> Tally | None:
        """The tally next to the outbox *path*; None when there is none (a new outbox, an old version)."""
        tally_path = cls.file_for(path)
        try:
            data = json.loads(tally_path.read_text(encoding="utf-8"))
            dropped = {str(k): int(v) for k, v in dict(data.get("dropped", {})).items() if int(v) > 0}
            tally = cls(int(data["next_id"]), int(data["head"]), int(data["depth"]), dropped)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("outbox %s: its tally %s is unreadable (%s); losses from before now cannot be counted",
                        path, tally_path, exc)
            return None
        if not 1 <= tally.head <= tally.next_id or tally.depth < 0:
            log.warning("outbox %s: its tally %s makes no sense (%s); ignoring it", path, tally_path, data)
            return None
        return tally

    def save(self, path: Path) -> None:
        """Rewrite the tally file in place; raises OSError (the caller treats it like a failed write).

        In place, padded to a fixed length, rather than a new file renamed over
        the old: a rename allocates an inode and a block and journals the
        directory on every commit, several kB of SD-card writes each time.  One
        write() of less than a sector either happens or not on a kill -9.
        """
        tally_path = self.file_for(path)
        text = json.dumps({"next_id": self.next_id, "head": self.head, "depth": self.depth, "dropped": self.dropped})
        data = text.encode().ljust(TALLY_BYTES)  # json.loads ignores the padding
        fd = os.open(tally_path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
        try:
            st = os.fstat(fd)
            if st.st_mode & 0o777 != FILE_MODE:
                os.fchmod(fd, FILE_MODE)
            os.pwrite(fd, data, 0)
            if st.st_size > len(data):
                os.ftruncate(fd, len(data))  # what a longer tally once left behind
        finally:
            os.close(fd)

    def lost(self, next_id: int) -> int:
        """Readings the tally saw queued that a database whose next id is *next_id* no longer has.

        Those are the queued ones appended by commits the database lost:
        ids from ``max(next_id, head)`` up to the tally's ``next_id``.  A
        database that lost only removals holds more than the tally, not less
        (those readings are sent again: a duplicate, not a loss).
        """
        if next_id >= self.next_id:
            return 0
        return min(self.depth, self.next_id - max(next_id, self.head))


@dataclass
class Examined:
    """What :func:`examine` found: readings lost, the problem (for ``last_error``), what to do next."""

    lost: int = 0
    problem: str | None = None
    moved_aside: bool = False
    #: the file holds fewer rows than its own depth says: count them instead of trusting it
    recount: bool = False
    #: the tally must be rewritten at once, so the same loss is not counted again
    tally_due: bool = False
    tally_dropped: Counter[str] = field(default_factory=Counter)


def examine(path: Path) -> Examined:
    """Check the outbox file at *path* against its tally before it is opened.

    A file that cannot be used at all is moved aside: all the readings the
    tally saw in it are lost to delivery.  A usable file that lost its last
    commits (a damaged or missing -wal, a file cut short) is kept with what
    SQLite can still read, and a copy of its -wal is kept aside.  Either way
    the loss is logged and returned, to be counted as ``corrupt``.
    """
    tally = Tally.load(path)
    found = Examined(tally_dropped=Counter(tally.dropped) if tally else Counter())
    problem = check_file(path)
    if problem is None and tally is not None and tally.depth and is_empty(path):
        problem = f"it is empty, but held {tally.depth} readings at its last commit"
    if problem is not None:
        found.lost = tally.lost(1) if tally else 0
        found.problem = quarantine(path, problem, found.lost)
        found.moved_aside = found.tally_due = True
        return found
    if tally is None or not path.exists():
        return found
    next_id, count, recorded = file_figures(path)
    lost = tally.lost(next_id)
    gap = max(0, recorded - count) if recorded is not None else 0
    if not lost and not gap:
        return found
    copy = keep_wal_copy(path) if lost else None
    what = []
    if lost:
        what.append(f"its last commits are missing: readings up to id {tally.next_id - 1} were committed, "
                    f"it ends before id {next_id}")
    if gap:
        what.append(f"it holds {count} readings where its last commit recorded {recorded}")
    kept = f"; a copy of its -wal is kept as {copy}" if copy else ""
    log.error(
        "outbox %s lost readings (a power cut, or a damaged SD card): %s. %d readings are lost (counted as "
        "dropped, cause corrupt); the %d it still holds are delivered%s",
        path, "; ".join(what), lost + gap, count, kept,
    )
    found.lost, found.recount, found.tally_due = lost + gap, bool(gap), True
    found.problem = f"{now_text()}: {lost + gap} readings lost from the outbox file: {'; '.join(what)}"
    return found
