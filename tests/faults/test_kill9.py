"""kill -9 of the daemon at random moments, while offline and while replaying.

Whatever a kill interrupts, every reading that was committed to the outbox
when the daemon died must reach the agent, in order per sensor, with its
timestamp.  A reading may arrive twice only if it was in the outbox at a
kill (acknowledged, but its removal not committed yet): the at-least-once
window of docs/delivery.md -- or if the broker itself delivered it to the
agent twice: a push the agent's session had not acknowledged when the
broker was stopped is handed to the agent again when the broker is back
(MQTT QoS 1 between broker and agent, nothing the bridge can see or avoid).

The backlog replayed is made large enough to be killed in the middle of:
before the replay phase the test appends readings of a sensor whose own
reads hang (so it contributes nothing else) straight into the outbox file,
through pibridge's Outbox, as the daemon would have.
"""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from pibridge.outbox.store import Outbox, read_stats
from pibridge.readings import Reading
from tests.faults.bridge import Bridge, mock, wait_until
from tests.faults.checks import assert_complete, assert_in_order, readings

METRICS = ("temperature", "humidity")
LIVE = ("north", "south", "east")
BULK = "archive"


def committed(path) -> set[tuple[str, int]]:
    """(sensor, timestamp) of every reading in the outbox file, as a restarted daemon would find it."""
    with Outbox(path) as outbox:
        return {(e.reading.sensor, e.reading.timestamp_ms) for e in outbox.peek(10**7)}


def depth(path) -> int:
    stats = read_stats(path)
    return stats.depth if stats else 0


def kill_at_random_moments(tmp_path, sim, offline_kills: int, replay_kills: int, seed: int) -> None:
    rng = random.Random(seed)
    sensors = [mock(name, 0.1, METRICS, seed=i) for i, name in enumerate(LIVE)]
    sensors.append(mock(BULK, 60.0, METRICS, hang_every=1, hang_seconds=3600.0))
    bridge = Bridge(tmp_path, sim, sensors, name="kill9", storage_options={"commit_interval": 0.5})
    outbox = bridge.storage / "outbox.db"
    bridge.start()
    bridge.wait_values(30, timeout=30)
    broker_stop = (time.time() - 0.5, 0.0)
    sim.stop_broker()
    broker_stop = (broker_stop[0], time.time() + 0.5)

    snapshots: list[set[tuple[str, int]]] = []
    for _ in range(offline_kills):
        before = depth(outbox)
        wait_until(lambda: depth(outbox) > before, 20, "the offline daemon to commit readings to the outbox")
        time.sleep(rng.uniform(0.0, 0.6))  # the moment of the kill, anywhere in a commit cycle
        bridge.kill()
        snapshots.append(committed(outbox))
        if len(snapshots) > 1:
            lost = snapshots[-2] - snapshots[-1]
            assert not lost, f"{len(lost)} committed readings vanished from the outbox across a kill -9"
        bridge.start()

    bridge.kill()
    start_ms = int(time.time() * 1000) - 3_600_000
    with Outbox(outbox) as box:
        box.append(Reading(BULK, start_ms + i * 10, {"temperature": 20.0 + i % 50 / 10, "humidity": 40.0 + i % 7})
                   for i in range(5000 * (replay_kills + 1)))
        box.commit()
    snapshots.append(committed(outbox))
    sim.start_broker()
    bridge.start()

    for n in range(replay_kills):
        stored = len(sim.store.values(bridge.client_id))
        wait_until(lambda: len(sim.store.values(bridge.client_id)) > stored, 30, "the replay to make progress")
        time.sleep(rng.uniform(0.0, 0.5))
        bridge.kill()
        snapshot = committed(outbox)
        assert snapshot, f"replay kill {n + 1}: the backlog was already gone; nothing was replaying"
        snapshots.append(snapshot)
        bridge.start()

    wait_until(lambda: depth(outbox) == 0, 120, "the outbox to drain")
    must_arrive = set().union(*snapshots)
    wait_until(lambda: must_arrive <= {(v["sensor"], v["timestamp_ms"]) for v in bridge.values()}, 60,
               "every committed reading to arrive")
    assert bridge.stop() == 0

    values = bridge.values()
    got = readings(values)
    arrived = {(s, ts) for s, per_ts in got.items() for ts in per_ts}
    missing = must_arrive - arrived
    assert not missing, f"{len(missing)} committed readings never arrived, e.g. {sorted(missing)[:5]}"
    assert_complete(values, {s: len(METRICS) for s in (*LIVE, BULK)})
    assert_in_order(values)
    copies = Counter((v["sensor"], v["metric_id"], v["timestamp_ms"]) for v in values)
    repeated = {(s, ts) for (s, _m, ts), n in copies.items() if n > 1}
    first_arrival = {}
    for v in values:
        first_arrival.setdefault((v["sensor"], v["timestamp_ms"]), v["received_at"])
    redelivered_by_broker = {r for r in repeated if broker_stop[0] <= first_arrival[r] <= broker_stop[1]}
    outside = repeated - must_arrive - redelivered_by_broker
    assert not outside, f"{len(outside)} readings arrived twice without having been in the outbox at a kill: {sorted(outside)[:5]}"


def test_kill9_five_moments(tmp_path, sim):
    kill_at_random_moments(tmp_path, sim, offline_kills=2, replay_kills=3, seed=5)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_kill9_twenty_moments(tmp_path, sim):
    kill_at_random_moments(tmp_path, sim, offline_kills=10, replay_kills=10, seed=20)
