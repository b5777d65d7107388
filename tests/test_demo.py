"""``pibridge demo``: simulator plus bridge with mock sensors, watchable output, clean stop."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _env():
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_demo_runs_for_a_while_and_shows_values_pushes_and_the_outbox(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pibridge.cli", "demo", "--duration", "4", "--refresh", "1", "--http-port", "0",
         "--state-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, env=_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "agent connected" in out
    assert "the bridge's page:          http://127.0.0.1:" in out
    assert "what the agent received:    http://127.0.0.1:" in out
    for sensor in ("greenhouse", "power meter", "door"):
        assert sensor in out
    assert "temperature" in out and "°C" in out
    assert "outbox 0" in out
    delivered = [int(line.split(" read, ")[1].split()[0]) for line in out.splitlines() if " read, " in line]
    assert delivered and max(delivered) > 0
    # The last frame is drawn before the bridge stops: it still tells the truth about the connection.
    frames = [line for line in out.splitlines() if line.startswith("agent ")]
    assert frames[-1].startswith("agent connected"), frames[-1]
    assert out.split("agent connected")[-1].split("\n")[1].startswith("readings: ")
    summary = out.split("stopped: ")[1]
    read = int(summary.split(" readings read")[0])
    acknowledged = int(summary.split("sensors; ")[1].split(" delivered")[0])
    stored = int(summary.split("the simulator stored ")[1].split()[0])
    values = int(summary.split("readings (")[1].split()[0])
    left = int(summary.split("; ")[-1].split()[0])
    # Readings are counted as readings everywhere: each one read was delivered or waits in the outbox,
    # and the simulator stored each delivered reading with its 1-3 values.
    assert read == acknowledged + left
    assert stored == acknowledged
    assert stored <= values <= 3 * stored
    assert "Traceback" not in result.stderr


def test_ctrl_c_stops_the_demo_cleanly(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "pibridge.cli", "demo", "--refresh", "0.5", "--http-port", "0",
         "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )
    try:
        deadline = time.monotonic() + 30
        for line in proc.stdout:
            if "agent connected" in line and " 0 delivered" not in line:
                break
            assert time.monotonic() < deadline, "no pushes shown"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped: " in out and "the simulator stored" in out
    assert "Traceback" not in err


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", "-L", f"pibridge-test-{os.getpid()}", *args], capture_output=True, text=True,
                          check=True).stdout


def test_in_a_terminal_logs_stay_above_the_live_table_and_c_cuts_the_agent_off(tmp_path):
    """A real terminal (tmux): keys act at once, log lines scroll above the table, never through it."""
    import shutil

    import pytest

    from tests.support.waiting import wait_until

    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is missing: scripts/system-deps.sh --test installs it")
        pytest.skip("tmux is missing: scripts/system-deps.sh --test installs it")
    env = " ".join(f"{k}={v}" for k, v in _env().items() if k in ("PYTHONPATH", "PYTHONUNBUFFERED"))
    command = (f"env {env} {sys.executable} -m pibridge.cli demo --http-port 0 --refresh 0.2 --cut-seconds 2 "
               f"--state-dir {tmp_path}")
    _tmux("new-session", "-d", "-s", "demo", "-x", "80", "-y", "40", command)
    try:
        _tmux("set-option", "-t", "demo", "remain-on-exit", "on")
        screen = lambda: _tmux("capture-pane", "-p", "-t", "demo")  # noqa: E731
        wait_until(lambda: "keys: c = cut the agent off for 2 s" in screen() and "agent connected" in screen(),
                   timeout=30, what="the live table with its keys line")
        _tmux("send-keys", "-t", "demo", "c")
        wait_until(lambda: "agent NOT CONNECTED (cut off)" in screen(), timeout=10, what="the cut shown")
        wait_until(lambda: "lost the connection to the agent" in screen(), timeout=10, what="the warning logged")
        lines = [line for line in screen().splitlines() if line.strip()]
        table = next(i for i, line in enumerate(lines) if line.startswith("agent "))
        # The log lines sit above the table (they may wrap; the table's rows never do): below its
        # first line come only the readings, the sensors and the keys.
        assert lines[table + 1].startswith("readings: "), lines[table:]
        assert all(line.startswith("  ") for line in lines[table + 2:-1]), lines[table:]
        assert lines[-1].startswith("keys: ")
        assert any("the agent is cut off for 2 s" in line for line in lines[:table])
        wait_until(lambda: "agent connected" in screen() and any(
            line.startswith("readings: ") and "outbox 0 |" in line for line in screen().splitlines()),
            timeout=30, what="the outbox replayed")
        _tmux("send-keys", "-t", "demo", "q")
        wait_until(lambda: "stopped: " in screen(), timeout=30, what="the demo to stop")
        assert "Traceback" not in screen()
    finally:
        _tmux("kill-server")
