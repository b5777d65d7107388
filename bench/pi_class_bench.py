"""A Pi-class budget: `pibridge run` pinned to one core under a 25 % CPU quota, 20 sensors every second.

Run:  .venv/bin/python bench/pi_class_bench.py [--quick] [--quota 25] [--window 30] [--backlog 50000]

A Pi Zero 2 W core is several times slower than a laptop's.  This
benchmark gives the daemon a quarter of one core of this machine: it runs
under ``taskset -c 0`` inside a CPU cgroup the benchmark creates and removes
again (cgroup v2 ``cpu.max``, or where the machine has the v1 hierarchy,
``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` of the v1 ``cpu`` controller:
the same CFS bandwidth limit).  Without either it falls back to stopping and
continuing the process (SIGSTOP / SIGCONT, 25 ms of every 100 ms running, as
``cpulimit`` does), which is harsher: the daemon is stopped even while idle;
the output says which one was used.

Each figure is measured twice in the same run, with and without the quota
(the baseline):

* start-up: wall time and modules imported (``python -X importtime``) of
  ``pibridge --help`` and ``pibridge check`` with the 20 mock sensors
  against a bare ``python -c pass``; how many driver modules ``check``
  imports of those installed;
* exec to the first push, identity on disk;
* ``--window`` seconds of 20 mock sensors x 3 quantities at 1 s: p99 of the
  read time minus its grid slot (jitter) and of arrival at the agent minus
  read time (delay), from the simulator's store, and whether all arrived;
* a backlog of ``--backlog`` readings left in the outbox as after an
  outage: seconds from exec until the outbox is empty, while the 20 sensors
  keep reading, and the delay of the readings they take from the moment the
  daemon delivers to the agent until the outbox is empty (target: a few
  seconds at most, however long the backlog).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, Figure, base_parser, mock_sensors, pibridge_cmd, report, run_until_first_push, simulator, spawn, stop, write_config  # noqa: E402
from _observe import arrivals, fmt_ms, next_grid, percentile, provision_client, sleep_until, stopping, wait_arrived  # noqa: E402

METRICS = ["temperature", "humidity", "pressure"]
SENSORS = 20


class CpuQuota:
    """A CPU limit for the processes started through :meth:`wrap`: a cgroup made here and removed by :meth:`close`."""

    V2 = Path("/sys/fs/cgroup")
    V1 = Path("/sys/fs/cgroup/cpu")

    def __init__(self, percent: float, period_us: int = 100_000):
        self.percent = percent
        self.period_us = period_us
        quota_us = int(period_us * percent / 100)
        self.path: Path | None = None
        self._throttlers: list[threading.Thread] = []
        self._stop = threading.Event()
        name = f"pibridge-bench-{os.getpid()}"
        reasons = []
        controllers = self.V2 / "cgroup.controllers"
        if controllers.exists() and "cpu" in controllers.read_text().split():
            try:
                subtree = self.V2 / "cgroup.subtree_control"
                if "cpu" not in subtree.read_text().split():
                    subtree.write_text("+cpu")
                self.path = self.V2 / name
                self.path.mkdir()
                (self.path / "cpu.max").write_text(f"{quota_us} {period_us}")
                self.kind = f"cgroup v2 {self.path} cpu.max = {quota_us} {period_us}"
            except OSError as e:
                reasons.append(f"cgroup v2: {e}")
                self._remove()
        elif controllers.exists():
            reasons.append("cgroup v2 is mounted but its cpu controller is not available")
        else:
            reasons.append("no cgroup v2 hierarchy at /sys/fs/cgroup (the machine mounts cgroup v1)")
        if self.path is None and (self.V1 / "cpu.cfs_quota_us").exists():
            try:
                self.path = self.V1 / name
                self.path.mkdir()
                (self.path / "cpu.cfs_period_us").write_text(str(period_us))
                (self.path / "cpu.cfs_quota_us").write_text(str(quota_us))
                self.kind = (f"cgroup v1 cpu controller {self.path} cfs_quota_us = {quota_us}, "
                             f"cfs_period_us = {period_us} ({'; '.join(reasons)})")
            except OSError as e:
                reasons.append(f"cgroup v1: {e}")
                self._remove()
        if self.path is None:
            self.kind = (f"SIGSTOP/SIGCONT duty cycle, {quota_us // 1000} ms running of every {period_us // 1000} ms "
                         f"(no CPU cgroup could be made: {'; '.join(reasons)})")

    def _remove(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.rmdir()
            self.path = None

    def wrap(self, cmd: list[str]) -> tuple[list[str], object]:
        """``cmd`` pinned to CPU 0, and a preexec function that puts the child into the cgroup."""
        procs = self.path / "cgroup.procs" if self.path else None

        def enter() -> None:
            if procs is not None:
                procs.write_text(str(os.getpid()))

        return ["taskset", "-c", "0", *cmd], enter

    def spawn(self, cmd: list[str], log: Path) -> subprocess.Popen:
        cmd, enter = self.wrap(cmd)
        proc = spawn(cmd, log, preexec_fn=enter)
        if self.path is None:
            self._throttle(proc)
        return proc

    def run(self, cmd: list[str], **kw) -> subprocess.CompletedProcess:
        cmd, enter = self.wrap(cmd)
        if self.path is None:
            proc = subprocess.Popen(cmd, preexec_fn=enter, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self._throttle(proc)
            out, err = proc.communicate(timeout=kw.get("timeout"))
            return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
        return subprocess.run(cmd, preexec_fn=enter, capture_output=True, text=True, **kw)

    def _throttle(self, proc: subprocess.Popen) -> None:
        on = self.period_us * self.percent / 100 / 1e6
        off = self.period_us / 1e6 - on

        def cycle() -> None:
            while proc.poll() is None and not self._stop.is_set():
                time.sleep(on)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGSTOP)
                time.sleep(off)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGCONT)

        t = threading.Thread(target=cycle, daemon=True)
        t.start()
        self._throttlers.append(t)

    def throttled(self) -> str:
        """The cgroup's throttling counters (how often the quota bit), if there is a cgroup."""
        if self.path is None:
            return "-"
        with contextlib.suppress(OSError):
            stat = dict(line.split() for line in (self.path / "cpu.stat").read_text().splitlines())
            periods, throttled = stat.get("nr_periods"), stat.get("nr_throttled")
            return f"throttled in {throttled} of {periods} periods"
        return "-"

    def close(self) -> None:
        self._stop.set()
        for t in self._throttlers:
            t.join(1)
        if self.path is not None:
            with contextlib.suppress(OSError):
                for pid in (self.path / "cgroup.procs").read_text().split():
                    # Only processes this benchmark put there can be left (a child that outlived stop()).
                    os.kill(int(pid), signal.SIGKILL)
            deadline = time.monotonic() + 5
            while self.path.exists() and time.monotonic() < deadline:
                try:
                    self.path.rmdir()
                except OSError:
                    time.sleep(0.1)
            if self.path.exists():
                print(f"warning: could not remove {self.path}")


