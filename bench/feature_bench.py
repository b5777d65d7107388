"""What the optional features cost: 20 sensors with a filter on every metric and the web page on, against none.

Run:  .venv/bin/python bench/feature_bench.py [--quick] [--window 60] [--sensors 20]

Two daemons run side by side against the agent simulator, each with 20 mock
sensors of three quantities read every second:

* **baseline**: no filters, no ``[http]`` table;
* **features**: ``filters = [{ median = 5 }]`` on every metric and
  ``[http] listen = "127.0.0.1:PORT"``, the page fetched every second
  during the run as an open browser tab would.

A feature is switched on only if this build knows its config key: the
benchmark first asks ``pibridge check`` about a config using it, and a
feature the build rejects as an unknown key is reported as "not available in
this build" (with the check's own words) instead of being measured.

Figures: peak RSS (VmHWM) of each daemon over the run, against the 40 MB
budget; CPU (% of one core); the page's response time; and that both
daemons delivered values.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Figure, base_parser, free_port, mock_sensors, pibridge_cmd, report, simulator, spawn, stored_count, wait_for, write_config  # noqa: E402
from _observe import Sampler, provision_client, sensors_seen, stopping  # noqa: E402

METRICS = ["temperature", "humidity", "pressure"]
FILTERS = [{"median": 5}]


def with_filters(sensors: list[dict]) -> list[dict]:
    return [s | {"metric": {q: {"filters": FILTERS} for q in s["metrics"]}} for s in sensors]


def supported(sim, workdir: Path, name: str, sensors: list[dict], sections: dict) -> str | None:
    """None if ``pibridge check`` accepts a config using the feature; otherwise why not (its words)."""
    config = write_config(workdir / f"probe-{name}.toml", sim, workdir / f"probe-{name}", sensors,
                          client_name=f"probe-{name}", sections=sections)
    done = subprocess.run(pibridge_cmd("check", "--config", str(config)), capture_output=True, text=True, timeout=120)
    if done.returncode in (0, 1, 3):  # 1: a sensor failed, 3: agent unusable; both mean the config was accepted
        return None
    # "  - /path/probe.toml:14: key 'http': unknown top-level key or section. Fix: ..." -> "key 'http': unknown ..."
    problems = [line.strip(" -").split(": ", 1)[-1].split(". Fix:")[0]
                for line in done.stderr.splitlines() if line.strip().startswith("- ")]
    return problems[0] if problems else done.stderr.strip()[-300:]


def fetch(url: str) -> tuple[int, int, float]:
    """HTTP status, body bytes and seconds for one GET (status 0 if it could not connect)."""
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = answer.read()
            return answer.status, len(body), time.monotonic() - t0
    except OSError as e:
        status = getattr(e, "code", 0)
        return status, 0, time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, default=20)
    parser.add_argument("--window", type=float, help="seconds measured (default 60; 15 with --quick)")
    parser.add_argument("--page-every", type=float, default=1.0, help="seconds between fetches of the page")
    args = parser.parse_args(argv)
    window = args.window or (15.0 if args.quick else 60.0)
    plain = mock_sensors(args.sensors, 1.0, METRICS)

    with tempfile.TemporaryDirectory(prefix="pibridge-features-") as tmp, simulator(Path(tmp) / "sim") as sim:
        tmp = Path(tmp)
        port = free_port()
        http = {"http": {"listen": f"127.0.0.1:{port}"}}
        missing = {
            "filters": supported(sim, tmp, "filters", with_filters(plain[:1]), {}),
            "http": supported(sim, tmp, "http", plain[:1], http),
        }
        for feature, why in missing.items():
            print(f"{feature}: " + ("available" if why is None else f"not available in this build ({why})"))
        on = [f for f, why in missing.items() if why is None]
        configs = {
            "baseline": write_config(tmp / "baseline.toml", sim, tmp / "baseline", plain, client_name="plain"),
            "features": write_config(tmp / "features.toml", sim, tmp / "features",
                                     with_filters(plain) if "filters" in on else plain, client_name="features",
                                     sections=http if "http" in on else None),
        }
        ids = {name: provision_client(cfg, tmp / f"{name}.log") for name, cfg in configs.items()}
        with stopping() as running:
            procs = {}
            for name, cfg in configs.items():
                procs[name] = spawn(pibridge_cmd("run", "--config", str(cfg)), tmp / f"{name}.log")
                running.append(procs[name])
            for name in configs:
                wait_for(lambda n=name: sensors_seen(sim, ids[n]) >= args.sensors, 120, f"values from every {name} sensor", 0.2)
            before = {name: stored_count(sim, ids[name]) for name in configs}
            pages: list[tuple[int, int, float]] = []
            results: dict = {}
            threads = [threading.Thread(target=lambda n=n, p=p: results.__setitem__(n, Sampler(p.pid).run(window, p)))
                       for n, p in procs.items()]
            for t in threads:
                t.start()
            end = time.monotonic() + window
            while "http" in on and time.monotonic() < end - 1:
                pages.append(fetch(f"http://127.0.0.1:{port}/"))
                time.sleep(min(args.page_every, max(0.0, end - 1 - time.monotonic())))
            for t in threads:
                t.join()
            if set(results) != set(procs):
                raise RuntimeError("a daemon exited during the measurement; see the logs")
            windows = {n: {"cpu": w.cpu_percent, "hwm": w.hwm_mb, "rss": w.rss_mean_mb, "threads": w.threads_max}
                       for n, w in results.items()}
            delivered = {name: stored_count(sim, ids[name]) - before[name] for name in configs}

    b, f = windows["baseline"], windows["features"]
    print(f"baseline: peak RSS {b['hwm']:.1f} MB, CPU {b['cpu']:.2f} %, {b['threads']} threads, {delivered['baseline']:,} values")
    print(f"features ({', '.join(on) or 'none available'}): peak RSS {f['hwm']:.1f} MB, CPU {f['cpu']:.2f} %, "
          f"{f['threads']} threads, {delivered['features']:,} values")
    which = " + ".join([f"median-of-5 filter on each of {args.sensors * len(METRICS)} metrics" if "filters" in on else "",
                        f"[http] page fetched every {args.page_every:g} s" if "http" in on else ""]).strip(" +")
    note = f"{args.sensors} sensors x 3, 1 s, {window:g} s side by side; " + (which or "no feature available")
    names = {"filters": "filters", "http": "the page"}
    label = ("with " + " and ".join(names[f] for f in on)) if on else "(filters and the page not available in this build)"
    figures = [
        Figure("features", f"peak RSS {label}", f["hwm"], "MB", b["hwm"], "<= 40 MB",
               f["hwm"] <= 40 if on else None, note),
        Figure("features", f"CPU {label}", f["cpu"], "% of a core", b["cpu"], "-", None, note),
        Figure("features", "values delivered in the window", delivered["features"], "values", delivered["baseline"],
               "-", None, "baseline: the same sensors without features"),
    ]
    for feature, why in missing.items():
        if why is not None:
            figures.append(Figure("features", f"{feature}", 0, "n/a", None, "-", None, f"not available in this build: {why}"))
    if pages:
        ok = [p for p in pages if p[0] == 200]
        times = sorted(p[2] * 1000 for p in ok) or [float("nan")]
        figures.append(Figure("features", "page response time, median", statistics.median(times), "ms", None, "-", None,
                              f"{len(ok)} of {len(pages)} GET / answered 200, {ok[-1][1] if ok else 0:,} bytes"))
    report(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
