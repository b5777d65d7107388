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

    def wait_all_arrived(self, timeout=20):
        want = sum(len(v) for v in self.expected().values())
        wait_for(lambda: sum(len(v) for v in self.arrived().values()) >= want, timeout, f"{want} readings")
        assert self.arrived() == self.expected()

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
    rig.submit(20)
    rig.wait_all_arrived()
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
    rig.submit(10)  # new readings queue behind the spilled ones
    os.kill(sim.broker.pid, signal.SIGCONT)
    rig.wait_all_arrived()
    wait_for(lambda: rig.outbox.stats().depth == 0, 10, "an empty outbox")


def test_replay_keeps_a_bounded_window_and_new_readings_queue_behind(rig_factory, tmp_path):
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
            most = max(most, rig.delivery.in_flight)
            time.sleep(0.0005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    rig.delivery.attach(rig.client, rig.routes)
    rig.submit(40)  # while the backlog replays
    try:
        rig.wait_all_arrived()
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
    rig.submit(5)
    rig.wait_all_arrived()
    b = [ts for ts, _ in rig.arrived()["b"]]
    assert b == sorted(b) and len(b) == 35
