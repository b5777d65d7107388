"""``systemctl reload pibridge`` end to end: a real ``pibridge run``, real SIGHUPs, the simulator's Mosquitto.

Every reading is accounted for: what the daemon says it read (its state
file, and the log line of each sensor it removed) must equal what reached the
simulator plus what is left in the outbox after the stop, per sensor.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

import pytest

from pibridge.bridge.daemon import PING_INTERVAL
from pibridge.outbox import Outbox

from daemon_support import Daemon, _toml, env, pibridge, wait_for
from tests.support.ordering import assert_two_runs


def mock(name, interval, metrics=("temperature",), metric=None, **options):
    sensor = {"name": name, "driver": "mock", "interval": interval, "metrics": list(metrics), **options}
    if metric:
        sensor["metric"] = metric
    return sensor


def config_text(head: str, sensors: list[dict], extra: str = "") -> str:
    lines = [head.rstrip(), extra]
    for sensor in sensors:
        lines += ["", "[[sensors]]"]
        lines += [f"{k} = {_toml(v)}" for k, v in sensor.items() if k != "metric"]
        for quantity, settings in sensor.get("metric", {}).items():
            lines.append(f"[sensors.metric.{quantity}]")
            lines += [f"{k} = {_toml(v)}" for k, v in settings.items()]
    return "\n".join(lines) + "\n"


class Reloads:
    """Rewrites a daemon's config and sends SIGHUP, waiting for the daemon to say it is done."""

    def __init__(self, daemon: Daemon):
        self.daemon = daemon
        self.head = daemon.config.read_text().split("\n[[sensors]]")[0]
        self.count = 0

    def write(self, sensors: list[dict], extra: str = "") -> None:
        self.daemon.config.write_text(config_text(self.head, sensors, extra))

    def __call__(self, sensors: list[dict], extra: str = "", outcome: str = "reload done:") -> str:
        self.write(sensors, extra)
        self.count += 1
        os.kill(self.daemon.proc.pid, signal.SIGHUP)
        wait_for(lambda: self.daemon.alive() and self._finished() >= self.count, 20, f"reload #{self.count}")
        text = self.daemon.log_text()
        last = text.split("reloading the config file")[-1]
        assert outcome in last, last
        return last

    def _finished(self) -> int:
        text = self.daemon.log_text()
        return text.count("reload done:") + text.count("reload refused:")


def tasks(pid: int) -> set[int]:
    return {int(t) for t in os.listdir(f"/proc/{pid}/task")}


def sensor_ids(sim, cid) -> dict[str, str]:
    return {s["name"]: s["sensor_id"] for s in sim.store.sensors(cid)}


def stored_after(daemon, cid, name, since_ms) -> list[int]:
    return [t for t in daemon.stored(cid).get(name, []) if t > since_ms]


def account(daemon: Daemon, sim, cid: str, only: list[str] | None = None,
            outage: tuple[float, float] | None = None) -> dict[str, int]:
    """After the stop: per sensor, what was read == what was stored + what waits in the outbox.

    Readings taken around an *outage* (ms, from before the connection dropped until it was noticed)
    may arrive twice: the broker had them when the connection went (docs/delivery.md).
    """
    state = daemon.state()
    read = collections.Counter({name: s["reads"] for name, s in state["sensors"].items()})
    for name, reads in re.findall(r"reload: sensor '(\w+)' removed; its reader stopped after (\d+) reads",
                                  daemon.log_text()):
        read[name] += int(reads)
    if only is not None:
        read = collections.Counter({name: read[name] for name in only})
    left = Outbox(daemon.storage / "outbox.db", auto_commit=False)
    waiting = collections.defaultdict(set)
    for entry in left.peek(1_000_000):
        waiting[entry.reading.sensor].add(entry.reading.timestamp_ms)
    left.close()
    stored = daemon.stored(cid)
    for name, count in read.items():
        arrived = stored.get(name, [])
        assert_two_runs(list(dict.fromkeys(arrived)), name)
        kept = set(arrived) | waiting[name]
        assert len(kept) == count, (f"{name}: the daemon read {count} readings, the agent has {len(arrived)} "
                                    f"and the outbox {len(waiting[name])} more")
    # A reading reaches the agent twice only after it was spilled to the outbox (docs/delivery.md).
    rows = collections.Counter((r["sensor_id"], r["metric_id"], r["timestamp_ms"]) for r in sim.store.values(cid)
                               if only is None or r["sensor_id"] in {sensor_ids(sim, cid)[n] for n in only})
    twice = {(s, t) for (s, _, t), n in rows.items() if n > 1 and not (outage and outage[0] <= t <= outage[1])}
    assert len(twice) <= state["delivery"]["spilled"], (len(twice), state["delivery"])
    return dict(read)


