"""Outbox end to end: 1,000,000 readings buffered while the agent is down, then replayed.

Run:  .venv/bin/python bench/replay_bench.py [--quick] [--readings 1000000] [--sensors 200] [--metrics 5]

The daemon's own path, with the daemon's settings (bench/_contenders.py):

1. **write**: the agent is unreachable; readings are submitted to
   :class:`pibridge.bridge.delivery.Delivery` as the sensor readers submit
   them, and it appends them to the :class:`pibridge.outbox.Outbox` with
   batched durable commits (``commit_interval`` 1 s, as in the default
   config).  Figures: readings/s until the last one is committed, and bytes
   on disk (database + WAL, allocated blocks) per reading.
2. **replay**: the agent is back; Delivery replays the whole outbox in order
   (at most ``replay_window`` unacknowledged at a time, each reading removed
   only after its PUBACK) until it is empty and Delivery is live again.
3. **baseline**: a bare paho QoS 1 publisher sends the same pushes from
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Figure, base_parser, dir_bytes, report, simulator, wait_stored  # noqa: E402
from push_bench import contend, identity_job, setup_client  # noqa: E402

#: What the daemon passes to Outbox and Delivery with a default [storage] table, minus the limits.
OUTBOX_OPTIONS = {"max_bytes": 2**40, "max_age": None, "commit_interval": 1.0}
DELIVERY_OPTIONS = {"ack_window": 2.0}


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, help="readings to buffer (default 1,000,000; 50,000 with --quick)")
    parser.add_argument("--sensors", type=int, help="sensors (default 200; 20 with --quick)")
    parser.add_argument("--metrics", type=int, default=5)
    parser.add_argument("--dir", help="where the outbox goes (a real disk; default: the system temp dir)")
    parser.add_argument("--profile", metavar="PATH", help="write a cProfile (all threads) of the replay to PATH")
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
        # The simulator stores what the broker hands it at its own pace, far behind a million
        # pushes (and the broker keeps at most 100,000 queued for it): an indication, not a check.
        expected = 2 * total * args.metrics
        stored = wait_stored(sim, identity.client_id, expected, timeout=60)
        print(f"  values stored by the simulator so far: {stored:,} of {expected:,}")

    note = f"{total:,} readings x {args.metrics} doubles"
    w_rate, r_rate, b_rate = total / fill["seconds"], total / replay["seconds"], total / bare["seconds"]
    figures = [
        Figure("outbox", "readings/s written (durable batches)", w_rate, "readings/s", None, ">= 20,000", w_rate >= 20_000, note),
        Figure("outbox", "bytes on disk per reading", on_disk / total, "B", None, "<= 80", on_disk / total <= 80, note),
        Figure("outbox", "replay readings/s", r_rate, "readings/s", b_rate, ">= 0.5x bare", r_rate >= 0.5 * b_rate, note),
        Figure("outbox", "replay CPU per reading", replay["cpu"] / total * 1e6, "µs", bare["cpu"] / total * 1e6, "-", None, note),
    ]
    if depth != total or left_depth not in (0, None):
        figures.append(Figure("outbox", "readings lost or left over", abs(total - (depth or 0)) + (left_depth or 0),
                              "readings", None, "0", False, "depth after write / after replay"))
    report(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
