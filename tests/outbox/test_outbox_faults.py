"""Damaged files, full disks and read-only storage: reported, never a crash, nothing silently lost."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from outbox_support import NOW_MS, child_env, make_readings, timestamps

from pibridge.outbox import Outbox, read_stats
from pibridge.readings import Reading

LOGGER = "pibridge.outbox"


def corrupt_copies(directory):
    return sorted(p.name for p in directory.glob("outbox.corrupt-*.sqlite"))


def messages(caplog, level=logging.WARNING):
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= level]


# -- damaged files ---------------------------------------------------------------------------------


def test_a_file_of_garbage_is_moved_aside_and_a_fresh_outbox_starts(tmp_path, caplog):
    path = tmp_path / "outbox.sqlite"
    garbage = b"this is not an SQLite database\n" * 500
    path.write_bytes(garbage)
    caplog.set_level(logging.ERROR, logger=LOGGER)
    with Outbox(path, auto_commit=False) as ob:
        (moved,) = corrupt_copies(tmp_path)
        assert (tmp_path / moved).read_bytes() == garbage, "the damaged file must be kept as it was"
        stats = ob.stats()
        assert stats.healthy
        assert moved in stats.last_error
        ob.append(make_readings(3))
        ob.commit()
    (error,) = messages(caplog, logging.ERROR)
    assert str(path) in error and str(tmp_path / moved) in error
    assert "sqlite3" in error, "the message should say how to look inside"
    assert read_stats(path).depth == 3
    assert (tmp_path / moved).read_bytes() == garbage


def test_an_sqlite_file_that_is_not_an_outbox_is_moved_aside(tmp_path):
    path = tmp_path / "outbox.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE invoices (n)")
    con.execute("INSERT INTO invoices VALUES (1)")
    con.commit()
    con.close()
    with Outbox(path, auto_commit=False) as ob:
        (moved,) = corrupt_copies(tmp_path)
        assert "not a pibridge outbox" in ob.stats().last_error
    kept = sqlite3.connect(tmp_path / moved)
    assert kept.execute("SELECT n FROM invoices").fetchall() == [(1,)]
    kept.close()


def damage_pages(path, first_page: int, pages: int) -> None:
    with open(path, "r+b") as f:
        f.seek(first_page * 4096)
        f.write(bytes(range(256)) * 16 * pages)


def test_an_outbox_with_damaged_pages_is_moved_aside_with_its_wal(tmp_path, caplog):
    path = tmp_path / "outbox.sqlite"
    with Outbox(path, auto_commit=False) as ob:
        ob.append(make_readings(5000))
    # A process killed after a commit leaves its last transactions in the -wal.
    script = textwrap.dedent(
        """
        import os, signal, sys
        from pibridge.outbox import Outbox
        from pibridge.readings import Reading
        ob = Outbox(sys.argv[1], auto_commit=False)
        ob.append([Reading("late", 1, {"t": 1.0})])
        ob.commit()
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    subprocess.run([sys.executable, "-c", script, str(path)], env=child_env(), timeout=60)
    wal = (tmp_path / "outbox.sqlite-wal").read_bytes()
    assert wal, "the killed process should have left a -wal"
    damage_pages(path, 20, 8)
    caplog.set_level(logging.ERROR, logger=LOGGER)
    with Outbox(path, auto_commit=False) as ob:
        (moved,) = corrupt_copies(tmp_path)
        assert ob.peek(10) == []
        assert "quick_check" in ob.stats().last_error
    assert (tmp_path / (moved + "-wal")).read_bytes() == wal
    assert any("quick_check" in m for m in messages(caplog, logging.ERROR))


