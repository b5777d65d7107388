"""What the optional features cost: 20 sensors with filters and derived values on every metric, the web page on, and reloads.

Run:  .venv/bin/python bench/feature_bench.py [--quick] [--window 60] [--sensors 20] [--reloads 10]

Two daemons run side by side against the agent simulator, each with 20 mock
sensors of three quantities read every second:

* **baseline**: no filters, no derived values, no ``[http]`` table;
* **features**: ``derived = ["dew_point", "absolute_humidity"]`` on every
  sensor, ``filters = [{ median = 5 }]`` on every metric (the derived ones
  too) and ``[http] listen = "127.0.0.1:PORT"``, the page fetched every
  second during the run as an open browser tab would.

A feature is switched on only if this build knows its config key: the
benchmark first asks ``pibridge check`` about a config using it, and a
feature the build rejects as an unknown key is reported as "not available in
this build" (with the check's own words) instead of being measured.

Figures: peak RSS (VmHWM) of each daemon over the run, against the 40 MB
budget; CPU (% of one core); the page's response time; that both daemons
delivered values, and how many derived values reached the simulator.

Then the features daemon alone is reloaded (SIGHUP) ``--reloads`` times, the
config rewritten before each so that one sensor changes (see
``_feature_reload.py``): seconds from SIGHUP to the daemon's report that the
reload is done, RSS and threads after the reloads against before, and the
readings of the unchanged sensors lost meanwhile (none may be).
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Figure, base_parser, free_port, mock_sensors, pibridge_cmd, report, simulator, spawn, stop, stored_count, wait_for, write_config  # noqa: E402
from _feature_reload import NotifySocket, ReloadRun, reload_many  # noqa: E402
from _observe import Sampler, next_grid, provision_client, sensors_seen, sleep_until, stopping, wait_arrived  # noqa: E402

METRICS = ["temperature", "humidity", "pressure"]
DERIVED = ["dew_point", "absolute_humidity"]
FILTERS = [{"median": 5}]
#: What a reload changes, turn by turn: the first sensor's interval, the second one's temperature filter.
FAST, NARROW = 0.5, [{"median": 3}]


def with_features(sensors: list[dict], on: list[str], fast: bool = False, narrow: bool = False) -> list[dict]:
    """The sensors with the features in ``on``; ``fast``/``narrow``: a reload's change of the first/second sensor."""
    out = []
    for i, sensor in enumerate(sensors):
        sensor = dict(sensor)
        metrics = list(sensor["metrics"])
        if "derived" in on:
            sensor["derived"] = DERIVED
            metrics += DERIVED
        if "filters" in on:
            sensor["metric"] = {q: {"filters": FILTERS} for q in metrics}
        if i == 0 and fast:
            sensor["interval"] = FAST
        if i == 1 and narrow:
            # Without filters in this build the change is a rounding instead.
            change = {"filters": NARROW} if "filters" in on else {"round": 1}
            sensor["metric"] = sensor.get("metric", {}) | {"temperature": change}
        out.append(sensor)
    return out


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
    parser.add_argument("--reloads", type=int, help="SIGHUPs to the features daemon (default 10; 4 with --quick; 0: none)")
    args = parser.parse_args(argv)
    window = args.window or (15.0 if args.quick else 60.0)
    reloads = args.reloads if args.reloads is not None else (4 if args.quick else 10)
    if reloads and args.sensors < 3:
        parser.error("--reloads needs at least 3 sensors (two change, the others must not lose a reading)")
    plain = mock_sensors(args.sensors, 1.0, METRICS)

    with tempfile.TemporaryDirectory(prefix="pibridge-features-") as tmp, simulator(Path(tmp) / "sim") as sim:
        tmp = Path(tmp)
        port = free_port()
        http = {"http": {"listen": f"127.0.0.1:{port}"}}
        missing = {
            "filters": supported(sim, tmp, "filters", with_features(plain[:1], ["filters"]), {}),
            "derived": supported(sim, tmp, "derived", with_features(plain[:1], ["derived"]), {}),
            "http": supported(sim, tmp, "http", plain[:1], http),
        }
        if reloads:
            missing["reload"] = (None if importlib.util.find_spec("pibridge.bridge.reload")
                                 else "no pibridge.bridge.reload: SIGHUP would end the daemon")
        for feature, why in missing.items():
            print(f"{feature}: " + ("available" if why is None else f"not available in this build ({why})"))
        on = [f for f, why in missing.items() if why is None]
        sections = http if "http" in on else None

        def write_features(fast: bool = False, narrow: bool = False) -> Path:
            return write_config(tmp / "features.toml", sim, tmp / "features", with_features(plain, on, fast, narrow),
                                client_name="features", sections=sections)

        configs = {
            "baseline": write_config(tmp / "baseline.toml", sim, tmp / "baseline", plain, client_name="plain"),
            "features": write_features(),
        }
        metrics = len(METRICS) + (len(DERIVED) if "derived" in on else 0)
        ids = {name: provision_client(cfg, tmp / f"{name}.log") for name, cfg in configs.items()}
        # Both get a notify socket, so both send the same sd_notify messages; only the features daemon's is read.
        notify = {name: NotifySocket(tmp / f"{name}.notify") for name in configs}
        with stopping() as running:
            procs = {}
            for name, cfg in configs.items():
                procs[name] = spawn(pibridge_cmd("run", "--config", str(cfg)), tmp / f"{name}.log", notify[name].env)
                running.append(procs[name])
            for name in configs:
                wait_for(lambda n=name: sensors_seen(sim, ids[n]) >= args.sensors, 120, f"values from every {name} sensor", 0.2)
            start = next_grid(1.0)
            sleep_until(start)
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
            derived_due = args.sensors * len(DERIVED) * int(window) if "derived" in on else 0
            derived = wait_arrived(sim, ids["features"], derived_due, start, start + int(window), 30,
                                   metrics=DERIVED) if derived_due else 0
            stop(procs["baseline"])
            reloaded = None
            if "reload" in on:
                reloaded = reload_many(sim, procs["features"], notify["features"], tmp / "features.log", ids["features"],
                                       write=write_features, names=[s["name"] for s in plain], metrics=metrics,
                                       reloads=reloads)
        for sock in notify.values():
            sock.close()

    b, f = windows["baseline"], windows["features"]
    print(f"baseline: peak RSS {b['hwm']:.1f} MB, CPU {b['cpu']:.2f} %, {b['threads']} threads, {delivered['baseline']:,} values")
    print(f"features ({', '.join(on) or 'none available'}): peak RSS {f['hwm']:.1f} MB, CPU {f['cpu']:.2f} %, "
          f"{f['threads']} threads, {delivered['features']:,} values, {derived:,} of {derived_due:,} derived values")
    shown = [feature for feature in on if feature != "reload"]
    parts = {"filters": f"median-of-5 filter on each of {args.sensors * metrics} metrics",
             "derived": f"{' and '.join(DERIVED)} on each sensor",
             "http": f"[http] page fetched every {args.page_every:g} s"}
    note = (f"{args.sensors} sensors x 3, 1 s, {window:g} s side by side; "
            + (" + ".join(parts[feature] for feature in shown) or "no feature available"))
    names = {"filters": "filters", "derived": "derived values", "http": "the page"}
    label = ("with " + ", ".join(names[feature] for feature in shown)) if shown else "(no feature available in this build)"
    figures = [
        Figure("features", f"peak RSS {label}", f["hwm"], "MB", b["hwm"], "<= 40 MB",
               f["hwm"] <= 40 if shown else None, note),
        Figure("features", f"CPU {label}", f["cpu"], "% of a core", b["cpu"], "-", None, "the same"),
        Figure("features", "values delivered in the window", delivered["features"], "values", delivered["baseline"],
               "-", None, f"baseline: the same sensors without features; {metrics} metrics a sensor against 3"),
    ]
    if derived_due:
        figures.append(Figure("features", "derived values that reached the simulator in the window", derived, "values",
                              None, f"= {derived_due:,}", derived == derived_due,
                              f"{' and '.join(DERIVED)} of {args.sensors} sensors, {int(window)} readings each"))
    for feature, why in missing.items():
        if why is not None:
            figures.append(Figure("features", f"{feature}", 0, "n/a", None, "-", None, f"not available in this build: {why}"))
    if pages:
        ok = [p for p in pages if p[0] == 200]
        times = sorted(p[2] * 1000 for p in ok) or [float("nan")]
        figures.append(Figure("features", "page response time, median", statistics.median(times), "ms", None, "-", None,
                              f"{len(ok)} of {len(pages)} GET / answered 200, {ok[-1][1] if ok else 0:,} bytes"))
    if reloaded is not None:
        figures += reload_figures(reloaded)
    report(figures, args.json)
    return 0


