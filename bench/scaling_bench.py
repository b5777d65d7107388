"""The cost curve: `pibridge run` with 10, 50, 200 and 1,000 mock sensors read every second.

Run:  .venv/bin/python bench/scaling_bench.py [--quick] [--sizes 10,50,200,1000] [--window 30]

For each size a fresh daemon (its own storage, identity provisioned first)
reads N mock sensors of three quantities each, once a second, and pushes to
the agent simulator on loopback.  Once every sensor's first value has
arrived, a window of ``--window`` seconds on the clock grid is measured:

* CPU (% of one core) and RSS (mean and peak) of the daemon, from
  /proc/<pid>, and its thread count;
* jitter against the clock grid: each reading's read time (the push's
  timestamp, as the simulator stored it) minus its grid slot, p50 and p99;
* reading-to-agent delay: the simulator's arrival time minus the read time,
  p50 and p99 (both clocks are this machine's);
* completeness: values due in the window (sensors x quantities x seconds)
  against values stored with a read time inside it, after up to
  ``--settle`` seconds for late ones to arrive.

The baseline of every row is the smallest size measured in the same run
(for CPU scaled by the number of sensors, a straight line from it): the
ratio says how far the curve bends.  At the largest size a bare paho
publisher (``bench/bare_daemon.py``: one client, the same pushes on the
same schedule, nothing else) runs against the same simulator too, as the
baseline of CPU and delay: what is left of the delay with it is the
simulator's and the broker's.  The simulator, its Mosquitto broker and this
script share the machine's cores with the daemon; their CPU is printed
beside each size, as they are the first suspects when values arrive late.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Figure, base_parser, mock_sensors, pibridge_cmd, proc_cpu_seconds, report, simulator, spawn, stop, wait_for, write_config  # noqa: E402
from _observe import Sampler, arrivals, fmt_ms, next_grid, percentile, provision_client, sensors_seen, sleep_until, stopping, wait_arrived  # noqa: E402

METRICS = ["temperature", "humidity", "pressure"]


def self_cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def status(config: Path) -> str:
    """Where the daemon's readings are, from ``pibridge status --json``: delivery mode, outbox depth, reads."""
    done = subprocess.run(pibridge_cmd("status", "--config", str(config), "--json"), capture_output=True, text=True,
                          timeout=60)
    try:
        info = json.loads(done.stdout)
    except ValueError:
        return f"pibridge status said: {(done.stdout + done.stderr).strip()[-200:]}"
    state = info.get("state") or {}
    delivery = state.get("delivery") or {}
    reads = sum(s.get("reads", 0) for s in (state.get("sensors") or {}).values())
    depth = (info.get("outbox") or {}).get("depth")
    return (f"delivery {delivery.get('mode')}, {delivery.get('delivered')} delivered, {delivery.get('in_flight')} in "
            f"flight, {delivery.get('unconfirmed')} unconfirmed, {delivery.get('spilled')} spilled; outbox depth "
            f"{depth}; {reads:,} reads since start")


