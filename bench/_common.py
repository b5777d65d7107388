"""Shared pieces of the benchmarks: the simulator on loopback, /proc readings, the figures table.

Every benchmark prints its figures as rows of one table: what was measured,
pibridge's figure, the baseline measured in the same run, their ratio and
the target.  ``--json PATH`` writes the same rows for ``run_all.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@dataclass
class Figure:
    """One measured figure, with its baseline and target where there is one."""

    bench: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 0.01:
        return f"{x:.3f}"
    return f"{x:.3g}"


def table(figures: list[Figure]) -> str:
    """The figures as a Markdown table (the same text docs/benchmarks.md carries)."""
    head = "| benchmark | figure | pibridge | baseline | ratio | target | met |"
    rows = [head, "|---|---|---:|---:|---:|---|---|"]
    for f in figures:
        met = {True: "yes", False: "**no**", None: "-"}[f.met]
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else "-"
        name = f"{f.name}" + (f" ({f.note})" if f.note else "")
        rows.append(
            f"| {f.bench} | {name} | {_fmt(f.value)} {f.unit} | {_fmt(f.baseline)} | {ratio} | {f.target or '-'} | {met} |"
        )
    return "\n".join(rows)


def report(figures: list[Figure], json_path: str | None) -> None:
    print()
    print(table(figures))
    if json_path:
        Path(json_path).write_text(json.dumps([asdict(f) for f in figures], indent=1))


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a short run (seconds, not minutes)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    return parser


def machine() -> str:
    """One line naming the machine the figures come from."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return (
        f"{model}, {os.cpu_count()} CPUs, {mem_kb // 1024} MB RAM, "
        f"Linux {platform.release()}, Python {platform.python_version()}"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- /proc ------------------------------------------------------------------------------------


def proc_status_kb(pid: int, key: str) -> int:
    """A ``VmRSS``/``VmHWM``-style field of /proc/<pid>/status, in kB (0 once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def proc_io(pid: int) -> dict[str, int]:
    """/proc/<pid>/io as numbers: ``write_bytes`` is what reached the block layer (the SD card)."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            key, _, value = line.partition(":")
            out[key.strip()] = int(value)
    return out


def proc_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a running process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def dir_bytes(path: Path) -> int:
    """Bytes allocated on disk by the files under ``path`` (what the card really holds)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_blocks * 512
    return total


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.02) -> object:
    """Poll ``condition`` until it is true; raise TimeoutError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# -- the simulator ----------------------------------------------------------------------------


@contextlib.contextmanager
def simulator(state_dir: Path | None = None) -> Iterator[object]:
    """A running :class:`pibridge.sim.Simulator` on free loopback ports."""
    from pibridge.sim import Simulator

    with contextlib.ExitStack() as stack:
        if state_dir is None:
            state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pibridge-bench-sim-")))
        sim = Simulator(state_dir, host="127.0.0.1", provision_port=free_port(), api_port=free_port())
        sim.start()
        try:
            yield sim
        finally:
            sim.stop()


def toml_value(v: object) -> str:
    """``v`` written as a TOML value (strings, numbers, booleans, lists and inline tables)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    return json.dumps(str(v))


def write_config(
    path: Path,
    sim: object,
    storage: Path,
    sensors: list[dict[str, object]],
    *,
    client_name: str = "bench",
    level: str = "info",
    sections: dict[str, dict[str, object]] | None = None,
    **storage_options: object,
) -> Path:
    """A bridge config (TOML) pointing at ``sim``, with the given ``[[sensors]]`` tables.

    A sensor's ``metric`` entry (quantity -> settings) becomes its
    ``[sensors.metric.<quantity>]`` tables; ``sections`` adds whole tables
    such as ``{"http": {"listen": "127.0.0.1:8080"}}``.
    """
    lines = [
        "[agent]",
        'host = "127.0.0.1"',
        f"provision_port = {sim.provision_port}",
        f"api_port = {sim.api_port}",
        f"ca_file = {toml_value(str(sim.ca_file))}",
        f"client_name = {toml_value(client_name)}",
        "",
        "[storage]",
        f"dir = {toml_value(str(storage))}",
    ]
    lines += [f"{k} = {toml_value(v)}" for k, v in storage_options.items()]
    lines += ["", "[log]", f"level = {toml_value(level)}"]
    for name, table in (sections or {}).items():
        lines += ["", f"[{name}]"] + [f"{k} = {toml_value(v)}" for k, v in table.items()]
    for sensor in sensors:
        metrics = sensor.get("metric") or {}
        lines += ["", "[[sensors]]"] + [f"{k} = {toml_value(v)}" for k, v in sensor.items() if k != "metric"]
        for quantity, settings in metrics.items():
            lines += [f"[sensors.metric.{quantity}]"] + [f"{k} = {toml_value(v)}" for k, v in settings.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def pibridge_cmd(*args: str) -> list[str]:
    """The ``pibridge`` command of this checkout, run with the current interpreter."""
    return [sys.executable, "-m", "pibridge.cli", *args]


def spawn(cmd: list[str], log: Path, extra_env: dict[str, str] | None = None, **kw: object) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(extra_env or {}))
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env, **kw)


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> int:
    """SIGTERM, then SIGKILL if it does not exit in time; the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


