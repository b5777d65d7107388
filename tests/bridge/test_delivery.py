"""The delivery thread against the simulator: live pushes, outages, the ack window, bounded replay.

Real parts throughout: the simulator's Mosquitto with mutual TLS, the
AgentClient, a SQLite outbox file.  An unacknowledging broker is a real
Mosquitto stopped with SIGSTOP: the TCP connection stays up, PUBACKs stop.
"""

import os
import signal
import threading
import time

import pytest

from pibridge.agent.client import AgentClient, Backoff
from pibridge.agent.identity import provision
from pibridge.bridge.delivery import LIVE, OFFLINE, Delivery
from pibridge.bridge.reconcile import reconcile
from pibridge.bridge.registry import Registry
from pibridge.outbox import Outbox
from pibridge.readings import UNITS, Reading

SENSORS = ("a", "b")


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
    return result


class Rig:
    """A provisioned client, reconciled IDs, an outbox and a Delivery wired to the connection."""

    def __init__(self, sim, tmp_path, *, ack_window=1.0, replay_window=8, attach=True, confirm=False, **options):
        self.sim = sim
        identity = provision(tmp_path / "identity", host="127.0.0.1", port=sim.provision_port,
                             ca_file=sim.ca_file, client_name="delivery")
        self.client = AgentClient(identity, host="127.0.0.1", port=sim.api_port, ca_file=sim.ca_file,
                                  timeout=5.0, backoff=Backoff(initial=0.05, maximum=0.3),
                                  on_connection_change=self._connection)
        self.registry = Registry(tmp_path / "registry.json")
        self.outbox = Outbox(tmp_path / "outbox.sqlite", commit_interval=0.2)
        self.delivery = Delivery(self.outbox, ack_window=ack_window, replay_window=replay_window, confirm=confirm,
                                 **options)
        self.routes = None
        self._attach = attach
        self.client.start()
        assert self.client.wait_connected(10)
        reconcile(self.client, self.registry, [(s, {"temperature": UNITS["°C"].definition("temperature")})
                                               for s in SENSORS])
        self.routes = self.registry.routes()
        self.delivery.start()
        if attach:
            self.delivery.attach(self.client, self.routes)
        self.next_ts = int(time.time() * 1000)
        self.sent: list[Reading] = []

    def _connection(self, up):
        # paho's thread: attach/detach only queue an item, as the daemon's control thread would.
        if self.routes is None or not self._attach:
            return
        if up:
            self.delivery.attach(self.client, self.routes)
        else:
            self.delivery.detach()

    def submit(self, count, sensors=SENSORS):
        for _ in range(count):
            for sensor in sensors:
                self.next_ts += 10
                reading = Reading(sensor, self.next_ts, {"temperature": round(self.next_ts % 100000 / 1000, 3)})
                self.sent.append(reading)
                self.delivery.submit(reading)

    def arrived(self):
        """sensor -> [(timestamp, value)] by first arrival, duplicates left out."""
        names = {r.sensor_id: name for name, r in self.routes.items()}
        out = {s: [] for s in SENSORS}
        seen = set()
        for row in self.sim.store.values(self.client.client_id):
            key = (row["sensor_id"], row["timestamp_ms"])
            if key not in seen:
                seen.add(key)
                out[names[row["sensor_id"]]].append((row["timestamp_ms"], row["value"]))
        return out

    def expected(self):
        out = {s: [] for s in SENSORS}
        for r in self.sent:
            out[r.sensor].append((r.timestamp_ms, r.values["temperature"]))
        return out

    def wait_all_arrived(self, timeout=20, runs=None):
        """Wait until every reading submitted has arrived, each in the order of its run.

        *runs* splits :attr:`sent` into the stretches whose order must hold (a backlog, the readings
        taken since it): readings of different runs may arrive interleaved.  By default all one run.
        """
        want = sum(len(v) for v in self.expected().values())
        wait_for(lambda: sum(len(v) for v in self.arrived().values()) >= want, timeout, f"{want} readings")
        arrived, expected = self.arrived(), self.expected()
        assert {s: sorted(v) for s, v in arrived.items()} == {s: sorted(v) for s, v in expected.items()}
        for run in runs or [self.sent]:
            for sensor in SENSORS:
                stamps = [r.timestamp_ms for r in run if r.sensor == sensor]
                members = set(stamps)
                assert [ts for ts, _ in arrived[sensor] if ts in members] == stamps, f"{sensor}: a run out of order"

    def close(self):
        self.delivery.stop(drain_timeout=0.5)
        self.client.stop()
        self.outbox.close()


