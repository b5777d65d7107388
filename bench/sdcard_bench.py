"""SD card wear: what ``pibridge run`` writes with the agent reachable and while it is away.

Run (as root for the device counters):
    .venv/bin/python bench/sdcard_bench.py [--quick] [--minutes 1] [--sensors 20] [--interval 1.0]

Two daemons run side by side, each pushing ``--sensors`` mock sensors (three
quantities each) to one simulator on loopback: **pibridge** with the default
``[storage]`` settings and the **baseline** with the previous ones (every
commit 1 s apart and fsynced, whether the agent is there or not).  Each has
its storage dir on an ext4 file system of its own, on a loop device (made,
mounted and removed by the benchmark), so that the device's own counter
(``/sys/block/<dev>/stat``, sectors written) sees that daemon only, file
system journal included.  Without root both share the disk holding ``--dir``
and only ``/proc/<pid>/io`` is reported per daemon.

Each outbox file starts as after an earlier outage (its WAL grown to its
full 4 MiB and then drained): a long outage writes the WAL over in place
once it has reached that size, and a file that grows costs the file system's
journal a block or two per fsync, which the first minutes of a daemon's
first outage pay once.  The baseline's file has the 4 KiB pages outbox files
were made with before.

1. the broker is up (30 s): every reading should go straight out and
   nothing be written to the storage dir (its state file goes to a tmpfs
   runtime directory, as under the systemd unit);
2. the broker is stopped for ``--minutes``: every reading goes to the
   outbox.  The daemons are then stopped (SIGTERM) with the agent still
   away, and the figures include what the stop writes: the checkpoint that
   moves the WAL into the database (which a long outage pays every 4 MiB of
   WAL) and removing the WAL, so they are an upper bound;
3. the broker comes back, the daemons start again and the benchmark checks
   that each one's backlog arrives.

For the outage it prints bytes written per reading (``/proc/<pid>/io``
``write_bytes``, and the device's sectors), the write amplification (bytes
written to the device per byte the readings take in the outbox file) and
MB written per day, and per week-long outage.  The bytes stored per reading
are what a reading of this shape takes in an outbox of 20,000 of them (the
file's live pages / rows), with each daemon's page size.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _blockdev import BlockDevice, can_loop_mount, storage_device  # noqa: E402
from _common import (  # noqa: E402
    Figure,
    base_parser,
    client_ids,
    mock_sensors,
    pibridge_cmd,
    proc_io,
    report,
    simulator,
    spawn,
    stop,
    value_count,
    wait_for,
    write_config,
)

from pibridge.bridge.daemon import OUTBOX_FILE, STATE_FILE  # noqa: E402
from pibridge.outbox import Outbox  # noqa: E402
from pibridge.outbox.files import make_private_dir  # noqa: E402
from pibridge.outbox.limits import WAL_BYTES  # noqa: E402
from pibridge.readings import Reading  # noqa: E402

#: A tmpfs, as systemd's /run is; the status file goes there as it does under the service.
RUNTIME_PARENT = "/dev/shm" if Path("/dev/shm").is_dir() else None

METRICS = ["temperature", "humidity", "pressure"]

#: The settings before the outbox learnt to write less while the agent is away.
BASELINE = {"commit_interval": 1.0, "offline_commit_interval": 1.0}
BASELINE_PAGE_SIZE = 4096
ONLINE_SECONDS = 30.0
#: The write amplification the outbox must stay under while the agent is away.
TARGET_AMPLIFICATION = 4.0
WEEK = 7


@dataclass
class Daemon:
    """One ``pibridge run`` under test: its settings, its own file system, what it wrote."""

    name: str
    options: dict[str, object]
    device: BlockDevice
    root: Path
    config: Path | None = None
    runtime: Path | None = None
    proc: subprocess.Popen | None = None
    client_id: str = ""
    #: write_bytes of the process as it exited (/proc/<pid>/io is gone once it is reaped)
    io_at_exit: int = 0

    @property
    def storage(self) -> Path:
        return self.device.mount / "storage"

    def start(self) -> None:
        self.proc = spawn(pibridge_cmd("run", "--config", str(self.config)), self.root / "pibridge.log",
                          extra_env={"RUNTIME_DIRECTORY": str(self.runtime)})

    def counters(self) -> tuple[int, int]:
        """(write_bytes of the process, bytes written to its device), after writing back what is dirty."""
        written = proc_io(self.proc.pid).get("write_bytes", 0) if self.proc.poll() is None else self.io_at_exit
        self.device.flush()
        return written, self.device.bytes_written()

    def stop(self) -> None:
        """SIGTERM (the outbox commits and checkpoints); remembers write_bytes just before the exit."""
        # /proc/<pid>/io is gone once the process is reaped: read it while it exits.
        last = proc_io(self.proc.pid).get("write_bytes", 0)
        self.proc.terminate()
        deadline = time.monotonic() + 15
        while self.proc.poll() is None and time.monotonic() < deadline:
            last = max(last, proc_io(self.proc.pid).get("write_bytes", 0))
            time.sleep(0.005)
        stop(self.proc)
        self.io_at_exit = last


def files(storage: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file in the storage dir, by path relative to it."""
    out = {}
    for path in storage.rglob("*"):
        if path.is_file():
            st = path.stat()
            out[str(path.relative_to(storage))] = (st.st_size, st.st_mtime_ns)
    return out