# -- the daemon ---------------------------------------------------------------------------------


def run_until_first_push(sim: object, client_id: str, config: Path, log: Path, timeout: float,
                         start: Callable[[list[str], Path], subprocess.Popen] = spawn) -> tuple[subprocess.Popen, float]:
    """Start ``pibridge run --config CONFIG`` with *start* (``spawn``, or one that applies a CPU limit)
    and wait for its first value at the simulator: (the running process, seconds from exec)."""
    before = stored_count(sim, client_id)
    started = time.monotonic()
    proc = start(pibridge_cmd("run", "--config", str(config)), log)

    def pushed():
        if proc.poll() is not None:
            raise RuntimeError(f"pibridge run exited with {proc.returncode} before its first push; see {log}")
        return stored_count(sim, client_id) > before

    try:
        wait_for(pushed, timeout, "pibridge's first push", 0.005)
    except BaseException:
        stop(proc)
        raise
    return proc, time.monotonic() - started



def client_ids(sim: object) -> set[str]:
    """The client IDs the simulator knows (its store may list IDs or records)."""
    out = set()
    for c in sim.store.clients():
        if isinstance(c, str):
            out.add(c)
        elif isinstance(c, dict):
            out.add(c.get("client_id") or c.get("clientId"))
        else:
            out.add(getattr(c, "client_id"))
    return out


def value_count(sim: object, client_id: str) -> int:
    """Values the simulator stored for a client (see :func:`stored_count`)."""
    return stored_count(sim, client_id)


def mock_sensors(count: int, interval: float, metrics: list[str], **options: object) -> list[dict[str, object]]:
    return [
        {"name": f"mock{i:02d}", "driver": "mock", "interval": interval, "metrics": metrics, "seed": i, **options}
        for i in range(count)
    ]


def provision_identity(sim: object, directory: Path, name: str) -> object:
    from pibridge.agent.identity import provision

    return provision(directory, host="127.0.0.1", port=sim.provision_port, ca_file=sim.ca_file, client_name=name)


def spawn_bare_daemon(sim: object, identity: object, sensors: int, metrics: int, interval: float, log: Path) -> subprocess.Popen:
    script = Path(__file__).resolve().parent / "bare_daemon.py"
    cmd = [sys.executable, str(script), "127.0.0.1", str(sim.api_port), str(sim.ca_file), str(identity.cert_file),
           str(identity.key_file), identity.client_id, str(sensors), str(metrics), str(interval)]
    return spawn(cmd, log)


def stored_count(sim: object, client_id: str) -> int:
    """How many values the simulator stored for a client (a COUNT on its state file, not a list of rows)."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(f"file:{sim.store.path}?mode=ro", uri=True, timeout=30)) as db:
        return db.execute("SELECT count(*) FROM pushed_values WHERE client_id = ?", (client_id,)).fetchone()[0]


def wait_stored(sim: object, client_id: str, count: int, timeout: float) -> int:
    """Wait until the simulator stored ``count`` values for the client; how many it has (may be fewer)."""
    deadline = time.monotonic() + timeout
    while (n := stored_count(sim, client_id)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return n
