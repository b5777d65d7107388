"""The storage directory is on a file system that fills up while the agent is away.

A 2 MiB tmpfs is the SD card (mounting needs root, as in CI; skipped with the
reason otherwise).  What must hold:

* the oldest readings are dropped, in order: per sensor, what is missing is
  one run at the start of the outage, and what follows it arrives complete;
* every reading that never arrives is counted: the slots missing at the
  agent equal the drops the outbox counted (by cause) plus the slots the
  readers counted as missed -- dropped silently is zero;
* the daemon's CPU while the disk is full stays near its level before;
* when space returns the outbox carries on without a restart and what it kept
  is replayed in order.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter

import pytest

from pibridge.bridge.config import StorageConfig
from pibridge.bridge.daemon import PING_INTERVAL
from tests.faults.bridge import Bridge, mock, small_tmpfs
from tests.faults.checks import assert_in_order, readings

ACK_WINDOW = StorageConfig().ack_window
RUNS = [
    # (sensors, interval, bytes left free, seconds kept full after the drops began)
    pytest.param(8, 0.1, 80 * 1024, 0, id="quick"),
    pytest.param(16, 0.05, 640 * 1024, 45, id="long", marks=[pytest.mark.slow, pytest.mark.timeout(400)]),
]


@pytest.fixture
def card(tmp_path):
    """A 2 MiB tmpfs standing in for the SD card."""
    yield from small_tmpfs(tmp_path, "2m")


def leave_free(directory, keep: int) -> None:
    """Fill the file system of *directory* with a ballast file until only *keep* bytes are free."""
    fs = os.statvfs(directory)
    size = fs.f_bavail * fs.f_frsize - keep
    with open(directory / "ballast", "wb") as f:
        f.write(b"\0" * max(0, size))


def slot_counts(values: list[dict], interval: float) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Per sensor: readings missing between its first and last arrival, and their slots.

    A reading belongs to the slot it was taken for: a few ms after it, rarely a ms before (wall
    and monotonic clock).  A read that a busy machine made later than most of an interval lands
    in the next slot, which then holds two: that pair is a late reading, not a lost and a
    duplicated one, so the empty slot next to a doubled one does not count as missing.
    """
    missing, runs = {}, {}
    for sensor, per_ts in readings(values).items():
        taken = Counter(round(ts / 1000 / interval - 0.3) for ts in per_ts)
        gone = set(range(min(taken), max(taken) + 1)) - set(taken)
        for slot, n in sorted(taken.items()):
            for _ in range(n - 1):
                moved = next((m for m in (slot - 1, slot + 1) if m in gone), None)
                if moved is not None:
                    gone.discard(moved)
        missing[sensor], runs[sensor] = len(gone), sorted(gone)
    return missing, runs


def stretches(slots: list[int]) -> list[tuple[int, int]]:
    """Consecutive slots as (first, last) ranges, for a readable message."""
    out: list[tuple[int, int]] = []
    for slot in slots:
        if out and out[-1][1] == slot - 1:
            out[-1] = (out[-1][0], slot)
        else:
            out.append((slot, slot))
    return out


def final_state(bridge: Bridge) -> dict:
    done = bridge.status("--json")
    return json.loads(done.stdout)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("count, interval, free, hold", RUNS)
def test_a_full_disk_drops_the_oldest_in_order_counts_every_drop_and_costs_no_cpu(tmp_path, sim, card, count,
                                                                                   interval, free, hold):
    names = [f"probe{i}" for i in range(count)]
    sensors = [mock(name, interval, ("temperature",), seed=i) for i, name in enumerate(names)]
    bridge = Bridge(tmp_path, sim, sensors, name="full", storage=card / "pibridge",
                    storage_options={"commit_interval": 0.5})
    bridge.start()
    bridge.wait_values(20, timeout=60)
    outage_from = time.time()
    sim.stop_broker()
    bridge.wait_log(lambda t: "buffering" in t, 15, "the daemon noticing the agent is gone")
    before = bridge.cpu_share(2)

    fault_from = int(time.time() * 1000)
    leave_free(card, free)
    bridge.wait_log(lambda t: "is full: dropped the oldest" in t, 120, "the outbox dropping for the full disk")
    during = bridge.cpu_share(2 + hold)
    live = final_state(bridge)["outbox"]
    assert live["dropped_reason"].get("disk_full", 0) > 0, live
    bridge.assert_running()

    (card / "ballast").unlink()
    space_back = int(time.time() * 1000)
    sim.start_broker()
    bridge.wait_caught_up(names, space_back + 3000, 90, "readings from after the space returned, the backlog too")
    assert bridge.stop() == 0
    values = bridge.values()
    assert_in_order(values)

    missing, runs = slot_counts(values, interval)
    state = final_state(bridge)
    # The oldest went: per sensor, the missing readings are one run from the start of the outage.
    # The only readings that may have arrived inside that run are those in flight when the broker
    # stopped: the broker may have had them, while their copies in the outbox were among the oldest
    # and dropped.
    in_flight_until = round((outage_from + ACK_WINDOW + 1) / interval)
    for sensor, gone in runs.items():
        survivors = [slot for slot in range(gone[0], gone[-1] + 1) if slot not in gone] if gone else []
        assert all(slot <= in_flight_until for slot in survivors), (
            f"{sensor}: the missing readings are not one run at the head: {stretches(gone)}; "
            f"counted {state['outbox']['dropped_reason']}, outage from {outage_from / interval:.0f}, "
            f"fault from {fault_from // 100} to {space_back // 100}")
    dropped = sum(state["outbox"]["dropped_reason"].values())
    missed = sum(s.get("missed", 0) for s in state["state"]["sensors"].values())
    lost = sum(missing.values())
    silent = max(0, lost - dropped - missed)
    delivered = sum(len(per_ts) for per_ts in readings(values).values())
    print(f"\nfull disk: {count} sensors at {interval:g} s; readings expected {delivered + lost}, "
          f"delivered {delivered}, duplicated {len(values) - delivered}; missing at the agent {lost}, "
          f"dropped and counted {state['outbox']['dropped_reason']}, missed slots {missed}, dropped silently {silent}; "
          f"CPU {before:.1%} of a core before, {during:.1%} while full")
    assert dropped > 0
    assert silent == 0, (missing, state["outbox"]["dropped_reason"], missed)
    # Counted but not missing: readings the agent had got, sent again because the agent had not
    # confirmed them when the connection dropped (at most a ping interval's worth), then dropped.
    assert dropped - lost <= PING_INTERVAL / interval * count, (lost, dropped)
    assert during <= max(2 * before, before + 0.10), f"CPU {before:.1%} before, {during:.1%} while the disk is full"
    assert "Traceback" not in bridge.log_text()
    assert "more than the whole file system" in bridge.log_text(), "64 MiB of outbox on a 2 MiB disk is worth a warning"
