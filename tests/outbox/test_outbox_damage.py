"""A damaged outbox never loses readings silently: every way a power cut or a bad card can damage
the files, the outbox notices on open, logs what was lost, counts it (cause ``corrupt``) and keeps
the damaged file (or a copy of its -wal) aside.

The writer is a real subprocess killed with SIGKILL after its commits, so its transactions are
still in the -wal (a clean close would checkpoint them into the database).  The tally next to the
database (``outbox.tally``) is what the outbox compares the file with.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from outbox_support import child_env, make_readings, timestamps

from pibridge.outbox import Outbox
from pibridge.outbox.limits import PAGE_SIZE

LOGGER = "pibridge.outbox"
BATCH = 100
WAL_HEADER, FRAME = 32, 24 + PAGE_SIZE


def killed_writer(path, batches: int, delivered: int = 0) -> None:
    """Commit *batches* batches of BATCH readings (the first *delivered* removed again), then die by SIGKILL."""
    script = textwrap.dedent(
        """
        import os, signal, sys
        sys.path.insert(0, sys.argv[4])
        from outbox_support import make_readings
        from pibridge.outbox import Outbox
        path, batches, delivered = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        ob = Outbox(path, auto_commit=False)
        for b in range(batches):
            ob.append(make_readings(%d, start=b * %d))
            ob.commit()
        ob.remove([e.id for e in ob.peek(delivered)])
        ob.commit()
        os.kill(os.getpid(), signal.SIGKILL)
        """ % (BATCH, BATCH)
    )
    tests = os.path.dirname(__file__)
    subprocess.run([sys.executable, "-c", script, str(path), str(batches), str(delivered), tests],
                   env=child_env(), timeout=60)
    assert (path.parent / (path.name + "-wal")).stat().st_size > 0, "the killed writer should leave its -wal"


def corrupt_copies(directory):
    return sorted(p.name for p in directory.glob("outbox.corrupt-*"))


def errors(caplog):
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= logging.ERROR]


def reopen(path, caplog):
    """Open after the damage: (readings it still delivers, readings counted corrupt, error lines)."""
    caplog.clear()
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with Outbox(path, auto_commit=False) as ob:
        kept = ob.peek(100_000)
        corrupt = ob.stats().dropped_reason.get("corrupt", 0)
        assert ob.stats().healthy
        ob.append(make_readings(3, start=10**6))  # and it goes on as an outbox
        ob.commit()
        assert len(ob.peek(100_000)) == len(kept) + 3
    return kept, corrupt, errors(caplog)


@pytest.fixture
def outbox(tmp_path):
    return tmp_path / "outbox.db"


def test_a_clean_restart_and_a_replay_count_nothing(outbox, caplog):
    killed_writer(outbox, 10, delivered=250)
    kept, corrupt, logged = reopen(outbox, caplog)
    assert (len(kept), corrupt, logged) == (750, 0, [])
    kept, corrupt, logged = reopen(outbox, caplog)
    assert (len(kept), corrupt, logged) == (753, 0, [])


def test_a_tally_older_than_the_file_counts_nothing(outbox, caplog):
    # A power cut can leave the tally (written without fsync) a few commits behind the database.
    killed_writer(outbox, 3)
    stale = (outbox.with_suffix(".tally")).read_bytes()
    with Outbox(outbox, auto_commit=False) as ob:
        ob.append(make_readings(BATCH, start=10_000))
        ob.commit()
        ob.remove([e.id for e in ob.peek(150)])
        ob.commit()
    outbox.with_suffix(".tally").write_bytes(stale)
    kept, corrupt, logged = reopen(outbox, caplog)
    assert (len(kept), corrupt, logged) == (250, 0, [])


def test_an_empty_file_that_held_readings(outbox, caplog):
    killed_writer(outbox, 4, delivered=23)
    for suffix in ("-wal", "-shm"):
        os.unlink(f"{outbox}{suffix}")
    outbox.write_bytes(b"")
    kept, corrupt, logged = reopen(outbox, caplog)
    assert (len(kept), corrupt) == (0, 4 * BATCH - 23)
    assert "377 readings" in logged[0] and "empty" in logged[0]
    assert corrupt_copies(outbox.parent) == [corrupt_copies(outbox.parent)[0]]


@pytest.mark.parametrize("keep", [0.5, 0.02])
def test_a_truncated_database(outbox, caplog, keep):
    killed_writer(outbox, 30)
    with Outbox(outbox, auto_commit=False):
        pass  # a clean close moves everything into the database file
    size = outbox.stat().st_size
    with open(outbox, "r+b") as f:
        f.truncate(int(size * keep) // 4096 * 4096 or 4096)
    kept, corrupt, logged = reopen(outbox, caplog)
    assert (len(kept), corrupt) == (0, 30 * BATCH)
    assert "Moved it to" in logged[0] and "3000 readings" in logged[0]
    assert any(name.endswith(".sqlite") for name in corrupt_copies(outbox.parent))


@pytest.mark.parametrize("frames_kept", [0, 3, 7])
def test_a_truncated_wal(outbox, caplog, frames_kept):
    killed_writer(outbox, 12)
    wal = outbox.parent / (outbox.name + "-wal")
    with open(wal, "r+b") as f:
        f.truncate(WAL_HEADER + frames_kept * FRAME + FRAME // 2)
    kept, corrupt, logged = reopen(outbox, caplog)
    assert len(kept) < 12 * BATCH, "the cut must have cost readings, or the test proves nothing"
    assert corrupt == 12 * BATCH - len(kept), "every missing reading is counted"
    assert timestamps(kept) == timestamps([type("E", (), {"reading": r}) for r in make_readings(len(kept))])
    assert f"{corrupt} readings" in logged[0]
    assert any(name.endswith(".sqlite-wal") for name in corrupt_copies(outbox.parent)), "the damaged -wal is kept"


def test_a_garbled_wal_frame(outbox, caplog):
    killed_writer(outbox, 12)
    wal = outbox.parent / (outbox.name + "-wal")
    with open(wal, "r+b") as f:
        f.seek(WAL_HEADER + 12 * FRAME + 24 + 100)  # inside a page of a later commit
        f.write(b"\xa5" * 64)
    kept, corrupt, logged = reopen(outbox, caplog)
    assert 0 < 12 * BATCH - len(kept) == corrupt
    assert f"{corrupt} readings" in logged[0]


def test_a_missing_wal_with_its_shm_left(outbox, caplog):
    killed_writer(outbox, 8)
    os.unlink(f"{outbox}-wal")
    assert os.path.exists(f"{outbox}-shm")
    kept, corrupt, logged = reopen(outbox, caplog)
    assert corrupt == 8 * BATCH - len(kept) > 0
    assert logged


def test_zeroed_pages(outbox, caplog):
    killed_writer(outbox, 30, delivered=40)
    with Outbox(outbox, auto_commit=False):
        pass
    with open(outbox, "r+b") as f:
        f.seek(6 * 4096)
        f.write(bytes(4096 * 3))
    kept, corrupt, logged = reopen(outbox, caplog)
    assert (len(kept), corrupt) == (0, 30 * BATCH - 40)
    assert "quick_check" in logged[0] or "malformed" in logged[0]


def test_a_database_from_a_future_format(outbox, caplog):
    killed_writer(outbox, 2)
    with Outbox(outbox, auto_commit=False):
        pass
    con = sqlite3.connect(outbox)
    con.execute("UPDATE meta SET value = 2 WHERE key = 'format'")
    con.commit()
    con.close()
    kept, corrupt, logged = reopen(outbox, caplog)
    assert (len(kept), corrupt) == (0, 2 * BATCH)
    assert "format is 2" in logged[0]
    assert outbox.parent.joinpath(corrupt_copies(outbox.parent)[0]).stat().st_size > 0, "kept for a newer pibridge"


def test_a_directory_in_place_of_the_file(outbox, caplog):
    outbox.mkdir()
    (outbox / "something").write_text("kept")
    kept, corrupt, logged = reopen(outbox, caplog)
    assert (len(kept), corrupt) == (0, 0)
    assert "not a regular file" in logged[0]
    (moved,) = corrupt_copies(outbox.parent)
    assert (outbox.parent / moved / "something").read_text() == "kept"


def test_a_read_only_file_keeps_readings_in_memory_until_writable(outbox, caplog):
    if os.geteuid() != 0:
        pytest.skip("making one file read-only for root needs a read-only bind mount, which needs root")
    killed_writer(outbox, 2)
    with Outbox(outbox, auto_commit=False):
        pass
    for suffix in ("-wal", "-shm"):
        if os.path.exists(f"{outbox}{suffix}"):
            os.unlink(f"{outbox}{suffix}")
    done = subprocess.run(["mount", "--bind", "-o", "ro", str(outbox), str(outbox)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {done.stderr.strip()}")
    caplog.set_level(logging.WARNING, logger=LOGGER)
    try:
        ob = Outbox(outbox, auto_commit=False)
        ob.append(make_readings(5, start=5000))
        ob.commit()
        stats = ob.stats()
        assert not stats.healthy and stats.in_memory == 5
        assert len(ob.peek(1000)) == 2 * BATCH + 5, "the file is still read while it cannot be written"
        assert any("writable by the user pibridge runs as" in m for m in errors(caplog))
    finally:
        subprocess.run(["umount", "-l", str(outbox)], capture_output=True)
    ob.commit()
    assert ob.stats().healthy and ob.stats().in_memory == 0
    ob.close()
    kept, corrupt, _ = reopen(outbox, caplog)
    assert (len(kept), corrupt) == (2 * BATCH + 5, 0)


def test_losses_counted_once_across_restarts_and_kept_in_the_totals(outbox, caplog):
    killed_writer(outbox, 6)
    os.unlink(f"{outbox}-wal")
    kept, corrupt, _ = reopen(outbox, caplog)
    assert corrupt > 0
    kept_again, corrupt_again, logged = reopen(outbox, caplog)
    assert (corrupt_again, logged) == (corrupt, [])
    assert len(kept_again) == len(kept) + 3


# -- a file system too small for what is kept ------------------------------------------------------


def test_a_small_file_system_drops_the_oldest_in_order_and_counts_them(tiny_fs, caplog):
    """512 kB hold about 6,000 readings: 30,000 in, and what is kept is the newest, without a hole."""
    path = tiny_fs.path / "outbox.db"
    caplog.set_level(logging.WARNING, logger=LOGGER)
    total = 30_000
    with Outbox(path, auto_commit=False, memory_limit=1000) as ob:
        for start in range(0, total, 200):
            ob.append(make_readings(200, start=start))
            ob.commit()
        stats = ob.stats()
        assert stats.healthy, stats.last_error
        kept = timestamps(ob.peek(total))
    first = kept[0] - kept[0] % 1  # timestamps are NOW_MS + index
    assert kept == list(range(first, first + len(kept))), "the kept readings are one run, the newest"
    assert kept[-1] == make_readings(1, start=total - 1)[0].timestamp_ms
    assert stats.dropped_reason == {"disk_full": total - len(kept)}, stats.dropped_reason
    assert stats.depth == len(kept) > 1000
    logged = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert sum("is full" in m for m in logged) == 1, logged


def test_a_failing_disk_is_retried_with_a_capped_back_off(tmp_path):
    import time

    from pibridge.outbox import store

    blocker = tmp_path / "storage"
    blocker.write_text("a file where the storage dir should be\n")
    path = blocker / "outbox.db"
    with Outbox(path, auto_commit=False, commit_interval=0.05) as ob:
        attempts = []
        real_open = ob._open

        def counting_open(*args, **kwargs):
            attempts.append(time.monotonic())
            return real_open(*args, **kwargs)

        ob._open = counting_open
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            ob.append(make_readings(5, start=100))  # appends never retry by themselves
            ob.maybe_commit()
            time.sleep(0.002)
        gaps = [b - a for a, b in zip(attempts, attempts[1:])]
        # Lower bounds only: a busy machine can make a retry late, never early.
        assert 2 <= len(attempts) <= 6, f"{len(attempts)} tries in 2 s at commit_interval 0.05 s: {gaps}"
        assert all(gap >= 0.09 * 2**k for k, gap in enumerate(gaps)), f"not doubling: {gaps}"
        assert max(gaps) <= store.RETRY_MAX + 0.1
        blocker.unlink()
        time.sleep(max(0.0, ob._retry_at - time.monotonic()))
        ob.maybe_commit()
        assert ob.stats().healthy and ob.stats().in_memory == 0


def test_a_torn_tally_is_ignored_with_a_warning_not_taken_for_a_loss(outbox, caplog):
    killed_writer(outbox, 3)
    tally = outbox.with_suffix(".tally")
    text = tally.read_bytes()
    assert len(text) == 512, "padded to one sector, so a rewrite is one in-place write"
    tally.write_bytes(text.replace(b'"depth": 300', b'"depth": 900'))  # a changed figure, the checksum not
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with Outbox(outbox, auto_commit=False) as ob:
        assert (len(ob.peek(10_000)), ob.stats().dropped) == (300, 0)
    assert any("tally" in r.getMessage() and "checksum" in r.getMessage() for r in caplog.records)
