"""The daemon in-process and its command line: sensor offline/online on the agent, logging, signals."""

from __future__ import annotations

import logging
import signal
import socket
import threading

import pytest

from daemon_support import Daemon, pibridge, pull_the_wire, wait_for
from pibridge.bridge.config import parse_config
from pibridge.bridge.daemon import Bridge
from pibridge.bridge.logs import JournalFormatter, setup_logging


def config_for(sim, storage, sensors: str):
    return parse_config(
        f"""
[agent]
host = "127.0.0.1"
provision_port = {sim.provision_port}
api_port = {sim.api_port}
ca_file = "{sim.ca_file}"
client_name = "inproc"
timeout = 3.0
[storage]
dir = "{storage}"
ack_window = 1.0
{sensors}
"""
    )


@pytest.fixture
def running(sim, tmp_path):
    bridges = []

    def run(sensors: str) -> Bridge:
        bridge = Bridge(config_for(sim, tmp_path / "storage", sensors))
        stop = threading.Event()
        bridge.start()
        thread = threading.Thread(target=bridge.run, args=(stop,))
        thread.start()
        bridges.append((bridge, stop, thread))
        return bridge

    yield run
    for bridge, stop, thread in bridges:
        stop.set()
        bridge.wake()
        thread.join(10)
        bridge.close()


def test_a_failing_device_marks_its_agent_sensor_offline_and_online_again(running, sim):
    bridge = running(
        '[[sensors]]\nname = "loose"\ndriver = "mock"\ninterval = 0.05\noffline_after = 3\n'
        'metrics = ["temperature"]\n'
        '[[sensors]]\nname = "steady"\ndriver = "mock"\ninterval = 0.1\nmetrics = ["humidity"]\n'
    )
    unplugged = pull_the_wire(bridge, "loose")
    wait_for(lambda: bridge.connected and bridge.delivery.mode == "live", 20, "a live connection")
    cid = bridge.client_id

    def state_of(name):
        return next((s["state"] for s in sim.store.sensors(cid) if s["name"] == name), None)

    unplugged.set()
    wait_for(lambda: state_of("loose") == 1, 10, "sensor 'loose' offline (state 1) on the agent")
    assert state_of("steady") != 1
    before = len(sim.store.values(cid))
    sim.store.wait_for_values(cid, before + 5, timeout=10)  # the healthy sensor keeps pushing
    unplugged.clear()
    wait_for(lambda: state_of("loose") == 2, 10, "sensor 'loose' online (state 2) again")


def test_the_journal_format_has_syslog_priorities_and_no_time():
    formatter = JournalFormatter()
    record = logging.LogRecord("pibridge.delivery", logging.WARNING, __file__, 1, "buffering %d", (3,), None)
    assert formatter.format(record) == "<4>pibridge.delivery: buffering 3"
    record = logging.LogRecord("pibridge", logging.ERROR, __file__, 1, "bad", (), None)
    assert formatter.format(record) == "<3>pibridge: bad"


def test_logging_switches_to_the_journal_format_under_systemd(monkeypatch):
    root = logging.getLogger()
    level = root.level

    def ours():
        handlers = [h for h in root.handlers if h.get_name() == "pibridge"]
        assert len(handlers) == 1
        return handlers[0]

    try:
        monkeypatch.setenv("JOURNAL_STREAM", "8:1234")
        setup_logging("info")
        assert isinstance(ours().formatter, JournalFormatter)
        monkeypatch.delenv("JOURNAL_STREAM")
        setup_logging("warning")
        assert not isinstance(ours().formatter, JournalFormatter)
        assert root.level == logging.WARNING
    finally:
        root.removeHandler(ours())
        root.setLevel(level)


def test_a_bad_config_stops_run_with_the_problem_and_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[sensors]]\nname = "x"\ndriver = "nosuchdriver"\ninterval = 1.0\n')
    result = pibridge("run", "--config", str(bad))
    assert result.returncode == 2
    assert str(bad) in result.stderr and "nosuchdriver" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_run_stops_cleanly_on_a_signal_even_without_an_agent(tmp_path, sim, signum):
    sim.stop_broker()  # never reachable: the daemon must start anyway and buffer
    d = Daemon(tmp_path, sim, [{"name": "a", "driver": "mock", "interval": 0.1, "metrics": ["temperature"]}])
    d.start()
    try:
        wait_for(lambda: d.alive() and (s := d.state()) and s["sensors"]["a"]["reads"] > 0 and s, 20,
                 "a state file with readings")
        d.proc.send_signal(signum)
        assert d.proc.wait(20) == 0
    finally:
        d.stop_quietly()
    log = d.log_text()
    assert "Traceback" not in log
    assert "readings wait in the outbox" in log
    from pibridge.outbox import read_stats

    assert read_stats(d.storage / "outbox.db").depth >= d.state()["sensors"]["a"]["reads"]


def test_systemd_hears_ready_watchdog_status_and_stopping(tmp_path, sim):
    address = str(tmp_path / "notify")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(0.2)
    messages = []

    def received(prefix):
        while True:
            try:
                messages.append(listener.recv(4096).decode())
            except socket.timeout:
                break
        return any(m.startswith(prefix) for m in messages)

    d = Daemon(tmp_path, sim, [{"name": "a", "driver": "mock", "interval": 0.2, "metrics": ["temperature"]}])
    d.start(NOTIFY_SOCKET=address, WATCHDOG_USEC="600000", JOURNAL_STREAM="8:1234")
    try:
        wait_for(lambda: received("READY=1"), 20, "READY=1")
        wait_for(lambda: received("WATCHDOG=1") and messages.count("WATCHDOG=1") >= 3, 20,
                 "three WATCHDOG=1 (one every 0.3 s)")
        wait_for(lambda: received("STATUS=connected"), 20, "a STATUS line once connected")
        d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(20) == 0
        wait_for(lambda: received("STOPPING=1"), 5, "STOPPING=1")
    finally:
        d.stop_quietly()
        listener.close()
    assert messages.index("READY=1") < messages.index("STOPPING=1")
    assert messages.index("READY=1") < messages.index("WATCHDOG=1")
    log = d.log_text()
    # Under systemd the journal adds the time; lines carry syslog priorities instead.
    assert "<6>pibridge: connected to the agent" in log
    assert not any(line[:4].isdigit() for line in log.splitlines() if "pibridge" in line)


def test_a_second_daemon_on_the_same_storage_refuses_to_start(tmp_path, sim):
    sensors = [{"name": "a", "driver": "mock", "interval": 0.5, "metrics": ["temperature"]}]
    first = Daemon(tmp_path / "first", sim, sensors).start()
    second = Daemon(tmp_path / "first", sim, sensors)
    second.log = tmp_path / "second.log"
    try:
        first.wait_running()
        second.start()
        assert second.proc.wait(20) == 1
        text = second.log_text()
        assert "already open in another pibridge process" in text and "Traceback" not in text
        assert first.alive()
        assert first.terminate() == 0
    finally:
        first.stop_quietly()
        second.stop_quietly()