def changed(before: dict, after: dict) -> list[str]:
    return sorted(name for name in after if before.get(name) != after[name])


def queued(outbox: Path) -> int:
    """Readings in the outbox file of a stopped daemon (read-only)."""
    con = sqlite3.connect(f"file:{outbox}?mode=ro&immutable=1", uri=True)
    try:
        return con.execute("SELECT count(*) FROM reading").fetchone()[0]
    finally:
        con.close()


def sample_readings(count: int, offset_ms: int) -> list[Reading]:
    """Readings shaped like the mock sensors' (three doubles each, 20 sensors), taken from now on."""
    start_ms = int(time.time() * 1000) + offset_ms
    return [Reading(f"mock{i % 20:02d}", start_ms + i,
                    {m: 20.0 + (i * 0.37 + k) % 7.3 for k, m in enumerate(METRICS)}) for i in range(count)]


def new_file(path: Path, page_size: int | None) -> None:
    """Create an empty outbox file with *page_size* (None: the outbox's own default)."""
    make_private_dir(path.parent)
    if page_size is not None:
        con = sqlite3.connect(path)
        con.execute(f"PRAGMA page_size = {page_size}")
        con.execute("PRAGMA journal_mode = WAL")
        con.close()


def bytes_stored(directory: Path, page_size: int | None) -> float:
    """What one reading takes in a file of 20,000 (live pages / rows)."""
    path = directory / "scratch" / OUTBOX_FILE
    new_file(path, page_size)
    with Outbox(path, auto_commit=False) as ob:
        for b in range(100):
            ob.append(sample_readings(200, b * 200))
            ob.commit()
        stats = ob.stats()
    shutil.rmtree(path.parent)
    return stats.bytes / stats.depth


def after_an_outage(path: Path, page_size: int | None) -> sqlite3.Connection:
    """Make *path* an outbox whose WAL has grown to its full size and which is empty again.

    Returns a connection that keeps the -wal (SQLite deletes it with the
    last connection): close it once the daemon has the file open.
    """
    new_file(path, page_size)
    wal = Path(f"{path}-wal")
    with Outbox(path, auto_commit=False) as ob:
        n = 0
        while not wal.exists() or wal.stat().st_size < WAL_BYTES:
            ob.append(sample_readings(20, n * 20))
            ob.commit()
            n += 1
        for _ in range(20):  # past the checkpoint: the WAL starts over from its beginning
            ob.append(sample_readings(20, n * 20))
            ob.commit()
            n += 1
        ob.remove([e.id for e in ob.peek(10 * n * 20)])
        ob.commit()
        keeper = sqlite3.connect(path)
        keeper.execute("SELECT count(*) FROM reading").fetchone()
    return keeper


def sleep_watching(daemons: list[Daemon], seconds: float, what: str) -> float:
    t0 = time.monotonic()
    while (left := t0 + seconds - time.monotonic()) > 0:
        for d in daemons:
            if d.proc.poll() is not None:
                raise RuntimeError(f"{d.name}: pibridge run exited with {d.proc.returncode} while {what}")
        time.sleep(min(1.0, left))
    return time.monotonic() - t0