@pytest.fixture
def rig_factory(sim, tmp_path):
    rigs = []

    def make(**kwargs):
        rigs.append(Rig(sim, tmp_path, **kwargs))
        return rigs[-1]

    yield make
    for rig in rigs:
        if rig.sim.broker.pid:
            os.kill(rig.sim.broker.pid, signal.SIGCONT)
        rig.close()


def test_live_readings_arrive_with_their_timestamps_without_touching_the_outbox(rig_factory):
    rig = rig_factory()
    wait_for(lambda: rig.delivery.mode is LIVE, 5, "live mode")
    rig.submit(100)
    rig.wait_all_arrived()
    assert rig.delivery.spilled == 0
    assert rig.outbox.stats().depth == 0
    wait_for(lambda: rig.delivery.in_flight == 0, 5, "all acknowledged")
    assert rig.delivery.delivered == 200


def test_every_reading_of_an_outage_arrives_afterwards_in_order(rig_factory, sim):
    rig = rig_factory()
    wait_for(lambda: rig.delivery.mode is LIVE, 5, "live mode")
    rig.submit(20)
    sim.stop_broker()
    wait_for(lambda: rig.delivery.mode is OFFLINE, 5, "offline mode")
    rig.submit(150)
    wait_for(lambda: rig.outbox.stats().depth >= 300, 5, "the gap buffered in the outbox")
    sim.start_broker()
    backlog = list(rig.sent)
    rig.submit(20)
    rig.wait_all_arrived(runs=[backlog, rig.sent[len(backlog):]])
    wait_for(lambda: rig.outbox.stats().depth == 0, 5, "an empty outbox")
    wait_for(lambda: rig.delivery.mode is LIVE, 5, "live mode again")


def test_readings_not_acknowledged_within_the_ack_window_are_spilled_then_delivered(rig_factory, sim):
    rig = rig_factory(ack_window=0.5)
    wait_for(lambda: rig.delivery.mode is LIVE, 5, "live mode")
    os.kill(sim.broker.pid, signal.SIGSTOP)  # connection up, no PUBACKs
    rig.submit(30)
    wait_for(lambda: rig.delivery.spilled >= 60, 5, "unacknowledged readings spilled")
    wait_for(lambda: rig.outbox.stats().depth >= 60, 5, "the spilled readings in the outbox")
    assert rig.delivery.mode is not LIVE
    rig.submit(10)  # published at once, beside the spilled ones (and not acknowledged either)
    os.kill(sim.broker.pid, signal.SIGCONT)
    rig.wait_all_arrived()
    wait_for(lambda: rig.outbox.stats().depth == 0, 10, "an empty outbox")


