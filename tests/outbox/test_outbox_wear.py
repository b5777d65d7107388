"""What keeps the SD card's writes down while the agent is away: fewer commits, small pages, a
tally rewritten in place.  bench/sdcard_bench.py measures the bytes; these check the behaviour."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest
from outbox_support import make_readings, timestamps
from tests.support.waiting import wait_until

from pibridge.outbox import Outbox, read_stats
from pibridge.outbox.limits import PAGE_SIZE
from pibridge.outbox.recovery import TALLY_BLOCK, Tally


@pytest.fixture
def path(tmp_path):
    return tmp_path / "outbox.db"


def test_commits_come_at_the_offline_interval_while_nothing_leaves(path):
    with Outbox(path, auto_commit=False, commit_interval=1.0, offline_commit_interval=30.0) as ob:
        assert ob.commit_due_in() == 1.0, "a new outbox does not know the agent is away"
        ob.append(make_readings(10))
        ob.commit()
        assert ob.commit_due_in() == 30.0, "a commit that only added readings: the agent is away"
        [first, *_] = ob.peek(1)
        ob.remove([first.id])
        assert ob.commit_due_in() == 1.0, "a reading delivered: the agent is back, before the next commit"
        ob.append(make_readings(10, start=10))
        ob.commit()
        assert ob.commit_due_in() == 1.0, "a commit that removed readings: still delivering"
        ob.commit()
        assert ob.commit_due_in() == 1.0, "a commit with nothing to do changes nothing"
        ob.append(make_readings(10, start=20))
        ob.commit()
        assert ob.commit_due_in() == 30.0


def test_maybe_commit_waits_for_the_offline_interval_while_away(path):
    with Outbox(path, auto_commit=False, commit_interval=1e-6, offline_commit_interval=3600.0) as ob:
        ob.append(make_readings(5))
        ob.maybe_commit()  # due at once: the outbox does not yet know the agent is away
        assert read_stats(path).depth == 5
        ob.append(make_readings(5, start=5))
        ob.maybe_commit()
        assert read_stats(path).depth == 5, "away: the next commit is an hour off"
        ob.remove([e.id for e in ob.peek(2)])
        ob.maybe_commit()
        assert read_stats(path).depth == 8, "delivering again: committed at the short interval"


def test_a_delivered_reading_wakes_the_commit_thread_out_of_a_long_wait(path):
    with Outbox(path, commit_interval=0.05, offline_commit_interval=3600.0) as ob:
        ob.append(make_readings(20))
        wait_until(lambda: getattr(read_stats(path), "depth", 0) == 20, 10, "the commit thread's first commit")
        ob.append(make_readings(20, start=20))  # the thread now waits for the offline interval, an hour
        assert read_stats(path).depth == 20
        ob.remove([e.id for e in ob.peek(5)])
        wait_until(lambda: read_stats(path).depth == 35, 10, "the removal and the new readings to be committed")
        assert timestamps(ob.peek(100)) == [r.timestamp_ms for r in make_readings(35, start=5)]


def test_offline_commit_interval_defaults_to_commit_interval_and_must_be_positive(path):
    with Outbox(path, auto_commit=False, commit_interval=0.5) as ob:
        assert ob.offline_commit_interval == 0.5
    with pytest.raises(ValueError, match="offline_commit_interval must be positive"):
        Outbox(path, auto_commit=False, offline_commit_interval=0)


def test_a_new_file_has_small_pages_and_an_old_one_keeps_its_own(path, tmp_path):
    with Outbox(path, auto_commit=False) as ob:
        ob.append(make_readings(10))
    assert sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE == 1024
    old = tmp_path / "old" / "outbox.db"
    old.parent.mkdir()
    con = sqlite3.connect(old)
    con.execute("PRAGMA page_size = 4096")
    con.execute("PRAGMA journal_mode = WAL")
    con.close()
    # max_bytes bites on the old file's own pages: the limits read the page size from the file.
    with Outbox(old, auto_commit=False, max_bytes=64 * 1024) as ob:
        for b in range(20):
            ob.append(make_readings(100, start=b * 100))
            ob.commit()
        kept = ob.peek(10_000)
        assert ob.stats().bytes <= 64 * 1024
        assert ob.stats().dropped_reason["max_bytes"] == 2000 - len(kept) > 0
    assert sqlite3.connect(old).execute("PRAGMA page_size").fetchone()[0] == 4096
    assert timestamps(kept) == [r.timestamp_ms for r in make_readings(len(kept), start=2000 - len(kept))]


def test_the_tally_is_rewritten_in_place_and_a_shorter_one_reads_back(path):
    tally_path = Tally.file_for(path)
    long = Tally(10**12, 10**11, 10**6, {reason: 10**9 for reason in ("max_bytes", "max_age", "disk_full",
                                                                        "memory_limit", "corrupt", "undecodable")})
    long.save(path)
    inode = os.stat(tally_path).st_ino
    assert os.stat(tally_path).st_mode & 0o777 == 0o600
    Tally(5, 3, 2, {}).save(path)
    assert os.stat(tally_path).st_ino == inode, "rewritten in place, not replaced by a new file"
    assert os.stat(tally_path).st_size == TALLY_BLOCK
    assert Tally.load(path) == Tally(5, 3, 2, {})
    written = json.loads(tally_path.read_text())
    assert {k: v for k, v in written.items() if k != "crc"} == {"next_id": 5, "head": 3, "depth": 2, "dropped": {}}


def test_a_tally_longer_than_the_padding_is_cut_back_when_a_shorter_one_follows(path):
    tally_path = Tally.file_for(path)
    Tally(1, 1, 0, {f"reason{i}": 10**15 for i in range(20)}).save(path)
    assert os.stat(tally_path).st_size > TALLY_BLOCK
    Tally(7, 7, 0, {"corrupt": 4}).save(path)
    assert os.stat(tally_path).st_size == TALLY_BLOCK
    assert Tally.load(path) == Tally(7, 7, 0, {"corrupt": 4})