class Unlimited:
    """The baseline: the same commands without pinning or quota."""

    kind = "no limit"

    def spawn(self, cmd: list[str], log: Path) -> subprocess.Popen:
        return spawn(cmd, log)

    def run(self, cmd: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, capture_output=True, text=True, **kw)

    def throttled(self) -> str:
        return "-"


# -- start-up -----------------------------------------------------------------------------------


def pibridge_script() -> list[str]:
    """What a user runs: the installed ``pibridge`` script next to this interpreter, else ``python -m``."""
    script = Path(sys.executable).parent / "pibridge"
    return [str(script)] if script.exists() else pibridge_cmd()


#: Runs a script as ``python SCRIPT ARGS`` would and writes the names in sys.modules at exit to a file.
#: (``python -X importtime`` misses modules loaded with importlib.import_module, as drivers are.)
_MODULES_AT_EXIT = """
import atexit, json, runpy, sys
out, sys.argv = sys.argv[1], sys.argv[2:]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def imported(script: str, *args: str) -> list[str]:
    """Names of the modules loaded when ``script`` has run with ``args`` (``sys.modules`` at exit)."""
    with tempfile.TemporaryDirectory(prefix="pibridge-modules-") as tmp:
        out = Path(tmp) / "modules.json"
        done = subprocess.run([sys.executable, "-c", _MODULES_AT_EXIT, str(out), script, *args],
                              capture_output=True, text=True, timeout=120)
        if not out.exists():
            raise RuntimeError(f"{script} {' '.join(args)} exited with {done.returncode}: {done.stderr[-300:]}")
        return json.loads(out.read_text())


def timed(limit, cmd: list[str], repeat: int) -> float:
    """Median wall seconds of ``cmd`` run ``repeat`` times under ``limit``."""
    times = []
    for _ in range(repeat):
        t0 = time.monotonic()
        done = limit.run(cmd, timeout=120)
        times.append(time.monotonic() - t0)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited with {done.returncode}: {done.stderr.strip()[-300:]}")
    return statistics.median(times)


def startup(limits: dict, workdir: Path, config: Path, repeat: int) -> dict:
    script = pibridge_script()
    entry = script[0] if script[0] != sys.executable else str(REPO / "pibridge" / "cli.py")
    empty = workdir / "empty.py"
    empty.write_text("")
    check_modules = imported(entry, "check", "--config", str(config))
    installed = [p for p in (REPO / "drivers").rglob("*.py") if not p.name.startswith("_")]
    out: dict = {
        "modules": {"python": len(imported(str(empty))), "help": len(imported(entry, "--help")),
                    "check": len(check_modules)},
        # Driver modules proper (pibridge.drivers.<bus>.<chip>, the repo's drivers/ folder), not the
        # packages and shared helpers (_bus, _crc ...).
        "driver_modules": (sorted(m for m in check_modules if m.startswith("pibridge.drivers.") and m.count(".") >= 3
                                  and not m.rsplit(".", 1)[1].startswith("_")), len(installed)),
    }
    for name, limit in limits.items():
        out[name] = {
            "python": timed(limit, [sys.executable, "-c", "pass"], repeat),
            "help": timed(limit, [*script, "--help"], repeat),
            "check": timed(limit, [*script, "check", "--config", str(config)], max(1, repeat // 2)),
        }
    return out


# -- the daemon ---------------------------------------------------------------------------------


def first_push(sim, limit, config: Path, log: Path, client_id: str) -> tuple[subprocess.Popen, float]:
    return run_until_first_push(sim, client_id, config, log, 120, start=limit.spawn)


def live(sim, limit, config: Path, log: Path, client_id: str, window: int) -> dict:
    with stopping() as running:
        proc, first = first_push(sim, limit, config, log, client_id)
        running.append(proc)
        start = next_grid(1.0) + 2.0
        sleep_until(start)
        end = start + window
        sleep_until(end)
        expected = SENSORS * len(METRICS) * window
        stored = wait_arrived(sim, client_id, expected, start, end, 30)
        got = arrivals(sim, client_id, SENSORS, len(METRICS), 1.0, start, end)
        if proc.poll() is not None:
            raise RuntimeError(f"pibridge run exited with {proc.returncode} during the window; see {log}")
    return {"first": first, "jitter99": percentile(got.jitter_ms, 99), "jitter50": percentile(got.jitter_ms, 50),
            "delay99": percentile(got.delay_ms, 99), "delay50": percentile(got.delay_ms, 50),
            "stored": stored, "expected": expected, "throttled": limit.throttled()}


def fill_outbox(storage: Path, readings: int) -> None:
    """Leave ``readings`` in the outbox as an outage of the 20 sensors would, oldest first, before now."""
    from pibridge.outbox.store import Outbox
    from pibridge.readings import Reading

    rounds = readings // SENSORS
    start_ms = int(time.time() * 1000) - rounds * 1000 - 60_000
    with Outbox(storage / "outbox.db", max_bytes=2**40, max_age=None) as outbox:
        for first in range(0, readings, 10_000):
            outbox.append(
                Reading(f"mock{i % SENSORS:02d}", start_ms + (i // SENSORS) * 1000,
                        {q: 20.0 + (i + j) % 100 / 10 for j, q in enumerate(METRICS)})
                for i in range(first, min(readings, first + 10_000)))
            outbox.commit()


def drain(sim, limit, config: Path, storage: Path, log: Path, client_id: str, backlog: int, timeout: float) -> dict:
    """Seconds from exec to an empty outbox holding ``backlog`` readings, and the live readings' delay meanwhile."""
    from pibridge.outbox.store import read_stats

    fill_outbox(storage, backlog)
    t0 = time.monotonic()
    unix0 = time.time()
    marker = log.stat().st_size if log.exists() else 0
    proc = limit.spawn(pibridge_cmd("run", "--config", str(config)), log)
    left = backlog
    attached = None
    with stopping(proc):
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"pibridge run exited with {proc.returncode} during the replay; see {log}")
            if attached is None and b"delivering to the agent" in log.read_bytes()[marker:]:
                attached = time.time()
            stats = read_stats(storage / "outbox.db")
            left = stats.depth if stats is not None else left
            if left == 0:
                break
            time.sleep(0.2)
        seconds = time.monotonic() - t0
        unix1 = time.time()
        # Live readings: read once the daemon delivers to the agent.  What it read before (while it
        # started and connected) was buffered like the rest of the outage and belongs to the backlog.
        start, end = next_grid(1.0, attached or unix0), float(int(unix1))
        got = arrivals(sim, client_id, SENSORS, len(METRICS), 1.0, start, end) if end > start else None
        throttled = limit.throttled()
    return {"seconds": seconds, "left": left, "rate": (backlog - left) / seconds,
            "live_delay99": percentile(got.delay_ms, 99) if got else float("nan"),
            "live_delay50": percentile(got.delay_ms, 50) if got else float("nan"),
            "live_readings": got.readings if got else 0, "live_expected": got.expected_readings if got else 0,
            "throttled": throttled}


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--quota", type=float, default=25.0, help="percent of one core")
    parser.add_argument("--window", type=int, help="seconds of live readings measured (default 30; 10 with --quick)")
    parser.add_argument("--backlog", type=int, help="readings in the outbox to drain (default 50,000; 5,000 with --quick)")
    parser.add_argument("--drain-timeout", type=float, default=420.0, help="give up a drain after this many seconds")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each start-up command (median)")
    args = parser.parse_args(argv)
    window = args.window or (10 if args.quick else 30)
    backlog = args.backlog or (5_000 if args.quick else 50_000)

    quota = CpuQuota(args.quota)
    print(f"CPU limit: taskset -c 0, {quota.kind}")
    limits = {"baseline": Unlimited(), "quota": quota}
    results: dict = {}
    try:
        with tempfile.TemporaryDirectory(prefix="pibridge-pi-") as tmp, simulator(Path(tmp) / "sim") as sim:
            tmp = Path(tmp)
            storage = tmp / "storage"
            config = write_config(tmp / "pibridge.toml", sim, storage, mock_sensors(SENSORS, 1.0, METRICS),
                                  client_name="piclass", outbox_max_bytes=2**40)
            log = tmp / "pibridge.log"
            client_id = provision_client(config, log)
            results["startup"] = startup(limits, tmp, config, args.repeat)
            s = results["startup"]
            print(f"start-up: modules imported: python -c pass {s['modules']['python']}, pibridge --help "
                  f"{s['modules']['help']}, pibridge check {s['modules']['check']} (driver modules "
                  f"{len(s['driver_modules'][0])} of {s['driver_modules'][1]}: {', '.join(s['driver_modules'][0])})")
            for name in limits:
                t = s[name]
                print(f"  {name:8s}  python -c pass {t['python']:.3f} s, --help {t['help']:.3f} s, check {t['check']:.3f} s")
            # The first start creates the sensors on the agent; the measured ones find them in the registry.
            proc, _ = first_push(sim, limits["baseline"], config, log, client_id)
            stop(proc)
            for name, limit in limits.items():
                results[f"live-{name}"] = r = live(sim, limit, config, log, client_id, window)
                print(f"live, {name}: first push {r['first']:.2f} s; jitter p50 {fmt_ms(r['jitter50'])} p99 "
                      f"{fmt_ms(r['jitter99'])}; delay p50 {fmt_ms(r['delay50'])} p99 {fmt_ms(r['delay99'])}; "
                      f"stored {r['stored']:,} of {r['expected']:,}; {r['throttled']}", flush=True)
            for name, limit in limits.items():
                results[f"drain-{name}"] = r = drain(sim, limit, config, storage, log, client_id, backlog,
                                                     args.drain_timeout)
                print(f"drain, {name}: {backlog:,} readings in {r['seconds']:.1f} s ({r['rate']:,.0f}/s), "
                      f"{r['left']:,} left; live readings meanwhile: delay p50 {fmt_ms(r['live_delay50'])} p99 "
                      f"{fmt_ms(r['live_delay99'])} ({r['live_readings']} of {r['live_expected']} arrived); "
                      f"{r['throttled']}", flush=True)
    finally:
        quota.close()

    s, lb, lq = results["startup"], results["live-baseline"], results["live-quota"]
    db, dq = results["drain-baseline"], results["drain-quota"]
    limit_note = f"taskset -c 0, {args.quota:g} % quota"
    drivers_used, drivers_all = s["driver_modules"]
    figures = [
        Figure("pi-class", "jitter p99 against the grid", lq["jitter99"], "ms", lb["jitter99"], "< 100 ms",
               lq["jitter99"] < 100, f"{SENSORS} sensors x 3, 1 s, {window} s; {limit_note}; baseline: no limit"),
        Figure("pi-class", "delay to the agent p99", lq["delay99"], "ms", lb["delay99"], "< 1,000 ms",
               lq["delay99"] < 1000, f"p50 {fmt_ms(lq['delay50'])}"),
        Figure("pi-class", "values stored of those due", lq["stored"], "values", lq["expected"], "all",
               lq["stored"] >= lq["expected"], limit_note),
        Figure("pi-class", "exec to first push", lq["first"], "s", lb["first"], "-", None,
               "identity on disk; baseline: no limit"),
        Figure("pi-class", f"drain of a {backlog:,}-reading backlog", dq["seconds"], "s", db["seconds"], "drains",
               dq["left"] == 0, f"{dq['rate']:,.0f} readings/s, {dq['left']:,} left; exec to empty outbox"),
        Figure("pi-class", "live readings' delay to the agent during the drain, p99", dq["live_delay99"], "ms",
               db["live_delay99"], "<= 3,000 ms", dq["live_delay99"] <= 3000,
               f"p50 {fmt_ms(dq['live_delay50'])}; read once the daemon delivers to the agent"),
        Figure("pi-class", "`pibridge --help` wall time", s["quota"]["help"], "s", s["quota"]["python"], "-", None,
               f"baseline: python -c pass, same limit; without the limit {s['baseline']['help']:.3f} s"),
        Figure("pi-class", "`pibridge check` wall time (20 mock sensors)", s["quota"]["check"], "s",
               s["quota"]["python"], "-", None,
               f"baseline: python -c pass, same limit; without the limit {s['baseline']['check']:.3f} s"),
        Figure("pi-class", "modules imported by `pibridge --help`", s["modules"]["help"], "", s["modules"]["python"],
               "-", None, "baseline: python -c pass"),
        Figure("pi-class", "modules imported by `pibridge check`", s["modules"]["check"], "", s["modules"]["python"],
               "-", None, f"driver modules {len(drivers_used)} of {drivers_all}"),
    ]
    report(figures, args.json)
    print(f"\nCPU limit used: taskset -c 0, {quota.kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
