"""A real ``pibridge run`` subprocess against a simulator, for the end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.support.waiting import wait_until as wait_for  # noqa: F401  (the bridge tests import it from here)

REPO = Path(__file__).resolve().parents[2]


def pull_the_wire(bridge, name: str) -> threading.Event:
    """Make the in-process *bridge*'s sensor *name* fail every read while the returned event is set."""
    from pibridge.drivers import ReadFailed

    reader = next(r for r in bridge.readers if r.name == name)
    real_read = reader.driver.read
    unplugged = threading.Event()

    def read():
        if unplugged.is_set():
            raise ReadFailed(f"sensor {name!r}: no answer (wire pulled)")
        return real_read()

    reader.driver.read = read
    return unplugged


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value))


def env() -> dict[str, str]:
    e = dict(os.environ, PYTHONUNBUFFERED="1")
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e.pop("NOTIFY_SOCKET", None)
    e.pop("JOURNAL_STREAM", None)
    return e


def pibridge(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pibridge.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env())


class Daemon:
    """One config, storage directory and log; start/stop/kill the daemon as often as needed."""

    def __init__(self, workdir: Path, sim, sensors: list[dict], *, agent: dict | None = None,
                 storage: dict | None = None, name: str = "e2e"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sim = sim
        self.storage = self.workdir / "storage"
        self.config = self.workdir / "pibridge.toml"
        self.log = self.workdir / "pibridge.log"
        self.proc: subprocess.Popen | None = None
        lines = ["[agent]", 'host = "127.0.0.1"', f"provision_port = {sim.provision_port}",
                 f"api_port = {sim.api_port}", f"ca_file = {_toml(str(sim.ca_file))}",
                 f"client_name = {_toml(name)}", "timeout = 3.0"]
        lines += [f"{k} = {_toml(v)}" for k, v in (agent or {}).items()]
        lines += ["", "[storage]", f"dir = {_toml(str(self.storage))}", "ack_window = 1.0",
                  "commit_interval = 0.2"]
        lines += [f"{k} = {_toml(v)}" for k, v in (storage or {}).items()]
        for sensor in sensors:
            lines += ["", "[[sensors]]"] + [f"{k} = {_toml(v)}" for k, v in sensor.items()]
        self.config.write_text("\n".join(lines) + "\n")

    def start(self, **extra_env: str) -> "Daemon":
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pibridge.cli", "run", "--config", str(self.config), "--log-level", "debug"],
                stdout=out, stderr=subprocess.STDOUT, env={**env(), **extra_env},
            )
        return self

    def terminate(self, timeout: float = 20) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop_quietly(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, (
            f"pibridge run exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
        return True

    def state(self) -> dict | None:
        try:
            return json.loads((self.storage / "state.json").read_text())
        except (OSError, ValueError):
            return None

    def wait_running(self) -> dict:
        """Until this process has written its state file (its signal handlers are in place by then)."""
        return wait_for(lambda: self.alive() and (s := self.state()) and s.get("pid") == self.proc.pid and s, 20,
                        "the daemon's state file")

    def client_id(self) -> str:
        state = wait_for(lambda: self.alive() and (s := self.state()) and s.get("client_id") and s, 20,
                         "a client ID in the state file")
        return state["client_id"]

    def status(self, *args: str) -> subprocess.CompletedProcess:
        return pibridge("status", "--config", str(self.config), *args)

    def stored(self, client_id: str) -> dict[str, list[int]]:
        """sensor name -> distinct timestamps in order of first arrival."""
        names = {s["sensor_id"]: s["name"] for s in self.sim.store.sensors(client_id)}
        out: dict[str, list[int]] = {}
        seen = set()
        for row in self.sim.store.values(client_id):
            key = (row["sensor_id"], row["timestamp_ms"])
            if key in seen:
                continue
            seen.add(key)
            out.setdefault(names.get(row["sensor_id"], row["sensor_id"]), []).append(row["timestamp_ms"])
        return out
