"""SD card wear: bytes ``pibridge run`` writes per hour with the agent reachable and unreachable.

Run:  .venv/bin/python bench/sdcard_bench.py [--quick] [--minutes 5] [--sensors 20] [--interval 1.0]

``pibridge run`` pushes 20 mock sensors (three quantities each) to a
simulator on loopback.  Two phases of ``--minutes`` each: first the broker
is up (every reading should go straight out: the daemon should write only
its log; its state file goes to a tmpfs runtime directory, as under the
systemd unit), then the broker is stopped (every reading must go
to the outbox).  For each phase the benchmark takes the daemon's
``write_bytes`` from /proc/<pid>/io (what reached the block layer, i.e. the
card) and the growth of the storage directory, and extrapolates to an hour.
While the agent is reachable it also lists which files in the storage dir
changed: the target is met when none did (the outbox untouched: no
per-reading writes).
After the offline phase the broker comes back and the benchmark checks that
the backlog arrives.

The storage directory lives under ``--dir`` (default: the system temp
directory), which must be a real block device, not tmpfs.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    Figure,
    base_parser,
    client_ids,
    dir_bytes,
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

from pibridge.bridge.daemon import STATE_FILE, STATE_INTERVAL  # noqa: E402

#: A tmpfs, as systemd's /run is; the status file goes there as it does under the service.
RUNTIME_PARENT = "/dev/shm" if Path("/dev/shm").is_dir() else None

METRICS = ["temperature", "humidity", "pressure"]


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


def phase(daemon, storage: Path, seconds: float, what: str) -> tuple[int, int, float]:
    """Write bytes and storage growth of ``daemon`` over ``seconds``; the elapsed time."""
    io0, size0, t0 = proc_io(daemon.pid).get("write_bytes", 0), dir_bytes(storage), time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        if daemon.poll() is not None:
            raise RuntimeError(f"pibridge run exited with {daemon.returncode} while {what}")
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
    io1, size1 = proc_io(daemon.pid).get("write_bytes", 0), dir_bytes(storage)
    return io1 - io0, size1 - size0, time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, help="length of each phase (default 5, 0.5 with --quick)")
    parser.add_argument("--sensors", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between reads of each sensor")
    parser.add_argument("--dir", help="where the storage directory goes (a real disk)")
    args = parser.parse_args(argv)
    minutes = args.minutes or (0.5 if args.quick else 5.0)
    seconds = minutes * 60
    readings_per_hour = args.sensors * 3600 / args.interval

    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="pibridge-sdcard-", dir=args.dir) as tmp, \
            simulator(Path(tmp) / "sim") as sim:
        tmp = Path(tmp)
        storage = tmp / "storage"
        config = write_config(
            tmp / "pibridge.toml", sim, storage, mock_sensors(args.sensors, args.interval, METRICS), client_name="sdcard"
        )
        known = client_ids(sim)
        # As under systemd (RuntimeDirectory=pibridge): the status file goes to a tmpfs.
        runtime = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pibridge-run-", dir=RUNTIME_PARENT)))
        daemon = spawn(pibridge_cmd("run", "--config", str(config)), tmp / "pibridge.log",
                       extra_env={"RUNTIME_DIRECTORY": str(runtime)})
        try:
            cid = wait_for(lambda: next(iter(client_ids(sim) - known), None), 60, "the daemon to provision")
            wait_for(lambda: value_count(sim, cid) > 0, 60, "the first push")
            # Settle: start-up writes are not the steady state (identity, outbox creation, and the
            # first round of readings, taken before the sensors were set up, passing through the outbox).
            time.sleep(30.0 if seconds >= 120 else 15.0)
            before = files(storage)
            online_io, online_growth, online_s = phase(daemon, storage, seconds, "the agent was reachable")
            online_files = changed(before, files(storage))
            state_size = (runtime / STATE_FILE).stat().st_size
            print(f"reachable:   {online_io:,} bytes written, storage grew {online_growth:,} bytes in {online_s:.0f} s; "
                  f"files written in storage: {', '.join(online_files) or 'none'} "
                  f"({STATE_FILE}, {state_size:,} bytes, is in {runtime})")
            sim.stop_broker()
            offline_io, offline_growth, offline_s = phase(daemon, storage, seconds, "the agent was down")
            print(f"unreachable: {offline_io:,} bytes written, storage grew {offline_growth:,} bytes in {offline_s:.0f} s")
            produced = value_count(sim, cid)
            sim.start_broker()
            expected = produced + args.sensors * len(METRICS) * (offline_s / args.interval) * 0.9
            wait_for(lambda: value_count(sim, cid) >= expected, 300, "the offline backlog to be replayed", 0.5)
            print(f"backlog replayed: {value_count(sim, cid) - produced:,} values")
        finally:
            stop(daemon)
        log_bytes = (tmp / "pibridge.log").stat().st_size

    per_hour = lambda n, s: n * 3600 / s  # noqa: E731
    on_h, off_h = per_hour(online_io, online_s), per_hour(offline_io, offline_s)
    on_pr = on_h / readings_per_hour
    off_pr = off_h / readings_per_hour
    only_state = not online_files
    ran = f"{args.sensors} sensors x {len(METRICS)}, {args.interval:g} s, {minutes:g} min per phase"
    figures = [
        Figure("sd card", "written/h, agent reachable", on_h / 1e6, "MB/h", off_h / 1e6,
               "log only", only_state,
               f"files written in storage: {', '.join(online_files) or 'none'}; {STATE_FILE} ({state_size:,} B "
               f"every {STATE_INTERVAL:g} s) on tmpfs as under systemd"),
        Figure("sd card", "written per reading, reachable", on_pr, "B", off_pr, "no per-reading writes",
               only_state, "baseline = unreachable; outbox files untouched" if only_state else "baseline = unreachable"),
        Figure("sd card", "written/h, agent unreachable", off_h / 1e6, "MB/h", None, "-", None, ran),
        Figure("sd card", "storage growth/h, reachable", per_hour(online_growth, online_s) / 1e6, "MB/h", None, "~0", None),
        Figure("sd card", "storage growth/h, unreachable", per_hour(offline_growth, offline_s) / 1e6, "MB/h", None, "-", None),
        Figure("sd card", "log file size at end", log_bytes / 1e3, "kB", None, "-", None, "stdout+stderr of the daemon"),
    ]
    report(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
