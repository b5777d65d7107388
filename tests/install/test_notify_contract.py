"""`pibridge run` speaks the sd_notify protocol that the unit's Type=notify and WatchdogSec= rely on.

The daemon runs as systemd would start it: a real process with $NOTIFY_SOCKET,
$WATCHDOG_USEC and $WATCHDOG_PID set, the state directory as its working
directory, and SIGTERM to stop it.  No agent listens, so READY=1 must come
from opening the outbox.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from install_harness import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def notify_socket(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify"
    sock.bind(str(path))
    sock.settimeout(20)
    yield path, sock
    sock.close()


def test_ready_watchdog_and_stopping(tmp_path, notify_socket):
    path, sock = notify_socket
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[agent]
host = "127.0.0.1"
provision_port = {free_port()}
api_port = {free_port()}
ca_file = "{tmp_path / 'no-agent-ca.crt'}"

[storage]
dir = "{state}"

[[sensors]]
name = "demo"
driver = "mock"
interval = 1.0
metrics = ["temperature"]
"""
    )
    env = {**os.environ, "NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000", "PYTHONPATH": str(REPO)}
    # WATCHDOG_PID must name the daemon itself, as systemd sets it: exec into the daemon from a shell.
    code = f'export WATCHDOG_PID=$$; exec "{sys.executable}" -m pibridge.cli run --config "{config}"'
    daemon = subprocess.Popen(["sh", "-c", code], env=env, cwd=state, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    messages: list[str] = []
    try:
        started = time.monotonic()
        while messages.count("WATCHDOG=1") < 3:
            messages.append(sock.recv(4096).decode())
        pinging_for = time.monotonic() - started
        daemon.send_signal(signal.SIGTERM)
        while messages[-1] != "STOPPING=1":
            messages.append(sock.recv(4096).decode())
        assert daemon.wait(timeout=30) == 0
    except (TimeoutError, subprocess.TimeoutExpired):
        daemon.kill()
        daemon.wait()
        pytest.fail(f"daemon did not notify in time; got {messages}; output:\n{daemon.stdout.read().decode()}")
    output = daemon.stdout.read().decode()
    assert "Traceback" not in output, output
    assert messages[0] == "READY=1", messages
    # Three pings, the first right at start: at half the 1 s interval the other two take about 1 s.
    assert 0.6 < pinging_for < 10, pinging_for
    assert set(messages[1:-1]) <= {"WATCHDOG=1"} | {m for m in messages if m.startswith("STATUS=")}, messages


def test_config_error_exits_with_the_status_the_unit_does_not_restart(tmp_path):
    """RestartPreventExitStatus=2 in the unit relies on `pibridge run` exiting 2 for a bad config."""
    config = tmp_path / "config.toml"
    config.write_text("[agent]\nhost = 5\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "pibridge.cli", "run", "--config", str(config)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert str(config) in result.stderr
    assert "Traceback" not in result.stderr
