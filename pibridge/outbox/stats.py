"""What the outbox reports about itself, and reading those figures from another process."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote


@dataclass(frozen=True)
class OutboxStats:
    """What ``pibridge status`` shows about the outbox.

    ``depth``: readings waiting (on disk and in memory).  ``bytes``: bytes
    the file's live pages take.  ``oldest_timestamp_ms``: timestamp of the
    next reading to be delivered.  ``dropped``: readings that left without
    being acknowledged, since the file was created (it survives restarts);
    ``dropped_reason`` splits it by reason (``max_bytes``, ``max_age``,
    ``disk_full``, ``memory_limit``, ``corrupt``, ``undecodable``,
    ``unwritable_at_close``).  ``write_errors``: failed commits.
    ``last_error``: the most recent disk problem (kept after recovery, so
    you can see what happened); ``healthy``: whether the file is being
    written right now.  ``in_memory``: readings not yet on disk.
    """

    depth: int
    bytes: int
    oldest_timestamp_ms: int | None
    dropped: int
    dropped_reason: dict[str, int]
    write_errors: int
    last_error: str | None
    healthy: bool
    in_memory: int = 0


def used_bytes(con: sqlite3.Connection) -> int:
    """Bytes the file's live pages take (the free list not counted)."""
    (pages,) = con.execute("PRAGMA page_count").fetchone()
    (free,) = con.execute("PRAGMA freelist_count").fetchone()
    (size,) = con.execute("PRAGMA page_size").fetchone()
    return (pages - free) * size


def read_only_uri(path: Path) -> str:
    """A URI that reads the file without creating anything next to it.

    With a -wal present its writer may be running: read through the WAL.
    Without one, nothing is being written (a writer keeps its -wal while it
    has the file open), so open it immutable: that needs no -shm, which a
    read-only directory could not hold and a reader run as root should not
    leave behind owned by root.
    """
    mode = "ro" if Path(f"{path}-wal").exists() else "ro&immutable=1"
    return f"file:{quote(str(path))}?mode={mode}"


def read_stats(path: Path | str) -> OutboxStats | None:
    """The outbox's figures as stored in the file, for ``pibridge status``; None when there is no file.

    Safe while the daemon has the file open (a WAL reader never blocks the
    writer), and it creates nothing: when the daemon is not running (no
    ``-wal`` file) the file is opened immutable.  ``healthy`` here says
    whether the file could be read; ``depth`` and ``dropped`` are as of the
    daemon's last commit.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        con = sqlite3.connect(read_only_uri(path), uri=True, timeout=2)
    except sqlite3.Error as exc:
        return _unreadable(path, exc)
    try:
        meta = dict(con.execute("SELECT key, value FROM meta"))
        head = con.execute("SELECT ts FROM reading ORDER BY id LIMIT 1").fetchone()
        depth = meta.get("depth")
        if depth is None:
            (depth,) = con.execute("SELECT count(*) FROM reading").fetchone()
        dropped = {k.removeprefix("dropped:"): v for k, v in meta.items() if k.startswith("dropped:") and v}
        return OutboxStats(
            depth=int(depth),
            bytes=used_bytes(con),
            oldest_timestamp_ms=head[0] if head else None,
            dropped=sum(dropped.values()),
            dropped_reason=dropped,
            write_errors=int(meta.get("write_errors", 0)),
            last_error=meta.get("last_error"),
            healthy=True,
        )
    except sqlite3.Error as exc:
        return _unreadable(path, exc)
    finally:
        con.close()


def _unreadable(path: Path, exc: sqlite3.Error) -> OutboxStats:
    return OutboxStats(
        depth=0, bytes=0, oldest_timestamp_ms=None, dropped=0, dropped_reason={}, write_errors=0,
        last_error=f"cannot read {path}: {exc}", healthy=False,
    )