def test_damage_found_while_running_moves_the_file_aside_and_keeps_new_readings(tmp_path, caplog):
    path = tmp_path / "outbox.sqlite"
    with Outbox(path, auto_commit=False) as ob:
        ob.append([Reading("probe", NOW_MS - 30 * 86_400_000, {"t": 1.0})] * 2)  # older than max_age
        ob.commit()
        ob.append(make_readings(5000))
    caplog.set_level(logging.ERROR, logger=LOGGER)
    with Outbox(path, auto_commit=False) as ob:
        damage_pages(path, 20, 30)  # after the check on open, before anything read the rows
        ob.append(make_readings(4, start=9000))
        ob.peek(10_000)  # reads the damaged pages
        ob.commit()
        (moved,) = corrupt_copies(tmp_path)
        stats = ob.stats()
        assert stats.dropped_reason == {"corrupt": 5000, "max_age": 2}
        assert timestamps(ob.peek(100)) == [NOW_MS + 9000 + i for i in range(4)]
    assert read_stats(path).depth == 4
    assert read_stats(path).dropped_reason == {"corrupt": 5000, "max_age": 2}, "totals carry over to the new file"
    assert any(str(tmp_path / moved) in m for m in messages(caplog, logging.ERROR))


def test_an_undecodable_row_is_set_aside_not_delivered_and_not_deleted(tmp_path):
    path = tmp_path / "outbox.sqlite"
    with Outbox(path, auto_commit=False) as ob:
        ob.append(make_readings(3))
    con = sqlite3.connect(path)
    con.execute("UPDATE reading SET payload = x'0102' WHERE id = 2")
    con.commit()
    con.close()
    with Outbox(path, auto_commit=False) as ob:
        assert timestamps(ob.peek(10)) == [NOW_MS, NOW_MS + 2]
        ob.commit()
        stats = ob.stats()
        assert stats.dropped_reason == {"undecodable": 1}
        assert stats.depth == 2
    con = sqlite3.connect(path)
    assert con.execute("SELECT id, payload, reason FROM rejected").fetchall() == [(2, b"\x01\x02", "undecodable")]
    con.close()


# -- full disk -------------------------------------------------------------------------------------


def test_disk_full_keeps_readings_in_memory_and_writes_them_when_space_returns(tiny_fs, caplog):
    path = tiny_fs.path / "outbox.sqlite"
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with Outbox(path, auto_commit=False, memory_limit=3000) as ob:
        ob.append(make_readings(100))
        ob.commit()
        tiny_fs.fill()

        ob.append(make_readings(2000, start=100))
        ob.commit()
        stats = ob.stats()
        assert not stats.healthy
        assert "full" in stats.last_error
        assert stats.write_errors >= 1
        assert (stats.in_memory, stats.depth, stats.dropped) == (2000, 2100, 0)
        assert timestamps(ob.peek(10_000)) == [NOW_MS + i for i in range(2100)]

        # Past memory_limit the oldest readings in memory go, counted.
        ob.append(make_readings(2000, start=2100))
        ob.commit()
        stats = ob.stats()
        assert stats.in_memory == 3000
        assert stats.dropped_reason == {"memory_limit": 1000}
        kept = list(range(100)) + list(range(1100, 4100))
        assert timestamps(ob.peek(10_000)) == [NOW_MS + i for i in kept]

        tiny_fs.free()
        ob.commit()
        stats = ob.stats()
        assert stats.healthy
        assert (stats.in_memory, stats.depth) == (0, 3100)
    assert read_stats(path).dropped_reason == {"memory_limit": 1000}
    with Outbox(path, auto_commit=False) as ob:
        assert timestamps(ob.peek(10_000)) == [NOW_MS + i for i in kept]
    logged = messages(caplog)
    assert sum("Keeping readings in memory" in m for m in logged) == 1, logged
    assert sum("Fix: free space on the file system" in m for m in logged) == 1
    assert sum("memory_limit = 3000" in m for m in logged) == 1
    assert sum("writable again" in m for m in logged) == 1


