"""max_bytes and max_age: the oldest readings go first, are counted, and the count survives restarts."""

from __future__ import annotations

import logging
import time

import pytest
from outbox_support import NOW_MS, make_readings, timestamps

from pibridge.outbox import Outbox, read_stats
from pibridge.readings import Reading


def test_max_bytes_drops_the_oldest_and_counts_them(tmp_path, caplog):
    path = tmp_path / "outbox.sqlite"
    max_bytes = 256 * 1024
    caplog.set_level(logging.WARNING, logger="pibridge.outbox")
    appended = 0
    with Outbox(path, max_bytes=max_bytes, max_age=None, auto_commit=False) as ob:
        for _ in range(30):
            ob.append(make_readings(1000, start=appended))
            appended += 1000
            ob.commit()
            assert ob.stats().bytes <= max_bytes
        stats = ob.stats()
        kept = timestamps(ob.peek(100_000))
    assert stats.dropped_reason == {"max_bytes": stats.dropped}
    assert stats.dropped + stats.depth == appended
    assert 0 < stats.depth < appended
    # The newest are the ones kept, in order, with no gaps.
    assert kept == [NOW_MS + i for i in range(appended - len(kept), appended)]
    # The dropped count is stored in the file.
    assert read_stats(path).dropped_reason == {"max_bytes": stats.dropped}
    with Outbox(path, max_bytes=max_bytes, max_age=None, auto_commit=False) as ob:
        assert ob.stats().dropped_reason == {"max_bytes": stats.dropped}
    # One warning for the whole run of drops, naming the limit and the count.
    warnings = [r.getMessage() for r in caplog.records if "max_bytes" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert f"max_bytes = {max_bytes} bytes" in warnings[0] and "dropped the oldest" in warnings[0]


def test_max_bytes_holds_with_small_commits_too(tmp_path):
    path = tmp_path / "outbox.sqlite"
    max_bytes = 96 * 1024
    appended = 0
    with Outbox(path, max_bytes=max_bytes, max_age=None, auto_commit=False) as ob:
        while ob.stats().dropped < 2000:
            ob.append(make_readings(7, start=appended))
            appended += 7
            ob.commit()
            assert ob.stats().bytes <= max_bytes
        stats = ob.stats()
        assert stats.depth + stats.dropped == appended
        # Nearly all of the allowance holds readings: at most a few pages go to dropping in whole pages.
        assert stats.depth * 59 > max_bytes * 0.7


def test_max_age_drops_readings_older_than_the_limit_from_the_head(tmp_path, caplog):
    path = tmp_path / "outbox.sqlite"
    now = int(time.time() * 1000)
    old = [Reading("probe", now - 3_600_000 + i, {"t": float(i)}) for i in range(5)]
    young = [Reading("probe", now + i, {"t": float(i)}) for i in range(3)]
    caplog.set_level(logging.WARNING, logger="pibridge.outbox")
    with Outbox(path, max_age=600, auto_commit=False) as ob:
        ob.append(old + young)
        ob.commit()
        assert [e.reading for e in ob.peek(10)] == young
        stats = ob.stats()
        assert stats.dropped_reason == {"max_age": 5}
        assert stats.depth == 3
    with Outbox(path, max_age=600, auto_commit=False) as ob:
        assert ob.stats().dropped_reason == {"max_age": 5}
        assert [e.reading for e in ob.peek(10)] == young
    (warning,) = [r.getMessage() for r in caplog.records if "max_age" in r.getMessage()]
    assert "max_age = 600 s" in warning and "dropped the oldest 5 readings" in warning


def test_max_age_also_applies_while_nothing_new_arrives(tmp_path):
    path = tmp_path / "outbox.sqlite"
    with Outbox(path, max_age=0.2, auto_commit=False) as ob:
        ob.append([Reading("probe", int(time.time() * 1000), {"t": 1.0})])
        ob.commit()
        deadline = time.monotonic() + 10
        while ob.stats().depth and time.monotonic() < deadline:
            ob.commit()
            time.sleep(0.05)
        assert ob.stats().dropped_reason == {"max_age": 1}


def test_counts_of_different_reasons_add_up_across_restarts(tmp_path):
    path = tmp_path / "outbox.sqlite"
    stale = [Reading("probe", NOW_MS - 86_400_000, {"t": 1.0})] * 2
    with Outbox(path, max_age=3600, max_bytes=128 * 1024, auto_commit=False) as ob:
        ob.append(stale)
        ob.commit()
    with Outbox(path, max_age=3600, max_bytes=128 * 1024, auto_commit=False) as ob:
        ob.append(make_readings(6000))
        ob.commit()
        stats = ob.stats()
    assert stats.dropped_reason["max_age"] == 2
    assert stats.dropped_reason["max_bytes"] > 0
    assert stats.dropped == sum(stats.dropped_reason.values())
    assert read_stats(path).dropped == stats.dropped


@pytest.mark.parametrize("kwargs, message", [
    ({"max_bytes": 1000}, "max_bytes must be at least"),
    ({"max_age": 0}, "max_age must be positive"),
    ({"commit_interval": 0}, "commit_interval must be positive"),
    ({"memory_limit": 0}, "memory_limit must be at least 1"),
])
def test_nonsense_limits_are_refused_with_the_name_of_the_setting(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Outbox(tmp_path / "outbox.sqlite", **kwargs)