def test_replay_keeps_a_bounded_window_and_new_readings_go_out_beside_it(rig_factory, tmp_path):
    rig = rig_factory(replay_window=8, attach=False)
    backlog = []
    for i in range(300):
        sensor = SENSORS[i % 2]
        rig.next_ts += 10
        backlog.append(Reading(sensor, rig.next_ts, {"temperature": float(i)}))
    rig.outbox.append(backlog)
    rig.sent.extend(backlog)
    rig._attach = True
    most = 0
    done = threading.Event()

    def sample():
        nonlocal most
        while not done.is_set():
            most = max(most, rig.delivery.replaying)
            time.sleep(0.0005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    rig.delivery.attach(rig.client, rig.routes)
    rig.submit(40)  # while the backlog replays
    try:
        rig.wait_all_arrived(runs=[backlog, rig.sent[len(backlog):]])
    finally:
        done.set()
        sampler.join()
    assert 0 < most <= 8
    wait_for(lambda: rig.delivery.mode is LIVE, 5, "live mode after the backlog")


def test_stopping_keeps_unacknowledged_readings_in_the_outbox(rig_factory, sim, tmp_path):
    rig = rig_factory(ack_window=30.0)
    wait_for(lambda: rig.delivery.mode is LIVE, 5, "live mode")
    os.kill(sim.broker.pid, signal.SIGSTOP)
    rig.submit(25)
    wait_for(lambda: rig.delivery.in_flight == 50, 5, "50 readings in flight")
    assert rig.delivery.stop(drain_timeout=0.3)
    assert rig.outbox.stats().depth == 50
    entries = rig.outbox.peek(100)
    assert [e.reading for e in entries] == rig.sent


def copies(rig):
    """(sensor ID, timestamp) -> how many times the simulator stored that push."""
    counts = {}
    for row in rig.sim.store.values(rig.client.client_id):
        key = (row["sensor_id"], row["timestamp_ms"])
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_unconfirmed_readings_are_sent_again_only_when_the_agent_stopped_answering(rig_factory):
    rig = rig_factory(confirm=True, ack_window=5.0)
    wait_for(lambda: rig.delivery.mode is LIVE, 5, "live mode")
    rig.submit(10)
    rig.wait_all_arrived()
    wait_for(lambda: rig.delivery.unconfirmed == 20, 5, "20 acknowledged, unconfirmed readings")
    # The agent did not answer a ping: everything since the last answer goes again, in order.
    rig.delivery.detach()
    wait_for(lambda: rig.delivery.mode is OFFLINE, 5, "offline mode")
    wait_for(lambda: rig.outbox.stats().depth == 20, 5, "the unconfirmed readings back in the outbox")
    assert [e.reading for e in rig.outbox.peek(100)] == rig.sent
    rig.delivery.attach(rig.client, rig.routes)
    wait_for(lambda: len(copies(rig)) == 20 and set(copies(rig).values()) == {2}, 10,
             "every reading stored a second time")

    # An answered ping confirms: nothing is kept any more.
    wait_for(lambda: rig.delivery.unconfirmed == 20 and rig.delivery.in_flight == 0, 5, "the resent acknowledged")
    rig.delivery.confirm(rig.delivery.delivered)
    wait_for(lambda: rig.delivery.unconfirmed == 0, 5, "confirmation")
    wait_for(lambda: rig.outbox.stats().depth == 0, 5, "confirmed replays removed from the outbox")

    # A connection that merely drops proves nothing either: the broker may have acknowledged
    # what the agent never read.  The unconfirmed readings are sent again after the reconnect.
    rig.submit(5)
    wait_for(lambda: rig.delivery.unconfirmed == 10, 5, "10 more acknowledged")
    rig.delivery.detach()
    wait_for(lambda: rig.delivery.mode is OFFLINE, 5, "offline mode")
    wait_for(lambda: rig.outbox.stats().depth == 10, 5, "the unconfirmed readings back in the outbox")
    assert [e.reading for e in rig.outbox.peek(100)] == rig.sent[-10:]
    rig.delivery.attach(rig.client, rig.routes)
    wait_for(lambda: sum(n == 2 for n in copies(rig).values()) == 30, 10, "the last 10 stored a second time")
    rig.delivery.confirm(rig.delivery.delivered)
    wait_for(lambda: rig.outbox.stats().depth == 0 and rig.delivery.unconfirmed == 0, 5, "settled by the answer")


def test_a_replay_waits_for_the_agent_to_confirm_what_it_has_read(rig_factory):
    rig = rig_factory(confirm=True, replay_window=16, replay_credit=128, attach=False)
    asked = []
    rig.delivery.on_confirm_wanted = lambda: asked.append(rig.delivery.delivered)
    rig.next_ts -= 1_000_000
    backlog = []
    for i in range(1000):
        rig.next_ts += 10
        backlog.append(Reading(SENSORS[i % 2], rig.next_ts, {"temperature": float(i)}))
    rig.outbox.append(backlog)
    rig.sent.extend(backlog)
    rig._attach = True
    rig.delivery.attach(rig.client, rig.routes)
    wait_for(lambda: rig.delivery.delivered == 128 and rig.delivery.in_flight == 0, 10,
             "the replay to stop at the credit")
    assert asked, "the owner was asked for a confirmation"
    assert rig.delivery.unconfirmed == 128
    while rig.delivery.delivered < 1000:
        mark = rig.delivery.delivered
        rig.delivery.confirm(mark)
        wait_for(lambda: rig.delivery.delivered > mark or rig.delivery.delivered >= 1000, 10, "the replay to go on")
        assert rig.delivery.unconfirmed <= 128
    rig.wait_all_arrived()


def test_the_tail_of_a_short_replay_asks_for_its_confirmation_at_once(rig_factory):
    """A backlog far below the credit must not wait for the owner's next periodic ping to leave the outbox."""
    rig = rig_factory(confirm=True, replay_window=16, replay_credit=512, attach=False)
    asked = []
    rig.delivery.on_confirm_wanted = lambda: asked.append(rig.delivery.delivered)
    rig.next_ts -= 1_000_000
    backlog = [Reading(SENSORS[i % 2], rig.next_ts + 10 * i, {"temperature": float(i)}) for i in range(20)]
    rig.outbox.append(backlog)
    rig.sent.extend(backlog)
    rig._attach = True
    rig.delivery.attach(rig.client, rig.routes)
    wait_for(lambda: rig.delivery.delivered == 20 and asked, 10, "the owner to be asked for a confirmation")
    rig.delivery.confirm(rig.delivery.delivered)
    wait_for(lambda: rig.outbox.stats().depth == 0, 5, "the confirmed backlog removed from the outbox")
    rig.wait_all_arrived()


def test_readings_of_a_sensor_not_set_up_yet_wait_in_the_outbox_in_order(rig_factory):
    rig = rig_factory(attach=False)
    partial = {"a": rig.routes["a"]}
    rig.delivery.attach(rig.client, partial, waiting={"b"})
    wait_for(lambda: rig.delivery.mode is LIVE, 5, "live mode for the sensor that is set up")
    rig.submit(30)
    wait_for(lambda: len(rig.arrived()["a"]) == 30, 10, "sensor a delivered")
    assert rig.arrived()["b"] == []
    wait_for(lambda: rig.outbox.stats().depth == 30, 5, "sensor b's readings kept in the outbox")
    assert rig.delivery.unroutable == 0
    rig.delivery.attach(rig.client, rig.routes)  # b is set up now
    held = list(rig.sent)
    rig.submit(5)
    rig.wait_all_arrived(runs=[held, rig.sent[len(held):]])
    assert len(rig.arrived()["b"]) == 35


def old_backlog(rig, count):
    """*count* readings in the outbox, taken before anything the rig submits."""
    rig.next_ts -= 1_000_000
    backlog = [Reading(SENSORS[i % 2], rig.next_ts + 10 * i, {"temperature": float(i)}) for i in range(count)]
    rig.next_ts += 10 * count
    rig.outbox.append(backlog)
    rig.sent.extend(backlog)
    return backlog


def test_new_readings_reach_the_agent_while_a_replay_waits(rig_factory):
    """However long a backlog takes, the newest readings are not held up behind it: here the replay
    has used its credit and waits for a confirmation that does not come."""
    rig = rig_factory(confirm=True, replay_window=16, replay_credit=64, attach=False)
    backlog = old_backlog(rig, 400)
    rig._attach = True
    rig.delivery.attach(rig.client, rig.routes)
    wait_for(lambda: rig.delivery.delivered == 64 and rig.delivery.in_flight == 0, 10,
             "the replay to stop at the credit")
    rig.submit(10)
    fresh = rig.sent[len(backlog):]
    wait_for(lambda: sum(len(v) for v in rig.arrived().values()) == 64 + len(fresh), 10, "the new readings")
    arrived = {(name, ts) for name, stamps in rig.arrived().items() for ts, _ in stamps}
    assert {(r.sensor, r.timestamp_ms) for r in fresh} <= arrived
    assert rig.outbox.stats().depth == 400, "the backlog is still waiting"
    assert rig.delivery.mode is not LIVE
    while rig.outbox.stats().depth:
        rig.delivery.confirm(rig.delivery.delivered)
        time.sleep(0.02)
    rig.wait_all_arrived(runs=[backlog, fresh])


def test_the_agents_answers_to_pushes_pace_a_replay_without_pings(rig_factory):
    """With the client's push answers wired in, the credit refills as the agent answers each push."""
    rig = rig_factory(confirm=True, replay_window=16, replay_credit=64, attach=False)
    rig.client.on_push_answered = rig.delivery.push_answered
    asked = []
    rig.delivery.on_confirm_wanted = lambda: asked.append(rig.delivery.delivered)
    backlog = old_backlog(rig, 1000)
    rig._attach = True
    rig.delivery.attach(rig.client, rig.routes)
    rig.submit(20)
    rig.wait_all_arrived(runs=[backlog, rig.sent[len(backlog):]])
    wait_for(lambda: rig.outbox.stats().depth == 0, 10, "the answered backlog removed from the outbox")
    wait_for(lambda: rig.delivery.unconfirmed == 0, 5, "every live reading answered too")
    assert asked, "the owner is still asked for pings (an agent may not answer pushes)"
    assert set(copies(rig).values()) == {1}, "nothing was sent twice"


def test_answers_left_out_by_the_agent_leave_those_readings_to_the_next_ping(rig_factory):
    """Only as many pushes as the agent answered are retired; the rest wait for a ping's answer."""
    rig = rig_factory(confirm=True, ack_window=5.0)
    wait_for(lambda: rig.delivery.mode is LIVE, 5, "live mode")
    answered = []

    def every_other(counts, sensor_id, n):
        answered.append(n)
        if n % 2 == 0:
            rig.delivery.push_answered(counts, sensor_id, n // 2)

    rig.client.on_push_answered = every_other
    rig.submit(10)
    rig.wait_all_arrived()
    wait_for(lambda: len(answered) == 20, 5, "the agent's answers")
    wait_for(lambda: rig.delivery.unconfirmed == 10, 5, "half of them retired")
    rig.delivery.confirm(rig.delivery.delivered)
    wait_for(lambda: rig.delivery.unconfirmed == 0, 5, "the ping to retire the rest")