def measure(sim, workdir: Path, n: int, interval: float, window: int, settle: float, ready_timeout: float) -> dict:
    """One size: the daemon's figures over ``window`` grid seconds once every sensor has pushed."""
    tmp = workdir / f"n{n}"
    tmp.mkdir()
    config = write_config(tmp / "pibridge.toml", sim, tmp / "storage", mock_sensors(n, interval, METRICS),
                          client_name=f"scale{n}")
    log = tmp / "pibridge.log"
    client_id = provision_client(config, log)
    with stopping() as running:
        started = time.monotonic()
        daemon = spawn(pibridge_cmd("run", "--config", str(config)), log)
        running.append(daemon)

        def all_pushing():
            if daemon.poll() is not None:
                raise RuntimeError(f"pibridge run exited with {daemon.returncode}; see {log}")
            return sensors_seen(sim, client_id) >= n

        try:
            wait_for(all_pushing, ready_timeout, f"values from all {n} sensors", 0.5)
        except TimeoutError:
            seen, where = sensors_seen(sim, client_id), status(config)
            print(f"  {n:5d} sensors: only {seen} had pushed a value after {ready_timeout:g} s; {where}", flush=True)
            return {"n": n, "ready_s": None, "seen": seen, "where": where}
        ready = time.monotonic() - started
        marker = log.stat().st_size
        start = next_grid(interval) + interval
        sleep_until(start)
        broker_pid = sim.broker.pid
        b0, s0 = (proc_cpu_seconds(broker_pid) if broker_pid else 0.0), self_cpu()
        w = Sampler(daemon.pid).run(window, daemon)
        end = start + window
        broker_cpu = (proc_cpu_seconds(broker_pid) - b0) if broker_pid else float("nan")
        sim_cpu = self_cpu() - s0
        where = status(config)
        expected = n * len(METRICS) * int(round(window / interval))
        stored = wait_arrived(sim, client_id, expected, start, end, settle)
        got = arrivals(sim, client_id, n, len(METRICS), interval, start, end)
        code = stop(daemon)
    with log.open("rb") as f:
        f.seek(marker)
        # The delivery thread's own words when PUBACKs come later than its ack window (diagnostic only).
        spills = f.read().count(b"moved to the outbox")
    row = {
        "n": n, "ready_s": ready, "cpu": w.cpu_percent, "rss": w.rss_mean_mb, "hwm": w.hwm_mb,
        "threads": w.threads_max, "jitter50": percentile(got.jitter_ms, 50), "jitter99": percentile(got.jitter_ms, 99),
        "delay50": percentile(got.delay_ms, 50), "delay99": percentile(got.delay_ms, 99),
        "expected": got.expected_values, "stored": stored, "readings": got.readings,
        "expected_readings": got.expected_readings, "sim_cpu": 100 * sim_cpu / w.seconds, "where": where,
        "broker_cpu": 100 * broker_cpu / w.seconds, "exit": code, "spills": spills,
    }
    print(f"  {n:5d} sensors: ready after {ready:5.1f} s; CPU {row['cpu']:5.1f} %, RSS {row['rss']:5.1f} MB "
          f"(peak {row['hwm']:.1f}), {row['threads']} threads; jitter p50 {fmt_ms(row['jitter50'])} "
          f"p99 {fmt_ms(row['jitter99'])}; delay p50 {fmt_ms(row['delay50'])} p99 {fmt_ms(row['delay99'])}; "
          f"stored {stored:,} of {expected:,} values; simulator {row['sim_cpu']:.0f} %, "
          f"broker {row['broker_cpu']:.0f} % of a core; {spills} spills to the outbox; exit {code}", flush=True)
    print(f"        at the end of the window: {where}", flush=True)
    return row


