"""The storage directory fills up or turns read-only while the agent is away.

The storage dir is a small tmpfs of its own (mounting needs root, as in CI;
the tests are skipped with the reason otherwise), so "the card is full" and
"the card went read-only" are real ENOSPC / EROFS errors from the kernel.
The daemon must keep running, say what is wrong and how to fix it, keep the
readings it cannot write in memory, and carry on when the disk is usable
again: afterwards every sensor's readings arrive without a gap.
"""

from __future__ import annotations

import errno
import subprocess
import time

import pytest

from tests.faults.bridge import Bridge, mock, small_tmpfs, wait_until
from tests.faults.checks import assert_complete, assert_in_order, assert_no_gaps, readings

INTERVAL = 0.2
SENSORS = ("attic", "garage", "pond")


@pytest.fixture
def card(tmp_path):
    """A 4 MB tmpfs standing in for the SD card."""
    yield from small_tmpfs(tmp_path, "4m")


def fill(directory) -> int:
    """Write a ballast file until the file system says it is full; its size."""
    ballast = directory / "ballast"
    written = 0
    with open(ballast, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
                written += 65536
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return written


def remount(mount_point, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mount_point)], check=True, capture_output=True)


def offline_bridge(tmp_path, sim, card) -> Bridge:
    sensors = [mock(name, INTERVAL, seed=i) for i, name in enumerate(SENSORS)]
    bridge = Bridge(tmp_path, sim, sensors, name="card", storage=card / "pibridge",
                    storage_options={"commit_interval": 0.5})
    bridge.start()
    bridge.wait_values(10, timeout=30)
    sim.stop_broker()
    bridge.wait_log(lambda t: "buffering" in t, 15, "the daemon noticing the agent is gone")
    return bridge


def back_online_without_gaps(bridge: Bridge, sim, fault_ms: tuple[int, int], since_ms: int = 0) -> None:
    """The agent comes back: readings from ``since_ms`` on, the fault included, arrive without a gap."""
    sim.start_broker()
    bridge.wait_caught_up(SENSORS, fault_ms[1] + 2000, 60, "readings from after the fault, the backlog too")
    bridge.assert_running()
    assert bridge.stop() == 0
    values = bridge.values()
    assert_in_order(values)
    assert_complete(values, {s: 2 for s in SENSORS})
    got = readings(values)
    for sensor in SENSORS:
        stamps = sorted(ts for ts in got[sensor] if ts >= since_ms)
        assert_no_gaps(stamps, INTERVAL, sensor)
        assert sum(fault_ms[0] <= ts <= fault_ms[1] for ts in stamps) >= (fault_ms[1] - fault_ms[0]) / 1000 / INTERVAL - 3


def test_disk_full_keeps_running_reports_and_recovers(tmp_path, sim, card):
    bridge = offline_bridge(tmp_path, sim, card)
    outbox = bridge.storage / "outbox.db"
    wait_until(lambda: outbox.exists() and outbox.stat().st_size > 0, 10, "the outbox file")
    full_from = int(time.time() * 1000)
    fill(card)
    text = bridge.wait_log(lambda t: "free space on the file system" in t, 20, "the disk-full error and its fix")
    assert "Traceback" not in text
    status = bridge.status()
    assert "outbox" in status.stdout and "Traceback" not in status.stdout + status.stderr
    # The length of the fault: readings keep coming while nothing can be written, and the
    # failing commits are retried with a back-off, not on every append (that took 58 % of a core).
    cpu = bridge.cpu_share(3)
    print(f"\ndisk full to the last byte: the daemon used {cpu:.1%} of a core")
    assert cpu < 0.15, f"the daemon used {cpu:.0%} of a core while the disk was full"
    bridge.assert_running()
    (card / "ballast").unlink()
    bridge.wait_log(lambda t: "writable again" in t, 20, "the outbox recovering")
    back_online_without_gaps(bridge, sim, (full_from, int(time.time() * 1000)))


def test_read_only_storage_keeps_running_reports_and_recovers(tmp_path, sim, card):
    # A card the kernel remounted read-only after I/O errors, found at the next boot.  (A live
    # remount is refused while the daemon holds files open for writing, as it would be on a Pi.)
    bridge = offline_bridge(tmp_path, sim, card)
    assert bridge.stop() == 0
    remount(card, "ro")
    try:
        ro_from = int(time.time() * 1000)
        bridge.start()
        text = bridge.wait_log(lambda t: "writable by the user pibridge runs as" in t, 20,
                               "the read-only error and its fix")
        assert "Traceback" not in text
        time.sleep(3)  # the length of the fault: readings keep coming while nothing can be written
        bridge.assert_running()
    finally:
        remount(card, "rw")
    bridge.wait_log(lambda t: "writable again" in t, 20, "the outbox recovering")
    # The daemon was restarted just before the fault: readings count from its first one after that.
    back_online_without_gaps(bridge, sim, (ro_from, int(time.time() * 1000)), since_ms=ro_from)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_disk_full_for_long_drops_the_oldest_in_memory_then_recovers(tmp_path, sim, card):
    # 20 sensors at 20 Hz outrun the outbox's memory_limit (10,000 readings) in about 25 s.
    sensors = [mock(f"fast{i:02d}", 0.05, ("temperature",), seed=i) for i in range(20)]
    bridge = Bridge(tmp_path, sim, sensors, name="flood", storage=card / "pibridge",
                    storage_options={"commit_interval": 0.5})
    bridge.start()
    bridge.wait_values(40, timeout=30)
    sim.stop_broker()
    bridge.wait_log(lambda t: "buffering" in t, 15, "the daemon noticing the agent is gone")
    full_from = int(time.time() * 1000)
    fill(card)
    bridge.wait_log(lambda t: "already holds memory_limit" in t, 120, "the memory limit to bite and be reported")
    bridge.assert_running()
    full_to = int(time.time() * 1000)
    (card / "ballast").unlink()
    text = bridge.wait_log(lambda t: "writable again" in t, 30, "the outbox recovering")
    line = next(line for line in text.splitlines() if "writable again" in line)
    dropped = int(line.split(", ")[-1].split()[0])
    assert dropped > 0, line
    sim.start_broker()
    bridge.wait_caught_up([s["name"] for s in sensors], full_to + 2000, 120,
                          "readings from after the fault, the backlog too")
    assert bridge.stop() == 0
    got = readings(bridge.values())
    # Drop-oldest: what is missing is the start of the full period; its end and everything after are there.
    for sensor in (s["name"] for s in sensors):
        stamps = sorted(got[sensor])
        assert any(full_from <= ts <= full_to for ts in stamps)
        tail = [ts for ts in stamps if ts >= full_to - 5000]
        assert_no_gaps(tail, 0.05, sensor)
    assert "Traceback" not in bridge.log_text()
