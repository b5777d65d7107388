"""The outbox file is damaged while the daemon is down (a power cut, a bad card).

The daemon is killed with SIGKILL while the agent is away, so its last commits are still in the
``-wal``; then the files are damaged the way a power cut or a failing card does it, and the daemon
starts again with the agent back.  Every reading that was in the file at the kill must either
arrive or be counted as dropped with cause ``corrupt`` -- exactly, none silently -- and the log
must say what was lost.  (Each damage on its own, in more detail: tests/outbox/test_outbox_damage.py.)
"""

from __future__ import annotations

import os
import shutil

import pytest

from pibridge.outbox import Outbox, read_stats
from tests.faults.bridge import Bridge, mock, wait_until
from tests.faults.checks import assert_in_order, readings

INTERVAL = 0.1
SENSORS = ("attic", "cellar", "shed", "loft", "porch", "barn")


def in_file(storage, scratch) -> set[tuple[str, int]]:
    """(sensor, timestamp) of every reading the outbox files hold, read from a copy."""
    scratch.mkdir()
    for name in ("outbox.db", "outbox.db-wal"):
        if (storage / name).exists():
            shutil.copy(storage / name, scratch / name)
    with Outbox(scratch / "outbox.db", auto_commit=False) as outbox:
        return {(e.reading.sensor, e.reading.timestamp_ms) for e in outbox.peek(10**7)}


def truncate_wal(storage):
    wal = storage / "outbox.db-wal"
    with open(wal, "r+b") as f:
        f.truncate(wal.stat().st_size // 2)


def remove_wal(storage):
    os.unlink(storage / "outbox.db-wal")


def empty_database(storage):
    remove_wal(storage)
    os.unlink(storage / "outbox.db-shm")
    (storage / "outbox.db").write_bytes(b"")


DAMAGES = [
    pytest.param(truncate_wal, id="truncated-wal"),
    pytest.param(remove_wal, id="missing-wal-shm-left", marks=pytest.mark.slow),
    pytest.param(empty_database, id="empty-database", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("damage", DAMAGES)
def test_readings_of_a_damaged_outbox_arrive_or_are_counted(tmp_path, sim, damage):
    bridge = Bridge(tmp_path, sim, [mock(s, INTERVAL, ("temperature",), seed=i) for i, s in enumerate(SENSORS)],
                    name="damaged", storage_options={"commit_interval": 0.5})
    bridge.start()
    bridge.wait_values(10, timeout=60)
    sim.stop_broker()
    bridge.wait_log(lambda t: "buffering" in t, 15, "the daemon noticing the agent is gone")
    outbox = bridge.storage / "outbox.db"
    wait_until(lambda: (stats := read_stats(outbox)) is not None and stats.depth > 150, 30,
               "a few hundred readings buffered")
    bridge.kill()
    held = in_file(bridge.storage, tmp_path / "scratch")
    # Readings the agent had got but not confirmed when the connection dropped are queued again:
    # lost from the file, they are counted although they did arrive.
    arrived_before = {(s, ts) for s, per_ts in readings(bridge.values()).items() for ts in per_ts} & held
    damage(bridge.storage)

    sim.start_broker()
    bridge.start()
    restart_ms = max(ts for _, ts in held)
    bridge.wait_caught_up(SENSORS, restart_ms + 3000, 90, "readings from after the restart, the backlog too")
    assert bridge.stop() == 0
    values = bridge.values()
    assert_in_order(values)
    arrived = {(s, ts) for s, per_ts in readings(values).items() for ts in per_ts}
    lost = held - arrived
    corrupt = read_stats(outbox).dropped_reason.get("corrupt", 0)
    print(f"\n{damage.__name__}: {len(held)} readings in the file at the kill ({len(arrived_before)} of them had "
          f"arrived before), {len(held & arrived)} arrived, {len(lost)} did not, {corrupt} counted as corrupt, "
          f"{max(0, len(lost) - corrupt)} lost silently; {len(values) - len(arrived)} duplicates in all")
    assert lost, "the damage must have cost readings, or this test proves nothing"
    assert len(lost) <= corrupt <= len(lost) + len(arrived_before), (len(lost), corrupt, len(arrived_before))
    log = bridge.log_text()
    assert f"{corrupt} readings" in log and "Traceback" not in log