def measure_bare(sim, workdir: Path, n: int, interval: float, window: int, settle: float) -> dict:
    """The same load from ``bench/bare_daemon.py`` (one paho client, nothing else): its CPU, RSS, threads and delay."""
    from _common import provision_identity, spawn_bare_daemon

    identity = provision_identity(sim, workdir / f"bare{n}", f"bare{n}")
    with stopping() as running:
        bare = spawn_bare_daemon(sim, identity, n, len(METRICS), interval, workdir / f"bare{n}.log")
        running.append(bare)
        wait_for(lambda: sensors_seen(sim, identity.client_id) >= n, 300, f"values from all {n} bare sensors", 0.5)
        start = next_grid(interval) + interval
        sleep_until(start)
        w = Sampler(bare.pid).run(window, bare)
        end = start + window
        expected = n * len(METRICS) * int(round(window / interval))
        stored = wait_arrived(sim, identity.client_id, expected, start, end, settle)
        got = arrivals(sim, identity.client_id, n, len(METRICS), interval, start, end)
    row = {"cpu": w.cpu_percent, "rss": w.rss_mean_mb, "threads": w.threads_max, "stored": stored, "expected": expected,
           "delay50": percentile(got.delay_ms, 50), "delay99": percentile(got.delay_ms, 99)}
    print(f"  {n:5d} sensors, bare publisher: CPU {row['cpu']:5.1f} %, RSS {row['rss']:5.1f} MB, {row['threads']} threads; "
          f"delay p50 {fmt_ms(row['delay50'])} p99 {fmt_ms(row['delay99'])}; stored {stored:,} of {expected:,} values",
          flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--sizes", help="comma-separated sensor counts (default 10,50,200,1000; 10,50,200 with --quick)")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--window", type=int, help="seconds measured per size (default 30; 10 with --quick)")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds to wait for late values after the window")
    parser.add_argument("--ready-timeout", type=float, default=180.0,
                        help="seconds to wait for every sensor's first value before giving up on a size")
    parser.add_argument("--bare", action=argparse.BooleanOptionalAction, default=True,
                        help="also run a bare publisher at the largest size (the simulator's share of the delay)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in (args.sizes or ("10,50,200" if args.quick else "10,50,200,1000")).split(",")]
    window = args.window or (10 if args.quick else 30)
    rows = []
    with tempfile.TemporaryDirectory(prefix="pibridge-scaling-") as tmp, simulator(Path(tmp) / "sim") as sim:
        print(f"scaling: {', '.join(map(str, sizes))} mock sensors x {len(METRICS)} quantities, every "
              f"{args.interval:g} s, {window} s measured each")
        for n in sizes:
            rows.append(measure(sim, Path(tmp), n, args.interval, window, args.settle, args.ready_timeout))
        bare = measure_bare(sim, Path(tmp), sizes[-1], args.interval, window, args.settle) if args.bare else None

    measured = [r for r in rows if r["ready_s"] is not None]
    base = measured[0] if measured else None
    figures: list[Figure] = []
    for r in rows:
        n = r["n"]
        if r["ready_s"] is None or base is None:
            figures.append(Figure("scaling", f"sensors pushing after {args.ready_timeout:g} s, {n} sensors", r["seen"],
                                  "sensors", n, "all", False, r["where"]))
            continue
        k = n / base["n"]
        note = f"{n} sensors x {len(METRICS)}, {args.interval:g} s, {window} s"
        complete = r["stored"] >= r["expected"]
        figures += [
            Figure("scaling", f"CPU, {n} sensors", r["cpu"], "% of a core", base["cpu"] * k,
                   "-", None, f"baseline: {base['n']} sensors x {k:g}; every sensor pushing {r['ready_s']:.0f} s after exec"),
            Figure("scaling", f"RSS mean, {n} sensors", r["rss"], "MB", base["rss"], "-", None,
                   f"baseline: {base['n']} sensors; peak {r['hwm']:.1f} MB"),
            Figure("scaling", f"threads, {n} sensors", r["threads"], "", base["threads"], "-", None,
                   f"baseline: {base['n']} sensors"),
            Figure("scaling", f"jitter p99 against the grid, {n} sensors", r["jitter99"], "ms", base["jitter99"],
                   "-", None, f"p50 {fmt_ms(r['jitter50'])}"),
            Figure("scaling", f"delay to the agent p99, {n} sensors", r["delay99"], "ms", base["delay99"],
                   "< 1,000 ms", r["delay99"] < 1000, f"p50 {fmt_ms(r['delay50'])}"),
            Figure("scaling", f"values stored of those due, {n} sensors", r["stored"], "values", r["expected"],
                   "all", complete, note + ("" if complete else
                                             f"; {r['readings']:,} of {r['expected_readings']:,} readings")),
        ]
    if bare is not None and rows[-1]["ready_s"] is not None:
        r, n = rows[-1], rows[-1]["n"]
        note = f"baseline: bench/bare_daemon.py, {n} sensors x {len(METRICS)} to the same simulator"
        figures += [
            Figure("scaling", f"CPU, {n} sensors, against a bare publisher", r["cpu"], "% of a core", bare["cpu"], "-",
                   None, note),
            Figure("scaling", f"delay to the agent p99, {n} sensors, against a bare publisher", r["delay99"], "ms",
                   bare["delay99"], "-", None, f"bare p50 {fmt_ms(bare['delay50'])}, stored {bare['stored']:,} of "
                   f"{bare['expected']:,}"),
        ]
    report(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