def parse_override(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    try:
        return key, float(value)
    except ValueError:
        return key, value


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, help="length of the outage (default 2, 1 with --quick)")
    parser.add_argument("--sensors", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between reads of each sensor")
    parser.add_argument("--dir", help="where the file system images (or, without root, the storage dirs) go")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a [storage] setting for the pibridge daemon (to try one); repeatable")
    args = parser.parse_args(argv)
    minutes = args.minutes or (1.0 if args.quick else 2.0)
    seconds = minutes * 60
    rate = args.sensors / args.interval  # readings a second
    tuned = dict(parse_override(s) for s in args.set)
    if not can_loop_mount():
        print("not root (or no losetup/mkfs.ext4): both daemons share the disk of --dir; "
              "device figures include everything else writing to it", file=sys.stderr)

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pibridge-sdcard-", dir=args.dir)))
        sim = stack.enter_context(simulator(tmp / "sim"))
        daemons = []
        keepers, stored = [], {}
        for name, options, page_size in (("pibridge", tuned, None), ("baseline", BASELINE, BASELINE_PAGE_SIZE)):
            root = tmp / name
            root.mkdir()
            d = Daemon(name, options, stack.enter_context(storage_device(Path(args.dir) if args.dir else None)), root)
            stored[name] = bytes_stored(d.device.mount, page_size)
            keepers.append(after_an_outage(d.storage / OUTBOX_FILE, page_size))
            d.config = write_config(root / "pibridge.toml", sim, d.storage,
                                    mock_sensors(args.sensors, args.interval, METRICS), client_name=f"sdcard-{name}",
                                    **options)
            d.runtime = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pibridge-run-", dir=RUNTIME_PARENT)))
            daemons.append(d)
        for d in daemons:
            known = client_ids(sim)
            d.start()
            d.client_id = wait_for(lambda: next(iter(client_ids(sim) - known), None), 60, f"{d.name} to provision")
        try:
            for d in daemons:
                wait_for(lambda: value_count(sim, d.client_id) > 0, 60, f"the first push of {d.name}")
            for keeper in keepers:
                keeper.close()
            # Start-up writes are not the steady state (identity, outbox creation, the first round
            # of readings, taken before the sensors were set up, passing through the outbox).
            time.sleep(15.0)

            before = {d.name: (files(d.storage), d.counters()) for d in daemons}
            online_s = sleep_watching(daemons, ONLINE_SECONDS, "the agent was reachable")
            online = {}
            for d in daemons:
                io, dev = d.counters()
                online[d.name] = (changed(before[d.name][0], files(d.storage)),
                                  io - before[d.name][1][0], dev - before[d.name][1][1])
                print(f"{d.name}, reachable: {online[d.name][1]:,} B written by the process, "
                      f"{online[d.name][2]:,} B to its device in {online_s:.0f} s; files written in storage: "
                      f"{', '.join(online[d.name][0]) or 'none'}")

            produced = {d.name: value_count(sim, d.client_id) for d in daemons}
            sim.stop_broker()
            # The first seconds of the outage hold the readings in flight when the connection
            # dropped and the outbox noticing; the steady state starts after them.
            time.sleep(5.0)
            start = {d.name: d.counters() for d in daemons}
            offline_s = sleep_watching(daemons, seconds, "the agent was away")
            offline = {}
            running = {d.name: d.counters()[1] for d in daemons}
            for d in daemons:
                d.stop()
                io, dev = d.counters()
                running[d.name] -= start[d.name][1]
                rows = queued(d.storage / OUTBOX_FILE)
                offline[d.name] = (io - start[d.name][0], dev - start[d.name][1], rows, stored[d.name])
                print(f"{d.name}, away: {offline[d.name][0]:,} B written by the process, "
                      f"{offline[d.name][1]:,} B to its device in {offline_s:.0f} s and at the stop; "
                      f"the outbox holds {rows:,} readings; one takes {stored[d.name]:.1f} B in the file")

            sim.start_broker()
            for d in daemons:
                d.start()
            for d in daemons:
                expected = produced[d.name] + args.sensors * len(METRICS) * ((offline_s + 5) / args.interval) * 0.9
                wait_for(lambda: value_count(sim, d.client_id) >= expected, 300,
                         f"the offline backlog of {d.name} to be replayed", 0.5)
                print(f"{d.name}: backlog replayed, {value_count(sim, d.client_id) - produced[d.name]:,} values")
        finally:
            for d in daemons:
                if d.proc is not None and d.proc.poll() is None:
                    stop(d.proc)

    readings = rate * offline_s
    day = 86400 * rate
    pib, base = offline["pibridge"], offline["baseline"]
    amp = lambda o: o[1] / (readings * o[3])  # noqa: E731
    ran = f"{args.sensors} sensors x {len(METRICS)}, {args.interval:g} s, {minutes:g} min away"
    dev_note = "ext4 on a loop device of its own" if daemons[0].device.private else f"shared {daemons[0].device.name}"
    settings = ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}" for k, v in tuned.items())
    figures = [
        Figure("sd card", "written to the device per reading, agent away", pib[1] / readings, "B",
               base[1] / readings, "-", None, f"{ran}; {dev_note}; baseline = {BASELINE}"
               + (f"; pibridge with {settings}" if settings else "")),
        Figure("sd card", "written by the process per reading, agent away (/proc/<pid>/io)", pib[0] / readings, "B",
               base[0] / readings, "-", None),
        Figure("sd card", "bytes a reading takes in the outbox file", pib[3], "B", base[3], "-", None,
               f"page size: pibridge's default, baseline {BASELINE_PAGE_SIZE}"),
        Figure("sd card", "write amplification, agent away (device bytes / bytes stored)", amp(pib), "x", amp(base),
               f"<= {TARGET_AMPLIFICATION:g}x", amp(pib) <= TARGET_AMPLIFICATION,
               "includes the file system's journal and the WAL checkpoint at the stop"),
        Figure("sd card", "of which written while away, per reading", running["pibridge"] / readings, "B",
               running["baseline"] / readings, "-", None, "the rest: the stop (checkpoint, WAL removed)"),
        Figure("sd card", "written per day of outage", pib[1] / readings * day / 1e6, "MB", base[1] / readings * day / 1e6,
               "-", None, f"{rate * 86400:,.0f} readings a day; the stop's writes counted as if paid per reading"),
        Figure("sd card", f"written in a {WEEK}-day outage", pib[1] / readings * day * WEEK / 1e6, "MB",
               base[1] / readings * day * WEEK / 1e6, "-", None),
        Figure("sd card", "written to the device, agent reachable", online["pibridge"][2] * 3600 / online_s / 1e6, "MB/h",
               None, "none to the outbox", not online["pibridge"][0],
               f"files written in storage: {', '.join(online['pibridge'][0]) or 'none'}; {STATE_FILE} on tmpfs "
               "as under systemd"),
    ]
    report(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
