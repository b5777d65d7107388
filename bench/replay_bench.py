"""Outbox end to end: 1,000,000 readings buffered while the agent is down, then replayed.

Run:  .venv/bin/python bench/replay_bench.py [--quick] [--readings 1000000] [--sensors 200] [--metrics 5] [--repeat 3]

The daemon's own path, with the daemon's settings (bench/_contenders.py):

1. **write**: the agent is unreachable; readings are submitted to
   :class:`pibridge.bridge.delivery.Delivery` as the sensor readers submit
   them, and it appends them to the :class:`pibridge.outbox.Outbox` with
   batched durable commits (``commit_interval`` 1 s, as in the default
   config).  Figures: readings/s until the last one is committed, and bytes
   on disk (database + WAL, allocated blocks) per reading.
2. **replay**: the agent is back; Delivery replays the whole outbox in order
   (here without the daemon's confirmations by ping, so at the broker's pace)
   (at most ``replay_window`` unacknowledged at a time, each reading removed
   only after its PUBACK) until it is empty and Delivery is live again.
3. **the daemon**: ``pibridge run`` replays an outbox of ``--daemon-readings``
   (20,000) left as after an outage, including its pacing by the agent's
   answers (a replayed reading counts as delivered once the agent answered
   its push, "Sensor was updated."; at most 512 unanswered), until the
   outbox is empty, while its 20 sensors go on reading every second.
   Figures: its replay rate against the bare publisher sending as many
   pushes at the broker's pace (4.) and against the bare publisher held to
   the agent's answers the same way, and the delay from read time to the
   agent of the readings taken during the replay.  The three run in turn
   ``--repeat`` times (3), each once the simulator is idle; the medians count.
4. **baseline**: a bare paho QoS 1 publisher sends the same pushes from
   memory, over its own mutual-TLS connection with the same certificate,
   at most two rounds of pushes ahead of its PUBACKs.

Readings have ``--metrics`` doubles each (five by default, the same pushes
as the push benchmark).  The outbox is opened with no size or age limit, so
nothing is dropped; the benchmark checks its depth after writing and that
it is empty after the replay.  The outbox's own micro-benchmark against a
naive SQLite table is bench/outbox_bench.py.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Figure, base_parser, dir_bytes, report, simulator, wait_stored  # noqa: E402
from push_bench import contend, identity_job, setup_client  # noqa: E402

#: What the daemon passes to Outbox and Delivery with a default [storage] table, minus the limits.
OUTBOX_OPTIONS = {"max_bytes": 2**40, "max_age": None, "commit_interval": 1.0}
DELIVERY_OPTIONS = {"ack_window": 2.0}


DAEMON_QUANTITIES = ["temperature", "humidity", "pressure", "voltage", "current"]


def daemon_replay(sim, workdir: Path, readings: int, sensors: int) -> dict:
    """``pibridge run`` replaying an outbox of ``readings`` while its sensors read every second.

    The outbox is filled through :class:`Outbox` before the daemon starts, with
    readings of its configured mock sensors from before the run, as the daemon
    itself would have left them after an outage.  The clock runs from the
    daemon's "delivering to the agent" to an empty outbox, so it includes the
    daemon's own pacing: replayed readings wait for the agent's answers besides
    their PUBACKs.  Returns seconds, CPU seconds, depth left, and the delay
    (ms, p50 and p99) of the live readings taken meanwhile.
    """
    from pibridge.outbox.store import Outbox, read_stats
    from pibridge.readings import Reading

    from _common import mock_sensors, pibridge_cmd, proc_cpu_seconds, spawn, stop, wait_for, write_config
    from _observe import arrivals, next_grid, percentile, wait_arrived

    storage = workdir / "daemon-storage"
    config = write_config(workdir / "daemon.toml", sim, storage,
                          mock_sensors(sensors, 1.0, DAEMON_QUANTITIES), client_name="replaydaemon",
                          outbox_max_bytes=2**40)
    log = workdir / "daemon.log"
    # Provision and set the sensors up first, so the clock below holds the replay only.
    daemon = spawn(pibridge_cmd("run", "--config", str(config)), log)
    try:
        wait_for(lambda: "the outbox is empty; sending readings live" in log.read_text(), 120, "the daemon to go live")
    finally:
        stop(daemon)
    start_ms = int(time.time() * 1000) - readings * 10 - 60_000
    with Outbox(storage / "outbox.db", max_bytes=2**40, max_age=None) as outbox:
        for first in range(0, readings, 10_000):
            outbox.append(
                Reading(f"mock{i % sensors:02d}", start_ms + i * 10,
                        {q: 20.0 + (i + j) % 100 / 10 for j, q in enumerate(DAEMON_QUANTITIES)})
                for i in range(first, min(readings, first + 10_000))
            )
            outbox.commit()
    marker = log.stat().st_size
    daemon = spawn(pibridge_cmd("run", "--config", str(config)), log)
    try:
        def attached():
            with log.open("rb") as f:
                f.seek(marker)
                return b"delivering to the agent" in f.read()

        wait_for(attached, 120, "the daemon to connect", 0.01)
        t0, c0, unix0 = time.monotonic(), proc_cpu_seconds(daemon.pid), time.time()

        def drained():
            stats = read_stats(storage / "outbox.db")
            return stats is not None and stats.depth == 0

        wait_for(drained, 3600, "the daemon to empty its outbox", 0.2)
        seconds, cpu, unix1 = time.monotonic() - t0, proc_cpu_seconds(daemon.pid) - c0, time.time()
        start, end = next_grid(1.0, unix0), float(int(unix1))
        client_id = next(c["client_id"] for c in sim.store.clients() if c["name"] == "replaydaemon")
        if end > start:
            wait_arrived(sim, client_id, int(end - start) * sensors * len(DAEMON_QUANTITIES), start, end, 30)
    finally:
        stop(daemon)
    left = read_stats(storage / "outbox.db")
    live = arrivals(sim, client_id, sensors, len(DAEMON_QUANTITIES), 1.0, start, end) \
        if end > start else None
    return {"seconds": seconds, "cpu": cpu, "left": left.depth if left else 0,
            "live50": percentile(live.delay_ms, 50) if live and live.delay_ms else float("nan"),
            "live99": percentile(live.delay_ms, 99) if live and live.delay_ms else float("nan"),
            "live": live.readings if live else 0, "live_due": live.expected_readings if live else 0}


def wait_quiet(sim, client_id: str, settle: float = 1.0, timeout: float = 600) -> int:
    """Wait until the simulator has stored nothing new for the client for *settle* s (it works off
    what the broker queued for it at its own pace; the broker drops beyond 100,000 queued)."""
    from _common import stored_count

    deadline = time.monotonic() + timeout
    last, since = stored_count(sim, client_id), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = stored_count(sim, client_id)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= settle:
            break
    return last


def versus_bare(sim, workdir: Path, job: dict, identity, readings: int, n_sensors: int, repeat: int) -> dict:
    """``pibridge run`` replaying *readings*, the bare publisher sending as many at the broker's pace and
    the bare publisher held to the agent's answers, *repeat* times in turn; the median run of each."""
    rounds = max(1, readings // n_sensors)
    runs: dict[str, list[dict]] = {"bare": [], "daemon": [], "confirmed": []}
    for _ in range(repeat):
        # Each waits for the agent, or is compared with what does: none starts while the
        # simulator still works off an earlier run.
        wait_quiet(sim, identity.client_id)
        runs["bare"].append(contend("bare", job | {"rounds": rounds, "window": 2 * n_sensors}, workdir)
                            | {"pushes": rounds * n_sensors})
        wait_quiet(sim, identity.client_id)
        runs["daemon"].append(daemon_replay(sim, workdir, readings, 20))
        wait_quiet(sim, identity.client_id)
        runs["confirmed"].append(contend("bare_confirmed", job | {"rounds": rounds, "credit": 512}, workdir)
                                 | {"pushes": rounds * n_sensors})
        b, d, c = runs["bare"][-1], runs["daemon"][-1], runs["confirmed"][-1]
        print(f"  pibridge run replayed {readings / d['seconds']:10,.0f} readings/s  ({d['seconds']:.1f} s, "
              f"{d['cpu']:.1f} s CPU); depth left {d['left']}; live readings meanwhile: delay p50 "
              f"{d['live50']:.0f} ms, p99 {d['live99']:.0f} ms ({d['live']} of {d['live_due']} arrived); "
              f"bare {b['pushes'] / b['seconds']:,.0f} pushes/s at the broker's pace, "
              f"{c['pushes'] / c['seconds']:,.0f} held to the agent's answers")
    return {name: sorted(got, key=lambda r: r["seconds"])[len(got) // 2] for name, got in runs.items()}


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, help="readings to buffer (default 1,000,000; 50,000 with --quick)")
    parser.add_argument("--sensors", type=int, help="sensors (default 200; 20 with --quick)")
    parser.add_argument("--metrics", type=int, default=5)
    parser.add_argument("--dir", help="where the outbox goes (a real disk; default: the system temp dir)")
    parser.add_argument("--profile", metavar="PATH", help="write a cProfile (all threads) of the replay to PATH")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of pibridge run and of the bare publishers beside it, alternating (medians)")
    parser.add_argument("--daemon-readings", type=int,
                        help="readings replayed by `pibridge run` itself (default 20,000; 5,000 with --quick; 0: skip)")
    args = parser.parse_args(argv)
    n_sensors = args.sensors or (20 if args.quick else 200)
    wanted = args.readings or (50_000 if args.quick else 1_000_000)
    rounds = max(1, wanted // n_sensors)
    total = rounds * n_sensors

    with tempfile.TemporaryDirectory(prefix="pibridge-replay-", dir=args.dir) as tmp, simulator(Path(tmp) / "sim") as sim:
        tmp = Path(tmp)
        identity, plan = setup_client(sim, tmp, "replaybench", n_sensors, args.metrics)
        outbox_dir = tmp / "outbox"
        outbox_dir.mkdir()
        job = identity_job(identity, sim) | plan | {
            "rounds": rounds,
            "timeout": 3600,
            "outbox": str(outbox_dir / "outbox.db"),
            "outbox_options": OUTBOX_OPTIONS,
            "delivery_options": DELIVERY_OPTIONS,
        }
        print(f"outbox: {total:,} readings of {args.metrics} values from {n_sensors} sensors")

        fill = contend("fill", job, tmp)
        on_disk = dir_bytes(outbox_dir)
        depth = fill["stats"].get("depth")
        print(f"  written  {total / fill['seconds']:10,.0f} readings/s  ({fill['seconds']:.1f} s, "
              f"{fill['cpu']:.1f} s CPU); {on_disk:,} bytes on disk = {on_disk / total:.1f} B/reading; depth {depth}")
        if depth != total:
            print(f"  WARNING: the outbox holds {depth} readings, not {total}: {fill['stats']}")

        replay = contend("replay", job, tmp, profile=args.profile)
        print(f"  replayed {total / replay['seconds']:10,.0f} readings/s  ({replay['seconds']:.1f} s, {replay['cpu']:.1f} s CPU)")
        # Queuing a million publishes in one loop starves paho's network thread (the GIL, paho's
        # message lock) and measures the queue, not the link: two rounds in flight, as in push_bench.
        bare = contend("bare", job | {"window": 2 * n_sensors}, tmp)
        print(f"  bare     {total / bare['seconds']:10,.0f} pushes/s    ({bare['seconds']:.1f} s, {bare['cpu']:.1f} s CPU)")
        from pibridge.outbox.store import read_stats

        left = read_stats(outbox_dir / "outbox.db")
        left_depth = getattr(left, "depth", None)
        print(f"  outbox depth after the replay: {left_depth}")
        daemon_n = args.daemon_readings if args.daemon_readings is not None else (5_000 if args.quick else 20_000)
        if daemon_n:
            runs = versus_bare(sim, tmp, job, identity, daemon_n, n_sensors, args.repeat)
            d, b_daemon, confirmed = runs["daemon"], runs["bare"], runs["confirmed"]
            d_seconds, d_cpu, d_left = d["seconds"], d["cpu"], d["left"]
            c_total = confirmed["pushes"]
        # The simulator stores what the broker hands it at its own pace, far behind a million
        # pushes (and the broker keeps at most 100,000 queued for it): an indication, not a check.
        expected = (2 * total + (args.repeat * (daemon_n + 2 * c_total) if daemon_n else 0)) * args.metrics
        stored = wait_stored(sim, identity.client_id, expected, timeout=60)
        print(f"  values stored by the simulator so far: {stored:,} of {expected:,}")

    note = f"{total:,} readings x {args.metrics} doubles"
    w_rate, r_rate, b_rate = total / fill["seconds"], total / replay["seconds"], total / bare["seconds"]
    figures = [
        Figure("outbox", "readings/s written (durable batches)", w_rate, "readings/s", None, ">= 20,000", w_rate >= 20_000, note),
        Figure("outbox", "bytes on disk per reading", on_disk / total, "B", None, "<= 80", on_disk / total <= 80, note),
        Figure("outbox", "replay readings/s, Delivery at broker pace", r_rate, "readings/s", b_rate, ">= 0.5x bare",
               r_rate >= 0.5 * b_rate, note + "; no agent confirmations"),
        Figure("outbox", "replay CPU per reading", replay["cpu"] / total * 1e6, "µs", bare["cpu"] / total * 1e6, "-", None, note),
    ]
    if daemon_n:
        d_rate = daemon_n / d_seconds
        c_rate = c_total / confirmed["seconds"]
        db_rate = b_daemon["pushes"] / b_daemon["seconds"]
        each = f"median of {args.repeat} runs each, alternating"
        figures += [
            Figure("outbox", "replay readings/s, pibridge run vs bare at broker pace", d_rate, "readings/s", db_rate,
                   ">= 0.6x bare", d_rate >= 0.6 * db_rate,
                   f"{daemon_n:,} readings; the bare publisher does not wait for the agent; {each}"),
            Figure("outbox", "replay readings/s, pibridge run vs bare held to the agent's answers", d_rate, "readings/s",
                   c_rate, "-", None, f"both wait for the agent, at most 512 unanswered; {each}"),
            Figure("outbox", "live readings' delay to the agent during the replay, p99", d["live99"], "ms", None,
                   "<= 3,000 ms", d["live99"] <= 3000,
                   f"p50 {d['live50']:.0f} ms; 20 sensors x 5 at 1 s; {d['live']} of {d['live_due']} readings arrived"),
            Figure("outbox", "replay CPU per reading, pibridge run", d_cpu / daemon_n * 1e6, "µs",
                   b_daemon["cpu"] / b_daemon["pushes"] * 1e6, "-", None,
                   f"{daemon_n:,} readings, its 20 sensors reading meanwhile"),
        ]
    if depth != total or left_depth not in (0, None) or (daemon_n and d_left):
        figures.append(Figure("outbox", "readings lost or left over", abs(total - (depth or 0)) + (left_depth or 0),
                              "readings", None, "0", False, "depth after write / after replay"))
    report(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