def test_file_size_limit_in_a_subprocess_acts_as_a_full_disk(tmp_path):
    """RLIMIT_FSIZE makes writes fail with EFBIG, as a full disk would, without needing mount."""
    path = tmp_path / "outbox.sqlite"
    script = textwrap.dedent(
        f"""
        import json, resource, signal, sys
        from pibridge.outbox import Outbox
        from pibridge.readings import Reading

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # get EFBIG instead of being killed
        def readings(count, start):
            return [Reading("pump", {NOW_MS} + start + i, {{"flow": float(i), "on": True}}) for i in range(count)]
        ob = Outbox(sys.argv[1], auto_commit=False)
        ob.append(readings(100, 0))
        ob.commit()
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
        ob.append(readings(2000, 100))
        ob.commit()
        full = ob.stats()
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        ob.commit()
        back = ob.stats()
        ob.close()
        print(json.dumps([full.__dict__, back.__dict__]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], env=child_env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    full, back = json.loads(done.stdout)
    assert full["healthy"] is False
    assert full["in_memory"] == 2000 and full["depth"] == 2100
    assert full["write_errors"] >= 1 and full["last_error"]
    assert back["healthy"] is True and back["in_memory"] == 0 and back["depth"] == 2100
    with Outbox(path, auto_commit=False) as ob:
        assert timestamps(ob.peek(10_000)) == [NOW_MS + i for i in range(2100)]


# -- read-only storage -----------------------------------------------------------------------------


def test_storage_dir_that_cannot_exist_keeps_readings_in_memory_until_it_can(tmp_path, caplog):
    blocker = tmp_path / "storage"
    blocker.write_text("a file where the storage dir should be\n")
    path = blocker / "outbox.sqlite"
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with Outbox(path, auto_commit=False, memory_limit=50) as ob:
        stats = ob.stats()
        assert not stats.healthy and str(path) in stats.last_error
        ob.append(make_readings(80))
        stats = ob.stats()
        assert (stats.in_memory, stats.dropped_reason) == (50, {"memory_limit": 30})
        assert timestamps(ob.peek(100)) == [NOW_MS + i for i in range(30, 80)]

        blocker.unlink()
        ob.commit()
        assert ob.stats().healthy
        assert ob.stats().in_memory == 0
    stored = read_stats(path)
    assert (stored.depth, stored.dropped_reason) == (50, {"memory_limit": 30})
    assert any("cannot open" in m and "Fix:" in m for m in messages(caplog, logging.ERROR))


def set_immutable(paths, on: bool) -> None:
    for p in paths:
        done = subprocess.run(["chattr", "+i" if on else "-i", str(p)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot set the immutable attribute here ({done.stderr.strip()}): needs root on ext4/xfs")


def test_files_that_turn_unwritable_while_open_then_writable_again(tmp_path, caplog):
    """What an SD card remounted read-only after errors looks like: every write fails, as root too."""
    if shutil.which("chattr") is None:
        pytest.skip("no chattr here: cannot make open files unwritable")
    path = tmp_path / "outbox.sqlite"
    caplog.set_level(logging.WARNING, logger=LOGGER)
    files = [path, tmp_path / "outbox.sqlite-wal"]
    with Outbox(path, auto_commit=False) as ob:
        ob.append(make_readings(10))
        ob.commit()
        try:
            set_immutable(files, True)
            ob.append(make_readings(10, start=10))
            ob.remove([ob.peek(1)[0].id])
            ob.commit()
            ob.commit()
            stats = ob.stats()
            assert not stats.healthy and stats.write_errors == 2
            assert timestamps(ob.peek(100)) == [NOW_MS + i for i in range(1, 20)]
        finally:
            set_immutable(files, False)
        ob.commit()
        assert ob.stats().healthy
        assert ob.stats().in_memory == 0
    with Outbox(path, auto_commit=False) as ob:
        assert timestamps(ob.peek(100)) == [NOW_MS + i for i in range(1, 20)]
    assert sum("Keeping readings in memory" in m for m in messages(caplog)) == 1


def test_starting_on_a_read_only_file_system_keeps_order_when_it_comes_back(tiny_fs):
    path = tiny_fs.path / "outbox.sqlite"
    with Outbox(path, auto_commit=False) as ob:
        ob.append(make_readings(5))
    tiny_fs.remount("ro")
    with Outbox(path, auto_commit=False) as ob:
        stats = ob.stats()
        assert not stats.healthy
        assert "read" in stats.last_error.lower()
        ob.append(make_readings(3, start=5))
        # The file is still read: delivery goes on oldest first, new readings behind the old ones.
        before = ob.peek(10)
        assert timestamps(before) == [NOW_MS + i for i in range(8)]
        assert ob.stats().depth == 8
        ob.remove([before[0].id, before[6].id])
        tiny_fs.remount("rw")
        ob.commit()
        assert ob.stats().healthy
        after = ob.peek(10)
        assert timestamps(after) == [NOW_MS + i for i in (1, 2, 3, 4, 5, 7)]
        assert [e.id for e in after] == [e.id for e in before if e.id not in (before[0].id, before[6].id)]
    with Outbox(path, auto_commit=False) as ob:
        assert timestamps(ob.peek(10)) == [NOW_MS + i for i in (1, 2, 3, 4, 5, 7)]


def test_a_damaged_file_on_a_read_only_file_system_waits_until_it_can_be_moved(tiny_fs):
    path = tiny_fs.path / "outbox.sqlite"
    garbage = b"\x13 not a database" * 300
    path.write_bytes(garbage)
    tiny_fs.remount("ro")
    with Outbox(path, auto_commit=False) as ob:
        stats = ob.stats()
        assert not stats.healthy
        ob.append(make_readings(4))
        ob.commit()
        assert path.read_bytes() == garbage
        assert timestamps(ob.peek(10)) == [NOW_MS + i for i in range(4)]
        tiny_fs.remount("rw")
        ob.commit()
        stats = ob.stats()
        assert stats.healthy
        (moved,) = corrupt_copies(tiny_fs.path)
        assert (tiny_fs.path / moved).read_bytes() == garbage
    assert read_stats(path).depth == 4


# -- read_stats ------------------------------------------------------------------------------------


def test_read_stats_while_the_daemon_has_the_file_and_a_writer_holds_a_transaction(tmp_path):
    path = tmp_path / "outbox.sqlite"
    with Outbox(path, auto_commit=False) as ob:
        ob.append(make_readings(40))
        ob.commit()
        writer = sqlite3.connect(path, isolation_level=None, timeout=0.1)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("DELETE FROM reading")
        stats = read_stats(path)
        writer.execute("ROLLBACK")
        writer.close()
    assert stats.healthy
    assert (stats.depth, stats.oldest_timestamp_ms) == (40, NOW_MS)
    assert stats.bytes > 0


def test_read_stats_creates_nothing_when_the_daemon_is_not_running(tmp_path):
    path = tmp_path / "outbox.sqlite"
    with Outbox(path, auto_commit=False) as ob:
        ob.append(make_readings(7))
    before = sorted(os.listdir(tmp_path))
    assert read_stats(path).depth == 7
    assert sorted(os.listdir(tmp_path)) == before


def test_read_stats_of_a_missing_or_damaged_file(tmp_path):
    assert read_stats(tmp_path / "nothing.sqlite") is None
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"\x00garbage" * 100)
    stats = read_stats(bad)
    assert not stats.healthy
    assert str(bad) in stats.last_error


def test_closing_while_the_disk_is_full_says_how_many_readings_are_lost(tiny_fs, caplog):
    path = tiny_fs.path / "outbox.sqlite"
    caplog.set_level(logging.ERROR, logger=LOGGER)
    ob = Outbox(path, auto_commit=False)
    ob.append(make_readings(10))
    ob.commit()
    tiny_fs.fill()
    ob.append(make_readings(2000, start=10))
    ob.close()
    assert ob.stats().dropped_reason == {"unwritable_at_close": 2000}
    assert any("2000 readings could not be written before closing and are lost" in m for m in messages(caplog))
    tiny_fs.free()
    assert read_stats(path).depth == 10


def test_rows_written_behind_its_back_do_not_block_the_outbox(tmp_path):
    path = tmp_path / "outbox.sqlite"
    with Outbox(path, auto_commit=False) as ob:
        ob.append(make_readings(3))
        ob.commit()
        ob.append(make_readings(2, start=3))
        mine = ob.peek(10)[3]
        intruder = sqlite3.connect(path)
        intruder.execute("INSERT INTO reading SELECT ?, schema, ts + 100, payload FROM reading WHERE id = 1", (mine.id,))
        intruder.commit()
        intruder.close()
        ob.commit()
        assert not ob.stats().healthy
        ob.commit()
        assert ob.stats().healthy
        assert timestamps(ob.peek(10)) == [NOW_MS, NOW_MS + 1, NOW_MS + 2, NOW_MS + 100, NOW_MS + 3, NOW_MS + 4]
        ob.remove([mine.id])
        assert timestamps(ob.peek(10)) == [NOW_MS, NOW_MS + 1, NOW_MS + 2, NOW_MS + 100, NOW_MS + 4]
