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
        [sys.executable, "-m", "pibridge.cli", "demo", "--duration", "4", "--refresh", "1",
         "--state-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, env=_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "agent connected" in out
    for sensor in ("greenhouse", "power meter", "door"):
        assert sensor in out
    assert "temperature" in out and "°C" in out
    assert "outbox 0" in out
    pushed = [int(line.split("pushed ")[1].split()[0]) for line in out.splitlines() if "pushed " in line]
    assert pushed and max(pushed) > 0
    stored = int(out.split("the simulator stored ")[1].split()[0])
    assert stored >= max(pushed)
    assert "Traceback" not in result.stderr


def test_ctrl_c_stops_the_demo_cleanly(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "pibridge.cli", "demo", "--refresh", "0.5", "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )
    try:
        deadline = time.monotonic() + 30
        for line in proc.stdout:
            if "agent connected" in line and "pushed 0" not in line:
                break
            assert time.monotonic() < deadline, "no pushes shown"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped: the simulator stored" in out
    assert "Traceback" not in err
