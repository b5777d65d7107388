"""Outbox throughput and size on disk, against a naive SQLite table measured in the same run.

Writes N readings (five doubles each, from twenty sensors with realistic
names) the way the bridge spills them: appended in small groups, committed
durably (a WAL transaction fsynced, synchronous=FULL) every ``--batch``
readings.  Then drains them the way replay does without a network: peek the
oldest, remove them, commit.  The baseline does the same with one row per
reading holding the sensor name and a JSON object of the values, with the
same pragmas and the same batching.

    .venv/bin/python bench/outbox_bench.py              # 1,000,000 readings
    .venv/bin/python bench/outbox_bench.py --count 100000

Targets: >= 20,000 readings/s written; <= 80 bytes per reading on disk.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import Figure, base_parser, machine, report

from pibridge.outbox import Outbox
from pibridge.readings import Reading

SENSORS = [
    f"{place}-{chip}"
    for place in ("greenhouse", "cellar", "attic", "garage", "nursery")
    for chip in ("bme280", "bmp280", "sht31", "ccs811")
]
QUANTITIES = ("temperature", "humidity", "pressure", "gas_resistance", "altitude")
GROUP = 100  # readings per append, as the bridge hands over what missed its ack window


def make_readings(count: int, seed: int = 7) -> list[Reading]:
    rng = random.Random(seed)
    start = int(time.time() * 1000)
    out = []
    for i in range(count):
        out.append(
            Reading(
                SENSORS[i % len(SENSORS)],
                start + i * 50,
                {
                    "temperature": round(rng.uniform(-10, 40), 2),
                    "humidity": round(rng.uniform(20, 95), 1),
                    "pressure": round(rng.uniform(950, 1050), 2),
                    "gas_resistance": round(rng.uniform(5_000, 500_000), 0),
                    "altitude": round(rng.uniform(0, 500), 2),
                },
            )
        )
    return out


def disk_bytes(path: Path) -> int:
    return sum(os.path.getsize(p) for p in path.parent.glob(path.name + "*") if p.is_file() and not p.name.endswith(".lock"))


def bench_outbox(path: Path, readings: list[Reading], batch: int) -> dict[str, float]:
    ob = Outbox(path, max_bytes=2**40, max_age=None, auto_commit=False, memory_limit=batch * 2)
    t0 = time.perf_counter()
    since_commit = 0
    for i in range(0, len(readings), GROUP):
        ob.append(readings[i : i + GROUP])
        since_commit += GROUP
        if since_commit >= batch:
            ob.commit()
            since_commit = 0
    ob.commit()
    write_s = time.perf_counter() - t0
    ob.close()  # checkpoints the WAL into the file
    size = disk_bytes(path)

    ob = Outbox(path, max_bytes=2**40, max_age=None, auto_commit=False, memory_limit=batch * 2)
    t0 = time.perf_counter()
    drained = since_commit = last_sent = 0
    while True:
        # As replay does: page on past what was sent; PUBACKs remove.
        entries = ob.peek(1000, after_id=last_sent)
        if not entries:
            break
        last_sent = entries[-1].id
        ob.remove(e.id for e in entries)
        drained += len(entries)
        since_commit += len(entries)
        if since_commit >= batch:
            ob.commit()
            since_commit = 0
    ob.commit()
    drain_s = time.perf_counter() - t0
    ob.close()
    assert drained == len(readings), (drained, len(readings))
    return {"write": len(readings) / write_s, "bytes": size / len(readings), "drain": drained / drain_s}


def small_commits_outbox(path: Path, readings: list[Reading], per_commit: int = 10) -> dict[str, float]:
    """The spill of a quiet Pi: a few readings per commit.  Median commit time and WAL bytes per commit."""
    ob = Outbox(path, max_bytes=2**40, max_age=None, auto_commit=False)
    ob.append(readings[:per_commit])
    ob.commit()
    wal = Path(f"{path}-wal")
    before = wal.stat().st_size
    times = []
    commits = 0
    for i in range(per_commit, len(readings) - per_commit, per_commit):
        ob.append(readings[i : i + per_commit])
        t0 = time.perf_counter()
        ob.commit()
        times.append(time.perf_counter() - t0)
        commits += 1
    grown = wal.stat().st_size - before
    ob.close()
    return {"ms": statistics.median(times) * 1000, "wal": grown / commits}


def small_commits_naive(path: Path, readings: list[Reading], per_commit: int = 10) -> dict[str, float]:
    db = _naive_table(path)
    wal = Path(f"{path}-wal")
    insert = "INSERT INTO reading (sensor, ts, data) VALUES (?, ?, ?)"
    db.executemany(insert, [(r.sensor, r.timestamp_ms, json.dumps(r.values)) for r in readings[:per_commit]])
    before = wal.stat().st_size
    times = []
    commits = 0
    for i in range(per_commit, len(readings) - per_commit, per_commit):
        t0 = time.perf_counter()
        db.execute("BEGIN")
        db.executemany(insert, [(r.sensor, r.timestamp_ms, json.dumps(r.values)) for r in readings[i : i + per_commit]])
        db.execute("COMMIT")
        times.append(time.perf_counter() - t0)
        commits += 1
    grown = wal.stat().st_size - before
    db.close()
    return {"ms": statistics.median(times) * 1000, "wal": grown / commits}


def _naive_table(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("CREATE TABLE reading (id INTEGER PRIMARY KEY, sensor TEXT, ts INTEGER, data TEXT)")
    return db


def bench_naive(path: Path, readings: list[Reading], batch: int) -> dict[str, float]:
    db = _naive_table(path)
    t0 = time.perf_counter()
    for i in range(0, len(readings), batch):
        rows = [(r.sensor, r.timestamp_ms, json.dumps(r.values)) for r in readings[i : i + batch]]
        db.execute("BEGIN")
        db.executemany("INSERT INTO reading (sensor, ts, data) VALUES (?, ?, ?)", rows)
        db.execute("COMMIT")
    write_s = time.perf_counter() - t0
    db.close()
    size = disk_bytes(path)

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous = FULL")
    t0 = time.perf_counter()
    drained = since_commit = 0
    db.execute("BEGIN")
    while True:
        rows = db.execute("SELECT id, sensor, ts, data FROM reading ORDER BY id LIMIT 1000").fetchall()
        if not rows:
            break
        decoded = [Reading(sensor, ts, json.loads(data)) for _, sensor, ts, data in rows]
        db.executemany("DELETE FROM reading WHERE id = ?", [(row[0],) for row in rows])
        drained += len(decoded)
        since_commit += len(decoded)
        if since_commit >= batch:
            db.execute("COMMIT")
            db.execute("BEGIN")
            since_commit = 0
    db.execute("COMMIT")
    drain_s = time.perf_counter() - t0
    db.close()
    return {"write": len(readings) / write_s, "bytes": size / len(readings), "drain": drained / drain_s}


def _best(results: list[dict[str, float]]) -> dict[str, float]:
    """Highest rates, lowest times and sizes."""
    higher_is_better = {"write", "drain"}
    return {
        key: (max if key in higher_is_better else min)(r[key] for r in results)
        for key in results[0]
    }


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="readings to write (default 1,000,000)")
    parser.add_argument("--batch", type=int, default=10_000, help="readings per durable commit (default 10,000)")
    parser.add_argument("--dir", type=Path, help="where to put the files (default: a temporary dir; use the SD card's)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each side, alternating; the best of them counts (default 3)")
    args = parser.parse_args(argv)
    count = 50_000 if args.quick and args.count == 1_000_000 else args.count

    print(f"machine: {machine()}, SQLite {sqlite3.sqlite_version}")
    print(f"{count:,} readings of {len(QUANTITIES)} doubles, durable commit every {args.batch:,}, "
          f"best of {args.repeat} alternating runs")
    readings = make_readings(count)
    sample = readings[: min(len(readings), 3000)]
    runs: dict[str, list[dict[str, float]]] = {"ours": [], "naive": [], "ours_small": [], "naive_small": []}
    for _ in range(args.repeat):
        # Alternating, so that load from other processes hits both sides alike.
        with tempfile.TemporaryDirectory(prefix="pibridge-outbox-bench-", dir=args.dir) as tmp:
            runs["ours"].append(bench_outbox(Path(tmp) / "outbox.sqlite", readings, args.batch))
            runs["naive"].append(bench_naive(Path(tmp) / "naive.sqlite", readings, args.batch))
            runs["ours_small"].append(small_commits_outbox(Path(tmp) / "small.sqlite", sample))
            runs["naive_small"].append(small_commits_naive(Path(tmp) / "small-naive.sqlite", sample))
    ours, naive, ours_small, naive_small = (
        _best(runs[k]) for k in ("ours", "naive", "ours_small", "naive_small")
    )

    name = "outbox"
    figures = [
        Figure(name, "write, batched durable commits", ours["write"], "readings/s", naive["write"],
               ">= 20,000 readings/s", ours["write"] >= 20_000),
        Figure(name, "size on disk", ours["bytes"], "bytes/reading", naive["bytes"],
               "<= 80 bytes/reading", ours["bytes"] <= 80),
        Figure(name, "drain: peek + remove + commit", ours["drain"], "readings/s", naive["drain"]),
        Figure(name, "durable commit of 10 readings, median", ours_small["ms"], "ms", naive_small["ms"]),
        Figure(name, "written to the WAL per commit of 10 readings", ours_small["wal"], "bytes", naive_small["wal"],
               note="SD-card writes while spilling"),
    ]
    report(figures, args.json)
    print("\nbaseline: one row per reading, sensor name and JSON text of the values, same pragmas and batching")
    return 0 if all(f.met is not False for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
