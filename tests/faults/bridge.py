"""Running the real ``pibridge run`` daemon against a simulator, for the fault tests.

:class:`Bridge` writes a config file for a simulator, starts the daemon as a
subprocess (so signals, kill -9 and resource limits are real), and reads
back what the simulator stored for it, per sensor name.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from tests.faults.checks import readings
from tests.support.waiting import wait_until  # noqa: F401  (the fault tests import it from here)

REPO = Path(__file__).resolve().parents[2]


def small_tmpfs(tmp_path: Path, size: str):
    """Mount a tmpfs of *size* (``"2m"``) standing in for the SD card; yields its path, unmounts it.

    For a fixture: ``yield from small_tmpfs(tmp_path, "2m")``.  Skips the test where mounting is
    not possible (not root, no mount permission).
    """
    import pytest

    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs as the storage dir needs root")
    mount_point = tmp_path / "card"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(str(v))


def mock(name: str, interval: float, metrics=("temperature", "humidity"), **options: object) -> dict[str, object]:
    """One ``[[sensors]]`` table of the mock driver."""
    return {"name": name, "driver": "mock", "interval": interval, "metrics": list(metrics), **options}


def pibridge(*args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    """Run a ``pibridge`` command to completion, as a user would."""
    return subprocess.run([sys.executable, "-m", "pibridge.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=_env(), **kw)


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


#: Every Bridge started in this test session; the faults conftest stops those a failed test left running.
STARTED: list["Bridge"] = []


class Bridge:
    """One ``pibridge run`` daemon, its config, storage directory and log."""

    def __init__(self, workdir: Path, sim, sensors: list[dict[str, object]], *, name: str = "faults",
                 storage: Path | None = None, agent: dict[str, object] | None = None,
                 storage_options: dict[str, object] | None = None, api_port: int | None = None,
                 ca_file: Path | None = None, level: str = "info"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sim = sim
        self.name = name
        self.storage = Path(storage) if storage else self.workdir / "storage"
        self.config = self.workdir / "pibridge.toml"
        self.log = self.workdir / "pibridge.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        lines = [
            "[agent]",
            'host = "127.0.0.1"',
            f"provision_port = {sim.provision_port}",
            f"api_port = {api_port or sim.api_port}",
            f"ca_file = {toml_value(str(ca_file or sim.ca_file))}",
            f"client_name = {toml_value(name)}",
            "timeout = 3.0",
        ]
        lines += [f"{k} = {toml_value(v)}" for k, v in (agent or {}).items()]
        lines += ["", "[storage]", f"dir = {toml_value(str(self.storage))}"]
        lines += [f"{k} = {toml_value(v)}" for k, v in (storage_options or {}).items()]
        lines += ["", "[log]", f"level = {toml_value(level)}"]
        for sensor in sensors:
            lines += ["", "[[sensors]]"] + [f"{k} = {toml_value(v)}" for k, v in sensor.items()]
        self.config.write_text("\n".join(lines) + "\n")

    # -- process ---------------------------------------------------------------

    def start(self, umask: int | None = None) -> "Bridge":
        """Start the daemon (with *umask*, the umask it inherits)."""
        assert self.proc is None or self.proc.poll() is not None, "the daemon is already running"
        self.starts += 1
        with self.log.open("a") as log:
            log.write(f"\n--- start {self.starts} ---\n")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pibridge.cli", "run", "--config", str(self.config)],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT, env=_env(),
            preexec_fn=None if umask is None else (lambda: os.umask(umask)),
        )
        STARTED.append(self)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def assert_running(self) -> None:
        assert self.running, f"pibridge run exited with {self.proc.returncode if self.proc else None}:\n{self.log_text()[-3000:]}"

    def kill(self) -> None:
        """kill -9: no chance to flush or clean up."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not exit in time.  The exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def cpu_seconds(self) -> float:
        """User plus system CPU time the daemon has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def cpu_share(self, seconds: float) -> float:
        """The share of one core the daemon uses over the next *seconds* of wall time."""
        start_cpu, start = self.cpu_seconds(), time.monotonic()
        wait_until(lambda: time.monotonic() - start >= seconds, seconds + 5, "the measuring window", interval=0.1)
        return (self.cpu_seconds() - start_cpu) / (time.monotonic() - start)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_log(self, predicate: Callable[[str], bool], timeout: float, what: str) -> str:
        return wait_until(lambda: (t := self.log_text()) and predicate(t) and t, timeout, f"{what} in the log")

    def status(self, *args: str) -> subprocess.CompletedProcess:
        return pibridge("status", "--config", str(self.config), *args)

    # -- what the simulator stored ---------------------------------------------

    @property
    def client_id(self) -> str:
        ids = self.client_ids()
        assert ids, f"the simulator has no client named {self.name!r}"
        return ids[-1]

    def client_ids(self) -> list[str]:
        return [c["client_id"] for c in self.sim.store.clients() if c["name"] == self.name]

    def sensor_ids(self, client_id: str | None = None) -> dict[str, str]:
        """Sensor name -> sensor ID, as the simulator knows them."""
        out = {}
        for s in self.sim.store.sensors(client_id or self.client_id):
            out[s["name"]] = s["sensor_id"]
        return out

    def values(self, client_id: str | None = None) -> list[dict]:
        """Every value the simulator stored for this bridge, in arrival order, with ``sensor`` (name) added.

        Empty while the bridge has not provisioned yet."""
        ids = [client_id] if client_id else self.client_ids()
        if not ids:
            return []
        cid = ids[-1]
        names = {v: k for k, v in self.sensor_ids(cid).items()}
        rows = self.sim.store.values(cid)
        for r in rows:
            r["sensor"] = names.get(r["sensor_id"], r["sensor_id"])
        return rows

    def timestamps(self, sensor: str, client_id: str | None = None) -> list[int]:
        """The distinct timestamps stored for one sensor, in arrival order of their first value."""
        seen, out = set(), []
        for r in self.values(client_id):
            if r["sensor"] == sensor and r["timestamp_ms"] not in seen:
                seen.add(r["timestamp_ms"])
                out.append(r["timestamp_ms"])
        return out

    def wait_caught_up(self, names, after_ms: int, timeout: float, what: str) -> None:
        """Wait until every sensor in *names* has readings taken after *after_ms* at the agent and
        the outbox is empty.  New readings go out beside a replay, so their arrival alone does not
        say the backlog has arrived too."""

        def caught_up():
            self.assert_running()
            got = readings(self.values())
            if not all(max(got.get(s, {0: 0})) > after_ms for s in names):
                return False
            done = self.status("--json")
            return done.returncode == 0 and json.loads(done.stdout)["outbox"]["depth"] == 0

        wait_until(caught_up, timeout, what)

    def wait_values(self, count: int, timeout: float, client_id: str | None = None) -> list[dict]:
        """Wait until the simulator holds at least ``count`` values from this bridge."""

        def enough():
            self.assert_running()
            ids = [client_id] if client_id else self.client_ids()
            return ids and len(self.sim.store.values(ids[-1])) >= count

        wait_until(enough, timeout, f"{count} values from {self.name!r}")
        return self.values(client_id)
