"""The outbox as a queue: what goes in comes back out, in order, until it is removed."""

from __future__ import annotations

import math
import sqlite3
import threading

import pytest
from outbox_support import NOW_MS, make_readings, timestamps
from tests.support.waiting import wait_until

from pibridge.outbox import Outbox, OutboxClosed, OutboxEntry, OutboxInUse, read_stats
from pibridge.readings import Reading


@pytest.fixture
def path(tmp_path):
    return tmp_path / "storage" / "outbox.sqlite"


def open_outbox(path, **kw):
    kw.setdefault("auto_commit", False)
    return Outbox(path, **kw)


EVERY_KIND = Reading(
    "kitchen",
    NOW_MS,
    {
        "temperature": 21.37,
        "negative": -0.0,
        "tiny": 5e-324,
        "huge": 1.7976931348623157e308,
        "infinite": float("-inf"),
        "not_a_number": float("nan"),
        "count": 42,
        "int_min": -(2**63),
        "int_max": 2**63 - 1,
        "beyond_int64": 2**64 + 7,
        "below_int64": -(2**80),
        "door_open": True,
        "light_on": False,
        "label": "Küche ☀ \x00 end",
        "empty": "",
    },
)


def assert_same_reading(got: Reading, want: Reading) -> None:
    assert got.sensor == want.sensor
    assert got.timestamp_ms == want.timestamp_ms
    assert list(got.values) == list(want.values), "quantity order changed"
    for name, value in want.values.items():
        stored = got.values[name]
        assert type(stored) is type(value), f"{name}: {type(stored).__name__} came back for {type(value).__name__}"
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(stored)
        elif isinstance(value, float):
            assert stored == value and math.copysign(1, stored) == math.copysign(1, value), name
        else:
            assert stored == value, name


def test_every_value_kind_survives_commit_and_reopen(path):
    empty = Reading("button", NOW_MS + 1, {})
    with open_outbox(path) as ob:
        ob.append([EVERY_KIND, empty])
        before = ob.peek(10)
        assert_same_reading(before[0].reading, EVERY_KIND)
    with open_outbox(path) as ob:
        after = ob.peek(10)
    assert [e.id for e in after] == [e.id for e in before]
    assert_same_reading(after[0].reading, EVERY_KIND)
    assert_same_reading(after[1].reading, empty)


def test_same_sensor_with_a_changed_value_type_keeps_each_type(path):
    as_int = Reading("counter", NOW_MS, {"pulses": 3})
    as_float = Reading("counter", NOW_MS + 1, {"pulses": 3.5})
    as_text = Reading("counter", NOW_MS + 2, {"pulses": "overflow"})
    with open_outbox(path) as ob:
        ob.append([as_int, as_float, as_text])
    with open_outbox(path) as ob:
        got = [e.reading for e in ob.peek(10)]
    for g, w in zip(got, [as_int, as_float, as_text], strict=True):
        assert_same_reading(g, w)


def test_a_value_of_another_type_is_refused_and_nothing_is_queued(path):
    with open_outbox(path) as ob:
        good = make_readings(2)
        bad = Reading("probe", NOW_MS, {"temperature": 20.5, "status": None})
        with pytest.raises(TypeError, match=r"sensor 'probe'.*quantity 'status'.*NoneType.*float, int, bool or str"):
            ob.append([*good, bad])
        assert ob.peek(10) == []
        assert ob.stats().depth == 0


@pytest.mark.parametrize(
    "bad, message",
    [
        (Reading("probe", 1.5e12, {"t": 1.0}), "timestamp_ms must be an int"),
        (Reading("probe", 2**63, {"t": 1.0}), "timestamp_ms must be an int"),
        (Reading("probe", True, {"t": 1.0}), "timestamp_ms must be an int"),
        (Reading(7, NOW_MS, {"t": 1.0}), "sensor name and the quantity names must be str"),
        (Reading("probe", NOW_MS, {1: 1.0}), "sensor name and the quantity names must be str"),
        (Reading("probe\ud800", NOW_MS, {"t": 1.0}), "valid Unicode"),
        (Reading("probe", NOW_MS, {"t": "\udcff"}), "not valid Unicode"),
    ],
)
def test_a_malformed_reading_is_refused_at_append_not_at_commit(path, bad, message):
    with open_outbox(path) as ob:
        ob.append([Reading("probe", NOW_MS, {"t": 1.0})])  # makes the layout known, for the fast path
        with pytest.raises(TypeError, match=message):
            ob.append([bad])
        ob.commit()
        assert ob.stats().healthy
        assert ob.stats().depth == 1


