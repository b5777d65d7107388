"""The daemon (in-process) against the simulator in every way an agent may answer.

``dialect_sim`` runs each test with plain answers as JSON strings and as bare
text, in the reference's dialect and the vendor SDKs' (tests/support/sim.py).
The daemon must deliver every reading, carry out a metric rename from the
config, and report a sensor offline and online again, in all of them.
"""

from __future__ import annotations

import threading
import time

import pytest

from daemon_support import pull_the_wire, wait_for
from pibridge.bridge.config import parse_config
from pibridge.bridge.daemon import Bridge
from pibridge.outbox import Outbox
from tests.support.sim import dialect_sim  # noqa: F401  (fixture)


def config_for(sim, storage, metric_name: str):
    return parse_config(f"""
[agent]
host = "127.0.0.1"
provision_port = {sim.provision_port}
api_port = {sim.api_port}
ca_file = "{sim.ca_file}"
client_name = "dialects"
timeout = 2.0
[storage]
dir = "{storage}"
ack_window = 1.0
[[sensors]]
name = "loose"
driver = "mock"
interval = 0.05
offline_after = 3
metrics = ["temperature"]
[sensors.metric.temperature]
name = "{metric_name}"
[[sensors]]
name = "steady"
driver = "mock"
interval = 0.1
metrics = ["humidity"]
""")


@pytest.fixture
def run_bridge(tmp_path):
    running = []

    def start(config) -> Bridge:
        bridge = Bridge(config)
        stop = threading.Event()
        bridge.start()
        thread = threading.Thread(target=bridge.run, args=(stop,))
        thread.start()
        running.append((bridge, stop, thread))
        return bridge

    def stop_all() -> None:
        while running:
            bridge, stop, thread = running.pop()
            stop.set()
            bridge.wake()
            thread.join(10)
            bridge.close()

    start.stop_all = stop_all
    yield start
    stop_all()


def test_delivery_rename_and_sensor_state_in_every_dialect(dialect_sim, run_bridge, tmp_path):
    sim, storage = dialect_sim, tmp_path / "storage"
    bridge = run_bridge(config_for(sim, storage, "temperature"))
    wait_for(lambda: bridge.connected and bridge.delivery.mode == "live", 20, "a live connection")
    cid = bridge.client_id
    sim.store.wait_for_values(cid, 10, timeout=10)

    # Restart with the metric renamed in the config: reconciliation renames it on the agent.
    run_bridge.stop_all()
    bridge = run_bridge(config_for(sim, storage, "air temperature"))
    loose_id = bridge.registry.sensor("loose").sensor_id
    wait_for(lambda: [m["name"] for m in sim.store.metrics(cid, loose_id)] == ["air temperature"], 20,
             "the metric renamed on the agent")
    wait_for(lambda: bridge.delivery.mode == "live", 20, "live delivery after the rename")
    assert sorted(s["name"] for s in sim.store.sensors(cid)) == ["loose", "steady"]

    # The sensor offline on the agent while its device fails, online again afterwards.
    unplugged = pull_the_wire(bridge, "loose")
    unplugged.set()
    wait_for(lambda: sim.store.sensor(cid, loose_id)["state"] == 1, 10, "sensor 'loose' offline on the agent")
    unplugged.clear()
    wait_for(lambda: sim.store.sensor(cid, loose_id)["state"] == 2, 10, "sensor 'loose' online again")

    # Every reading taken since the restart reached the agent; none was refused or dropped on the way.
    reads = {r.name: r.health.reads for r in bridge.readers}
    run_bridge.stop_all()
    state = bridge.snapshot()
    assert state["delivery"]["refused"] == 0 and state["delivery"]["unroutable"] == 0
    outbox = Outbox(storage / "outbox.db")
    try:
        assert outbox.stats().depth == 0, "readings left undelivered"
    finally:
        outbox.close()
    ids = {name: bridge.registry.sensor(name).sensor_id for name in reads}
    for name, count in reads.items():
        stored = {row["timestamp_ms"] for row in sim.store.values(cid, ids[name])}
        assert len(stored) >= count > 0, (name, len(stored), count)


def test_a_rename_the_agent_never_answers_holds_up_no_reading(sim, run_bridge, tmp_path, monkeypatch):
    from pibridge.bridge import daemon

    monkeypatch.setattr(daemon, "RECONCILE_RETRY", 0.2)
    storage = tmp_path / "storage"
    bridge = run_bridge(config_for(sim, storage, "temperature"))
    wait_for(lambda: bridge.connected and bridge.delivery.mode == "live", 20, "a live connection")
    cid, loose_id = bridge.client_id, bridge.registry.sensor("loose").sensor_id
    run_bridge.stop_all()
    before = len(sim.store.values(cid, loose_id))

    sim.faults.ignored = frozenset({"update_metrics"})
    bridge = run_bridge(config_for(sim, storage, "air temperature"))
    wait_for(lambda: bridge.connected, 20, "the connection")
    connected = time.monotonic()
    wait_for(lambda: len(sim.store.values(cid, loose_id)) > before + 5, 10, "new readings while the rename hangs")
    # The readings came within the one timeout the unanswered rename takes, not after it.
    assert time.monotonic() - connected < bridge.config.agent.timeout
    assert [m["name"] for m in sim.store.metrics(cid, loose_id)] == ["temperature"]

    sim.faults.ignored = frozenset()
    wait_for(lambda: [m["name"] for m in sim.store.metrics(cid, loose_id)] == ["air temperature"], 20,
             "the rename tried again once the agent answers")