def reload_figures(run: ReloadRun) -> list[Figure]:
    got = run.unchanged
    print(f"reloads: {len(run.seconds)} ({', '.join(run.what)}); SIGHUP to done "
          + ", ".join(f"{s * 1000:.0f}" for s in run.seconds) + " ms")
    for line in run.complaints:
        print(f"  the daemon during the reloads: {line}")
    note = f"{len(run.seconds)} SIGHUPs, each changing one sensor: {' / '.join(dict.fromkeys(run.what))} in turn"
    return [
        Figure("features", "reload: SIGHUP to the daemon's READY=1, median", statistics.median(run.seconds) * 1000, "ms",
               None, "-", None, note),
        Figure("features", "reload: SIGHUP to READY=1, max", max(run.seconds) * 1000, "ms", None, "-", None, "the same"),
        Figure("features", "reload: RSS after the reloads", run.rss_after_mb, "MB", run.rss_before_mb, "-", None,
               f"baseline: the same daemon before the first; {run.rss_first_mb:.1f} MB after the first, "
               f"{(run.rss_after_mb - run.rss_first_mb) / max(1, len(run.seconds) - 1) * 1024:+.0f} kB a reload since"),
        Figure("features", "reload: threads after the reloads", run.threads_after, "threads", run.threads_before, "-",
               None, f"baseline: before the first; the daemon logged {len(run.complaints)} warnings or errors meanwhile"),
        Figure("features", "reload: readings of the unchanged sensors lost", run.lost_values, "values", None, "= 0",
               run.lost_values == 0,
               f"{got.values:,} of {got.expected_values:,} values due from {got.sensors} sensors x {got.metrics} "
               f"metrics over {got.slots} s around the reloads; the {run.changed} changed ones delivered again: "
               f"{run.changed_back} of {run.changed}"),
        Figure("features", "reload: values of the sensor whose filter changed", run.refiltered.values, "values",
               run.refiltered.expected_values, "-", None,
               f"baseline: due from it over the same {run.refiltered.slots} s; each reload that changes it starts "
               "its filters empty"),
    ]


if __name__ == "__main__":
    sys.exit(main())