def test_order_is_kept_across_many_appends_and_restarts(path):
    appended: list[int] = []
    for restart in range(5):
        with open_outbox(path) as ob:
            for batch in range(20):
                readings = make_readings(37, start=len(appended))
                ob.append(readings)
                appended += [r.timestamp_ms for r in readings]
                if batch % 3 == 0:
                    ob.commit()
            assert timestamps(ob.peek(10_000)) == appended
    with open_outbox(path) as ob:
        entries = ob.peek(10_000)
        assert timestamps(entries) == appended
        assert [e.id for e in entries] == sorted(e.id for e in entries)
        assert ob.stats().depth == len(appended)


def test_peek_sees_uncommitted_readings_after_committed_ones(path):
    with open_outbox(path) as ob:
        ob.append(make_readings(3))
        ob.commit()
        ob.append(make_readings(2, start=3))
        assert timestamps(ob.peek(10)) == [NOW_MS + i for i in range(5)]
        assert timestamps(ob.peek(2)) == [NOW_MS, NOW_MS + 1]
        stats = ob.stats()
        assert (stats.depth, stats.in_memory) == (5, 2)
    assert read_stats(path).depth == 5


def test_peek_after_id_pages_past_readings_in_flight(path):
    with open_outbox(path) as ob:
        ob.append(make_readings(6))
        ob.commit()
        ob.append(make_readings(4, start=6))
        first = ob.peek(4)
        rest = ob.peek(100, after_id=first[-1].id)
        assert timestamps(first) + timestamps(rest) == [NOW_MS + i for i in range(10)]


def test_remove_takes_out_exactly_the_acknowledged_ones(path):
    with open_outbox(path) as ob:
        ob.append(make_readings(5))
        ob.commit()
        ob.append(make_readings(5, start=5))  # still in memory
        entries = ob.peek(10)
        gone = {entries[0].id, entries[3].id, entries[6].id, entries[9].id}
        ob.remove(gone)
        want = [e for e in entries if e.id not in gone]
        assert ob.peek(10) == want
        assert ob.stats().depth == 6
        ob.commit()
        assert ob.peek(10) == want
    with open_outbox(path) as ob:
        assert [e.id for e in ob.peek(10)] == [e.id for e in want]
        assert ob.stats().depth == 6
    assert read_stats(path).depth == 6


def test_a_reading_removed_before_the_commit_never_reaches_the_disk(path):
    with open_outbox(path) as ob:
        ob.append(make_readings(3))
        ob.remove([e.id for e in ob.peek(3)])
        ob.commit()
    con = sqlite3.connect(path)
    assert con.execute("SELECT count(*) FROM reading").fetchone() == (0,)
    con.close()


def test_removing_unknown_or_repeated_ids_is_harmless(path):
    with open_outbox(path) as ob:
        ob.append(make_readings(3))
        ob.commit()
        first = ob.peek(1)[0].id
        ob.remove([first, first, 999_999])
        ob.commit()
        ob.remove([first])
        ob.commit()
        assert timestamps(ob.peek(10)) == [NOW_MS + 1, NOW_MS + 2]
        assert ob.stats().depth == 2


def test_ids_are_not_reused_after_the_outbox_empties(path):
    with open_outbox(path) as ob:
        ob.append(make_readings(3))
        ob.commit()
        last = ob.peek(3)[-1].id
        ob.remove(e.id for e in ob.peek(3))
    with open_outbox(path) as ob:
        ob.append(make_readings(1))
        assert ob.peek(1)[0].id > last


