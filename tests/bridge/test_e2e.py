"""End to end: a real ``pibridge run`` subprocess, the simulator's Mosquitto, signals and kill -9."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from pibridge.outbox import Outbox, read_stats
from pibridge.readings import Reading

from daemon_support import Daemon, env, wait_for


def mock(name, interval, metrics=("temperature", "humidity"), **options):
    return {"name": name, "driver": "mock", "interval": interval, "metrics": list(metrics), **options}


SENSORS = [mock("greenhouse", 0.2, seed=1), mock("cellar", 0.25, ["pressure"], seed=2)]


@pytest.fixture
def daemons(sim, tmp_path):
    made = []

    def make(sensors=SENSORS, **kwargs):
        made.append(Daemon(tmp_path / f"d{len(made)}", sim, sensors, **kwargs))
        return made[-1]

    yield make
    if sim.broker_running and sim.broker.pid:
        os.kill(sim.broker.pid, signal.SIGCONT)
    for d in made:
        d.stop_quietly()


def outbox_stats(daemon):
    return read_stats(daemon.storage / "outbox.db")


def assert_no_duplicates(sim, client_id, expected):
    """The agent holds each configured sensor once, each with its metrics once."""
    sensors = sim.store.sensors(client_id)
    names = sorted(s["name"] for s in sensors)
    assert names == sorted(expected), names
    for s in sensors:
        metric_names = sorted(m["name"] for m in sim.store.metrics(client_id, s["sensor_id"]))
        assert metric_names == sorted(expected[s["name"]]), (s["name"], metric_names)


EXPECTED = {"greenhouse": ["humidity", "temperature"], "cellar": ["pressure"]}


def test_sigterm_exits_0_and_loses_nothing(daemons, sim):
    d = daemons().start()
    cid = d.client_id()
    sim.store.wait_for_values(cid, 10, timeout=20)
    os.kill(sim.broker.pid, signal.SIGSTOP)  # PUBACKs stop: readings pile up unacknowledged
    wait_for(lambda: d.alive() and (s := outbox_stats(d)) and s.depth >= 5, 20, "readings spilled to the outbox")
    assert d.terminate() == 0
    final = d.state()
    reads = {name: s["reads"] for name, s in final["sensors"].items()}
    assert all(n > 0 for n in reads.values())
    assert "stopped;" in d.log_text()
    os.kill(sim.broker.pid, signal.SIGCONT)

    restart = time.time() * 1000
    d.start()

    def before_restart():
        stored = d.stored(cid)
        return {name: [t for t in stored.get(name, []) if t < restart] for name in reads}

    wait_for(lambda: d.alive() and all(len(before_restart()[n]) >= reads[n] for n in reads), 30,
             "every reading of the first run")
    for name, stamps in before_restart().items():
        assert len(stamps) == reads[name], name
        assert stamps == sorted(stamps), f"{name}: readings arrived out of order"
    assert_no_duplicates(sim, cid, EXPECTED)
    d.wait_running()
    assert d.terminate() == 0


def test_outage_gap_arrives_in_order_and_kill_9_loses_only_uncommitted(daemons, sim):
    d = daemons().start()
    cid = d.client_id()
    sim.store.wait_for_values(cid, 10, timeout=20)
    outage = time.time() * 1000
    sim.stop_broker()
    wait_for(lambda: d.alive() and (s := outbox_stats(d)) and s.depth >= 20, 20, "20 readings buffered on disk")
    d.kill()
    # What kill -9 left on disk: every reading of it must reach the agent after the restart.
    left = Outbox(d.storage / "outbox.db", auto_commit=False)
    buffered = [(e.reading.sensor, e.reading.timestamp_ms) for e in left.peek(100_000)]
    left.close()
    assert len(buffered) >= 20
    sim.start_broker()
    d.start()

    def missing():
        stored = d.stored(cid)
        return [(name, ts) for name, ts in buffered if ts not in set(stored.get(name, []))]

    wait_for(lambda: d.alive() and not missing(), 30, f"the {len(buffered)} readings buffered before kill -9")
    last = {name: max(ts for n, ts in buffered if n == name) for name in EXPECTED}
    for name, stamps in d.stored(cid).items():
        gap = [t for t in stamps if outage - 300 <= t <= last[name]]
        assert gap == sorted(gap), f"{name}: the gap arrived out of order"
        steps = [b - a for a, b in zip(gap, gap[1:])]
        interval = 200 if name == "greenhouse" else 250
        assert gap and max(steps) < 2 * interval, f"{name}: a reading of the gap is missing ({steps})"
    assert_no_duplicates(sim, cid, EXPECTED)
    d.wait_running()
    assert d.terminate() == 0


def test_a_full_outbox_drops_the_oldest_and_status_reports_it(daemons, sim, tmp_path):
    fast = [mock(f"fast{i}", 0.01, ["temperature"], seed=i) for i in range(3)]
    d = daemons(fast, storage={"outbox_max_bytes": "1 MiB"})
    first = int(time.time() * 1000) - 3_600_000
    prefill = Outbox(d.storage / "outbox.db", max_bytes=2**20, auto_commit=False)
    count = 0
    while prefill.stats().bytes < 2**20 - 40 * 1024:  # nearly full, nothing dropped yet
        prefill.append(Reading("fast0", first + count + i, {"temperature": 20.0}) for i in range(500))
        prefill.commit()
        count += 500
    assert prefill.stats().dropped == 0
    prefill.close()
    sim.stop_broker()  # the agent is unreachable from the start: nothing is delivered
    d.start()
    wait_for(lambda: d.alive() and outbox_stats(d).dropped > 0, 60, "the outbox dropping its oldest readings")
    wait_for(lambda: (s := d.state()) and s["sensors"]["fast0"]["reads"] > 0, 20, "a state file with readings")
    result = d.status()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "UNREACHABLE" in result.stdout
    stats = outbox_stats(d)
    assert stats.oldest_timestamp_ms > first
    assert f"{stats.dropped} dropped" in result.stdout or "dropped (max_bytes" in result.stdout, result.stdout
    assert "max_bytes" in result.stdout
    assert d.terminate() == 0
    assert read_stats(d.storage / "outbox.db").dropped >= stats.dropped


def test_status_of_a_running_bridge(daemons, sim):
    d = daemons().start()
    cid = d.client_id()
    sim.store.wait_for_values(cid, 10, timeout=20)
    wait_for(lambda: (s := d.state()) and s["agent"]["connected"] and s["sensors"]["cellar"]["reads"], 20,
             "a connected state")
    result = d.status()
    assert result.returncode == 0, result.stdout + result.stderr
    assert cid in result.stdout
    assert "reachable at 127.0.0.1" in result.stdout
    assert "greenhouse" in result.stdout and "temperature=" in result.stdout
    assert "cellar" in result.stdout and "pressure=" in result.stdout
    assert d.terminate() == 0
    after = d.status()
    assert after.returncode == 1
    assert "NOT RUNNING" in after.stdout and "was online" in after.stdout


def test_under_systemd_the_state_file_lives_in_the_runtime_directory(daemons, sim, tmp_path):
    runtime = tmp_path / "run"
    runtime.mkdir()
    d = daemons().start(RUNTIME_DIRECTORY=str(runtime))
    state = wait_for(lambda: d.alive() and (s := _json(runtime / "state.json")) and s["agent"]["connected"] and s,
                     20, "a connected state in the runtime directory")
    assert state["pid"] == d.proc.pid
    assert not (d.storage / "state.json").exists()
    result = subprocess.run([sys.executable, "-m", "pibridge.cli", "status", "--config", str(d.config)],
                            capture_output=True, text=True, timeout=60, env={**env(), "RUNTIME_DIRECTORY": str(runtime)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert state["client_id"] in result.stdout and f"running (pid {d.proc.pid}, state written " in result.stdout
    assert d.terminate() == 0


def _json(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@pytest.mark.parametrize("reprovision", [True, False])
def test_a_client_deleted_on_the_agent(daemons, sim, tmp_path, reprovision):
    from pibridge.agent.client import AgentClient
    from pibridge.agent.identity import load_identity

    d = daemons(agent={"reprovision": reprovision}).start()
    cid = d.client_id()
    sim.store.wait_for_values(cid, 5, timeout=20)
    # Delete it the way the TeamViewer side would: with a copy of the identity, leaving the daemon's files alone.
    copy = tmp_path / "copy-of-identity"
    shutil.copytree(d.storage / "identity", copy)
    identity = load_identity(copy)
    with AgentClient(identity, host="127.0.0.1", port=sim.api_port, ca_file=sim.ca_file) as other:
        assert other.wait_connected(10)
        other.delete_client()
    if reprovision:
        new = wait_for(lambda: d.alive() and (s := d.state()) and s["client_id"] != cid and s["client_id"], 40,
                       "a new client ID")
        sim.store.wait_for_values(new, 30, timeout=30)
        assert_no_duplicates(sim, new, EXPECTED)
        assert "getting a new certificate" in d.log_text()
        # Pushes the broker acknowledged but the agent refused (deleted client) were sent again:
        # no gap across the change of identity.
        old_stored, new_stored = d.stored(cid), d.stored(new)
        for name, interval in (("greenhouse", 200), ("cellar", 250)):
            stamps = sorted(set(old_stored.get(name, [])) | set(new_stored.get(name, [])))
            steps = [b - a for a, b in zip(stamps, stamps[1:])]
            assert max(steps) < 2 * interval, f"{name}: readings lost across the new identity ({max(steps)} ms)"
    else:
        d.alive()
        wait_for(lambda: "set reprovision = true" in d.log_text(), 40, "advice on what to do")
        wait_for(lambda: (s := d.state()) and s["agent"]["revoked"], 20, "the state file saying so")
        result = d.status()
        assert "REFUSED" in result.stdout
        wait_for(lambda: outbox_stats(d) and outbox_stats(d).depth > 0, 20, "readings kept in the outbox")
    assert d.terminate() == 0
