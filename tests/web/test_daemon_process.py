"""`pibridge run` as a real process with [http]: the page comes up, answers, and goes away on SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

from tests.bridge.daemon_support import env
from tests.support.sim import free_port
from tests.support.waiting import wait_until


def status_of(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def test_pibridge_run_serves_its_page_and_closes_it_on_sigterm(sim, tmp_path):
    port = free_port()
    config = tmp_path / "pibridge.toml"
    config.write_text(
        f'[agent]\nhost = "127.0.0.1"\nprovision_port = {sim.provision_port}\napi_port = {sim.api_port}\n'
        f'ca_file = "{sim.ca_file}"\n\n[storage]\ndir = "{tmp_path / "storage"}"\n\n'
        f'[http]\nlisten = "127.0.0.1:{port}"\n\n'
        '[[sensors]]\nname = "greenhouse"\ndriver = "mock"\ninterval = 0.5\nmetrics = ["temperature"]\n')
    log = tmp_path / "pibridge.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pibridge.cli", "run", "--config", str(config)],
                                stdout=out, stderr=subprocess.STDOUT, env=env())
    try:
        wait_until(lambda: status_of(f"http://127.0.0.1:{port}/healthz") == 200, timeout=30,
                   what="/healthz 200 from pibridge run")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            assert b"pibridge_agent_connected 1\n" in answer.read()
        assert f"web page on http://127.0.0.1:{port}/" in log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the port is still open after the daemon stopped"
    assert "Traceback" not in log.read_text()