def test_the_background_thread_commits_within_the_interval(path):
    with Outbox(path, commit_interval=0.05) as ob:
        ob.append(make_readings(4))
        wait_until(lambda: (read_stats(path) or 0) and read_stats(path).depth == 4, what="a background commit")
        assert ob.stats().in_memory == 0


def test_appending_past_memory_limit_with_a_healthy_disk_commits_instead_of_dropping(path):
    with open_outbox(path, memory_limit=100) as ob:
        for start in range(0, 1000, 50):
            ob.append(make_readings(50, start=start))
        stats = ob.stats()
        assert stats.dropped == 0
        assert stats.depth == 1000
        assert stats.in_memory <= 100
        assert timestamps(ob.peek(2000)) == [NOW_MS + i for i in range(1000)]


def test_appends_from_many_threads_while_committing_lose_nothing(path):
    with Outbox(path, commit_interval=0.01, memory_limit=100_000) as ob:

        def writer(sensor: str) -> None:
            for i in range(50):
                ob.append(make_readings(10, start=i * 10, sensor=sensor))

        threads = [threading.Thread(target=writer, args=(f"s{n}",)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        entries = ob.peek(10_000)
    assert len(entries) == 2000
    for n in range(4):
        mine = [e.reading.timestamp_ms for e in entries if e.reading.sensor == f"s{n}"]
        assert mine == [NOW_MS + i for i in range(500)], "one thread's readings came back out of order"


def test_a_second_outbox_on_the_same_file_is_refused(path):
    with open_outbox(path):
        with pytest.raises(OutboxInUse, match="already open in another pibridge process"):
            open_outbox(path)
    open_outbox(path).close()


def test_close_commits_and_refuses_more_appends(path):
    ob = open_outbox(path)
    ob.append(make_readings(2))
    ob.close()
    ob.close()
    with pytest.raises(OutboxClosed):
        ob.append(make_readings(1))
    assert read_stats(path).depth == 2


def test_entries_are_plain_values(path):
    with open_outbox(path) as ob:
        ob.append(make_readings(1))
        (entry,) = ob.peek(1)
    assert entry == OutboxEntry(entry.id, make_readings(1)[0])


def test_maybe_commit_commits_only_once_the_interval_has_passed(path):
    with open_outbox(path, commit_interval=0.2) as ob:
        ob.commit()
        ob.append(make_readings(2))
        ob.maybe_commit()
        assert ob.stats().in_memory == 2, "committed before the interval passed"
        wait_until(lambda: ob.maybe_commit() or ob.stats().in_memory == 0, what="maybe_commit to commit")
        assert read_stats(path).depth == 2


def test_drain_while_appending_and_committing_removes_exactly_what_was_acknowledged(path):
    """The bridge's replay: one thread appends, another peeks and removes, commits run in between."""
    appended: list[int] = []
    acknowledged: set[int] = set()
    with Outbox(path, commit_interval=0.002, max_age=None) as ob:
        done = threading.Event()

        def produce() -> None:
            for start in range(0, 3000, 30):
                batch = make_readings(30, start=start)
                ob.append(batch)
                appended.extend(r.timestamp_ms for r in batch)
            done.set()

        producer = threading.Thread(target=produce)
        producer.start()
        last_seen = 0
        while not done.is_set() or ob.peek(1, after_id=last_seen):
            page = ob.peek(7, after_id=last_seen)
            if page:
                # Acknowledge every other one, as PUBACKs may come back out of order.
                ob.remove(e.id for e in page[::2])
                acknowledged.update(e.reading.timestamp_ms for e in page[::2])
                last_seen = page[-1].id
            head = timestamps(ob.peek(20))
            assert not acknowledged.intersection(head), "peek returned an acknowledged reading"
            assert head == sorted(head)
        producer.join()
        remaining = timestamps(ob.peek(10_000))
    want = [ts for ts in appended if ts not in acknowledged]
    assert remaining == want
    with Outbox(path, auto_commit=False, max_age=None) as ob:
        assert timestamps(ob.peek(10_000)) == want
        assert ob.stats().depth == len(want)