@pytest.fixture
def daemon(sim, tmp_path):
    made = []

    def make(sensors):
        made.append(Daemon(tmp_path / "d", sim, sensors, name="reload"))
        return made[-1]

    yield make
    for d in made:
        d.stop_quietly()


def test_reloads_under_load_lose_and_duplicate_nothing(daemon, sim):
    # 20 readings a second each: every reload finds readings queued, in flight and being taken.
    steady = mock("steady", 0.05, seed=1)
    renamed = mock("renamed", 0.05, ["temperature", "humidity"], seed=2)
    retimed = mock("retimed", 0.1, ["pressure"], seed=3)
    leaving = mock("leaving", 0.05, seed=4)
    newcomer = mock("newcomer", 0.05, ["pressure"], seed=5)
    d = daemon([steady, renamed, retimed, leaving]).start()
    cid = d.client_id()
    wait_for(lambda: d.alive() and len(d.stored(cid)) == 4, 20, "values of all four sensors")
    threads_at_start = tasks(d.proc.pid)
    reload = Reloads(d)

    # Added.
    reload([steady, renamed, retimed, leaving, newcomer])
    wait_for(lambda: "newcomer" in d.stored(cid), 10, "the new sensor's values")

    # Removed: its reader stops, and what it read is still delivered.
    log = reload([steady, renamed, retimed, newcomer])
    assert "sensor 'leaving' removed" in log

    # A metric renamed: the same metric on the agent under its new name, values keep coming.
    renamed["metric"] = {"temperature": {"name": "air temperature"}}
    log = reload([steady, renamed, retimed, newcomer])
    assert "sensor 'renamed' changed (metric.temperature.name)" in log
    renamed_id = sensor_ids(sim, cid)["renamed"]
    names = sorted(m["name"] for m in sim.store.metrics(cid, renamed_id))
    assert names == ["air temperature", "humidity"], names
    since = time.time() * 1000
    wait_for(lambda: len(stored_after(d, cid, "renamed", since)) >= 3, 10, "values after the rename")

    # Re-timed: from 100 ms to the 250 ms grid.
    retimed["interval"] = 0.25
    log = reload([steady, renamed, retimed, newcomer])
    assert "sensor 'retimed' changed (interval)" in log
    since = time.time() * 1000
    stamps = wait_for(lambda: (s := stored_after(d, cid, "retimed", since)) and len(s) >= 6 and s, 10,
                      "values on the new interval")
    steps = [b - a for a, b in zip(stamps[1:], stamps[2:])]
    assert 200 <= statistics.median(steps) <= 300, steps

    # Invalid: refused with the messages `pibridge check` gives, nothing of it applied.
    broken = [mock("steady", "fast"), renamed, mock("retimed", 0.25, ["pressure"], seed=3, colour="red")]
    reload.write(broken)
    checked = pibridge("check", "--config", str(d.config))
    assert checked.returncode == 2, checked.stderr
    problems = [line.strip() for line in checked.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == 2, checked.stderr
    log = reload(broken, outcome="reload refused:")
    assert "has 2 problems; the running config stays" in log
    for problem in problems:
        assert problem in log, (problem, log)
    since = time.time() * 1000
    for name in ("steady", "newcomer"):
        wait_for(lambda: len(stored_after(d, cid, name, since)) >= 3, 10, f"{name} still delivering")

    # What needs a restart is named and left alone; the rest applies.
    log = reload([steady, renamed, retimed, newcomer], extra='[log]\nlevel = "warning"')
    assert "needs a restart" not in log and "--log-level debug stays" in log
    head = reload.head
    reload.head = head.replace('client_name = "reload"', 'client_name = "elsewhere"')
    log = reload([steady, renamed, retimed, newcomer])
    assert "[agent] client_name = 'elsewhere' (running with 'reload') needs a restart" in log
    reload.head = head

    # Twenty in a row, each adding or removing a sensor, renaming a metric and re-timing a sensor.
    flicker = mock("flicker", 0.05, ["humidity"], seed=6)
    for i in range(20):
        renamed["metric"] = {"temperature": {"name": f"air temperature {i}"}}
        retimed["interval"] = 0.2 if i % 2 else 0.25
        sensors = [steady, renamed, retimed, newcomer] + ([flicker] if i % 2 == 0 else [])
        since = time.time() * 1000
        log = reload(sensors)
        assert ("sensor 'flicker' added" if i % 2 == 0 else "sensor 'flicker' removed") in log
        # Each new reader delivers before the next reload replaces it.
        wait_for(lambda: len(stored_after(d, cid, "renamed", since)) >= 3, 10, f"renamed delivering after #{i}")
    names = sorted(m["name"] for m in sim.store.metrics(cid, renamed_id))
    assert names == ["air temperature 19", "humidity"], names
    since = time.time() * 1000
    for name in ("steady", "renamed", "retimed", "newcomer"):
        wait_for(lambda: len(stored_after(d, cid, name, since)) >= 2, 10, f"{name} delivering after 20 reloads")

    # The unchanged sensor kept its reader through all of it; changed ones got new ones each time.
    text = d.log_text()
    kept = set(re.findall(r"sensor 'steady' unchanged; its reader #(\d+) keeps its schedule", text))
    assert len(kept) == 1, kept
    fresh = re.findall(r"sensor 'renamed' has a new reader #(\d+)", text)
    assert len(fresh) == 21 and len(set(fresh)) == 21 and kept.isdisjoint(fresh)
    # Readers come and go, threads do not: the read pool's scheduler and workers served all of them.
    assert len(tasks(d.proc.pid)) <= len(threads_at_start) + 1, (threads_at_start, tasks(d.proc.pid))
    assert text.count("pibridge: connected to the agent at") == 1, "a reload must not reconnect"
    assert "Traceback" not in text

    assert d.terminate() == 0
    read = account(d, sim, cid)
    assert read.keys() == {"steady", "renamed", "retimed", "leaving", "newcomer", "flicker"}
    assert min(read.values()) > 0, read


def test_a_reload_while_the_agent_is_away_is_set_up_when_it_is_back(daemon, sim):
    steady = mock("steady", 0.1, seed=1)
    renamed = mock("renamed", 0.1, ["temperature", "humidity"], seed=2)
    d = daemon([steady, renamed]).start()
    cid = d.client_id()
    wait_for(lambda: d.alive() and len(d.stored(cid)) == 2, 20, "values of both sensors")
    reload = Reloads(d)
    # What the agent had not confirmed yet when the broker went is sent again after the reconnect
    # (docs/delivery.md: a ping answer retires readings, and pings go every PING_INTERVAL).
    outage_from = time.time() * 1000 - (PING_INTERVAL + 1) * 1000
    sim.stop_broker()
    wait_for(lambda: d.alive() and "lost the connection to the agent" in d.log_text(), 20, "the connection lost")
    renamed["metric"] = {"humidity": {"name": "relative humidity"}}
    newcomer = mock("newcomer", 0.1, ["pressure"], seed=5)
    reload([steady, renamed, newcomer])
    wait_for(lambda: (s := read_stats_of(d)) and s.depth >= 20, 20, "readings buffered meanwhile")
    sim.start_broker()
    since = time.time() * 1000
    wait_for(lambda: d.alive() and all(len(stored_after(d, cid, n, since)) >= 3 for n in ("renamed", "newcomer")),
             30, "the new set-up delivering")
    # Setting the sensors up again after the reconnect sends what was not confirmed yet once more:
    # duplicates are allowed up to here (at least once), losses nowhere.
    outage = (outage_from, time.time() * 1000)
    names = sorted(m["name"] for m in sim.store.metrics(cid, sensor_ids(sim, cid)["renamed"]))
    assert names == ["relative humidity", "temperature"], names
    assert d.terminate() == 0
    account(d, sim, cid, outage=outage)
    assert d.state()["delivery"]["unroutable"] == 0


def test_a_sensor_the_agent_refuses_to_set_up_waits_in_the_outbox(daemon, sim):
    from pibridge.agent.errors import ErrorCode

    steady = mock("steady", 0.1, seed=1)
    d = daemon([steady]).start()
    cid = d.client_id()
    wait_for(lambda: d.alive() and "steady" in d.stored(cid), 20, "values")
    reload = Reloads(d)
    sim.faults.error_code = ErrorCode.INTERNAL_ERROR
    late = mock("late", 0.1, ["pressure"], seed=7)
    log = reload([steady, late])
    assert "their readings wait in the outbox until it works" in log
    wait_for(lambda: (s := read_stats_of(d)) and s.depth >= 5, 20, "the refused sensor's readings buffered")
    assert "late" not in d.stored(cid)
    sim.faults.error_code = None
    wait_for(lambda: d.alive() and len(d.stored(cid).get("late", [])) >= 10, 30, "its readings after the set-up")
    assert d.terminate() == 0
    # The other sensor's pushes were refused while the fault lasted; this one was never pushed before its set-up.
    read = account(d, sim, cid, only=["late"])
    assert read["late"] >= 10
    assert d.state()["delivery"]["unroutable"] == 0


def read_stats_of(d: Daemon):
    from pibridge.outbox import read_stats

    return read_stats(d.storage / "outbox.db")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_reload_speaks_sd_notify_and_changes_the_log_level(tmp_path):
    """RELOADING=1 with MONOTONIC_USEC= before, READY=1 after (systemd's reload protocol), a bad file too."""
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(20)
    config = tmp_path / "config.toml"
    head = (f'[agent]\nhost = "127.0.0.1"\nprovision_port = {free_port()}\napi_port = {free_port()}\n'
            f'ca_file = "{tmp_path / "no-agent-ca.crt"}"\n[storage]\ndir = "{tmp_path / "state"}"\n')
    sensor = '[[sensors]]\nname = "demo"\ndriver = "mock"\ninterval = 0.5\n'
    config.write_text(head + '[log]\nlevel = "warning"\n' + sensor)
    log = tmp_path / "log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pibridge.cli", "run", "--config", str(config)],
                                env={**env(), "NOTIFY_SOCKET": str(tmp_path / "notify")}, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        def next_message() -> str:
            while True:
                message = notify.recv(4096).decode()
                if not message.startswith("STATUS="):
                    return message

        assert next_message() == "READY=1"
        for text, outcome in (('level = "debug"', "reload done:"), ("level = 7", "reload refused:")):
            config.write_text(head + f"[log]\n{text}\n" + sensor)
            before = time.monotonic_ns() // 1000
            proc.send_signal(signal.SIGHUP)
            reloading = next_message()
            assert next_message() == "READY=1"
            after = time.monotonic_ns() // 1000
            first, second = reloading.split("\n")
            assert first == "RELOADING=1"
            assert second.startswith("MONOTONIC_USEC=") and before <= int(second.split("=")[1]) <= after
            wait_for(lambda: outcome in log.read_text(), 10, outcome)
        text = log.read_text()
        # At warning level the start-up INFO lines were not logged; after the reload DEBUG ones are.
        assert "starting 1 sensors" not in text
        assert "sensor 'demo' unchanged; its reader #" in text
        assert "key 'log.level'" in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()
