"""``pibridge sim`` as a user runs it: a foreground process, its one line, signals, --dump and fault commands."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.support.mqtt_client import Mqtt, provision
from tests.support.sim import free_port

HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pibridge(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pibridge.cli", *args], capture_output=True, text=True,
                          timeout=30, cwd=HERE, **kwargs)


class Running:
    """``pibridge sim`` in the background; ``line`` is what it printed once ready."""

    def __init__(self, state_dir, ports: tuple[int, int] | None = None, extra: tuple[str, ...] = ()):
        self.state_dir = state_dir
        self.provision_port, self.api_port = ports or (free_port(), free_port())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pibridge.cli", "sim", "--state-dir", str(state_dir),
             "--provision-port", str(self.provision_port), "--api-port", str(self.api_port), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE)
        first: list[str] = []
        got = threading.Event()

        def read_first_line():
            first.append(self.process.stdout.readline())
            got.set()

        threading.Thread(target=read_first_line, daemon=True).start()
        if not got.wait(20) or not first[0]:
            self.process.kill()
            raise AssertionError(f"pibridge sim printed nothing: {self.process.stderr.read()}")
        self.line = first[0]

    def stop(self, signum=signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        return self.process.wait(20)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_runs_until_a_signal_then_exits_0_and_takes_the_broker_along(tmp_path, signum):
    sim = Running(tmp_path / "state")
    ca = tmp_path / "state" / "ca.crt"
    assert f"127.0.0.1:{sim.provision_port}" in sim.line and f"127.0.0.1:{sim.api_port}" in sim.line
    assert str(ca) in sim.line and ca.exists()
    assert _port_open(sim.api_port)
    assert sim.stop(signum) == 0
    assert not _port_open(sim.api_port) and not _port_open(sim.provision_port)


def test_a_second_start_reuses_the_ca(tmp_path):
    first = Running(tmp_path / "state")
    ca = (tmp_path / "state" / "ca.crt").read_bytes()
    assert first.stop() == 0
    second = Running(tmp_path / "state")
    try:
        assert (tmp_path / "state" / "ca.crt").read_bytes() == ca
    finally:
        second.stop()


def test_the_ca_key_is_private(tmp_path):
    sim = Running(tmp_path / "state")
    try:
        assert (tmp_path / "state" / "ca.key").stat().st_mode & 0o077 == 0
        assert (tmp_path / "state" / "ca.key").stat().st_uid == os.geteuid()
    finally:
        sim.stop()


def test_without_mosquitto_it_says_how_to_install_it(tmp_path):
    done = pibridge("sim", "--state-dir", str(tmp_path / "state"),
                    env={**os.environ, "PIBRIDGE_MOSQUITTO": str(tmp_path / "no-such-mosquitto")})
    assert done.returncode == 1
    assert "apt install mosquitto" in done.stderr
    assert "Traceback" not in done.stderr


def test_dump_shows_what_arrived_and_fault_commands_reach_the_running_simulator(tmp_path):
    state = tmp_path / "state"
    sim = Running(state)
    try:
        ident = provision("127.0.0.1", sim.provision_port, state / "ca.crt", tmp_path / "client", "dumped")
        client = Mqtt("127.0.0.1", sim.api_port, state / "ca.crt", ident.cert, ident.key).connect()
        base = f"/v1.0/{ident.client_id}"
        client.subscribe(f"{base}/#")
        kind, _ = client.request(f"{base}/sensor/weather/metric/pushValues",
                                 {"metrics": [{"metricId": "temp", "value": 21.5}], "timestamp": 1590394246545},
                                 f"{base}/sensor/weather/info/inbox", f"{base}/sensor/weather/error/inbox")
        assert kind == "answer"

        text = pibridge("sim", "--state-dir", str(state), "--dump")
        assert text.returncode == 0, text.stderr
        assert ident.client_id in text.stdout and "'dumped'" in text.stdout
        assert "weather/temp = 21.5" in text.stdout and "2020-05-25T08:10:46.545+00:00" in text.stdout
        as_json = json.loads(pibridge("sim", "--state-dir", str(state), "--dump", "--json",
                                      "--client", ident.client_id, "--sensor", "weather").stdout)
        assert [(v["metric_id"], v["value"], v["timestamp_ms"]) for v in as_json[0]["values"]] == \
            [("temp", 21.5, 1590394246545)]

        def ping_code():
            try:
                kind, body = client.request(f"{base}/ping", {"request": "x"}, f"{base}/ping/info/inbox",
                                            f"{base}/ping/error/inbox", timeout=0.5)
            except TimeoutError:
                return "silent"
            return body["errorcode"] if kind == "error" else "answer"

        assert pibridge("sim", "--state-dir", str(state), "fault", "error", "3").returncode == 0
        assert _until(lambda: ping_code() == 3, 10)
        assert pibridge("sim", "--state-dir", str(state), "fault", "silent", "on").returncode == 0
        assert _until(lambda: ping_code() == "silent", 10)
        assert pibridge("sim", "--state-dir", str(state), "fault", "clear").returncode == 0
        assert _until(lambda: ping_code() == "answer", 10)
        assert pibridge("sim", "--state-dir", str(state), "fault", "drop", "1").returncode == 0
        assert _until(lambda: not _port_open(sim.api_port), 10), "the broker goes away"
        assert _until(lambda: _port_open(sim.api_port), 10), "and comes back"
        client.close()
    finally:
        assert sim.stop() == 0


def test_bad_fault_commands_are_refused(tmp_path):
    (tmp_path / "state").mkdir()
    done = pibridge("sim", "--state-dir", str(tmp_path / "state"), "fault", "error", "99")
    assert done.returncode == 2 and "1-28" in done.stderr


def test_a_killed_simulator_takes_its_broker_along(tmp_path):
    """SIGKILL gives the simulator no chance to clean up; the kernel still tells Mosquitto to go (PDEATHSIG)."""
    sim = Running(tmp_path / "state")
    assert _port_open(sim.api_port)
    assert sim.stop(signal.SIGKILL) == -signal.SIGKILL
    assert _until(lambda: not _port_open(sim.api_port) and not _port_open(sim.provision_port), 10)
    again = Running(tmp_path / "state", (sim.provision_port, sim.api_port))  # the ports are free again
    assert again.stop() == 0


def test_verbose_logs_every_request_and_answer_and_what_it_does_not_serve(tmp_path):
    state = tmp_path / "state"
    sim = Running(state, extra=("-v", "--text-answers", "bare", "--dialect", "reference"))
    assert "dialect reference, text answers bare" in sim.line
    try:
        ident = provision("127.0.0.1", sim.provision_port, state / "ca.crt", tmp_path / "client", "verbose")
        client = Mqtt("127.0.0.1", sim.api_port, state / "ca.crt", ident.cert, ident.key).connect()
        base = f"/v1.0/{ident.client_id}"
        client.subscribe(f"{base}/#")
        client.publish(f"{base}/no/such/request", b'{"x": 1}')
        client.publish(f"{base}/inventory", b"{}")
        kind, body = client.request(f"{base}/sensor/weather/metric/pushValues",
                                    {"metrics": [{"metricId": "t", "value": 1.5}]},
                                    f"{base}/sensor/weather/info/inbox", f"{base}/sensor/weather/error/inbox")
        assert (kind, body) == ("answer", b"Sensor was updated.")
        client.close()
    finally:
        assert sim.stop() == 0
    log = sim.process.stderr.read()
    assert f"not served (dialect reference): a message on {base}/no/such/request: '{{\"x\": 1}}'" in log
    assert f"not served (dialect reference): a message on {base}/inventory" in log
    assert f"request push_values on {base}/sensor/weather/metric/pushValues" in log
    assert f"answer on {base}/sensor/weather/info/inbox: 'Sensor was updated.'" in log
    assert f"answer on {base}/sensor/weather/livedata" in log
    assert "Traceback" not in log
