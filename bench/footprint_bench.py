"""Footprint of ``pibridge run``: peak RSS, time to the first push, RSS growth over a soak.

Run:  .venv/bin/python bench/footprint_bench.py [--quick] [--minutes 30] [--sensors 20] [--interval 1.0]

A simulator runs on loopback.  ``pibridge run`` starts with 20 mock sensors
(three quantities each, one read per ``--interval`` seconds) and, next to it,
``bench/bare_daemon.py``: a bare paho publisher pushing the same number of
values on the same schedule (the least any Python bridge costs).  Both are
sampled every few seconds from /proc/<pid>/status.

Figures:

* peak RSS (VmHWM) after 10 minutes, or after the whole run if shorter, of a
  daemon started with its identity on disk (as every boot after the first);
* time from ``exec`` to the first value stored by the simulator, cold (the
  first start provisions a certificate) and warm (a restart, the normal
  boot of a Pi), against the bare publisher's;
* RSS growth over the run: the least-squares slope of RSS after the first
  minute, in MB per hour, and last minute's mean minus the second minute's
  (judged against the target only for runs of 5 minutes or more);
* what the web page (``[http]``) costs: two daemons with the same sensors, one
  with the page, side by side; the page is polled as an open browser tab does
  (status, sensors, new chart points every second) and ``/metrics`` is scraped
  every 5 s.  The chart rings are allocated full size on the first value, so
  even a short run holds the whole hour of history.  Figure: the difference
  of their peak RSS (target <= 3 MB).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    Figure,
    base_parser,
    client_ids,
    free_port,
    mock_sensors,
    pibridge_cmd,
    proc_status_kb,
    provision_identity,
    report,
    simulator,
    spawn,
    spawn_bare_daemon,
    stop,
    value_count,
    wait_for,
    write_config,
)

METRICS = ["temperature", "humidity", "pressure"]


def slope_per_hour(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, kB) samples, in MB per hour."""
    if len(samples) < 3:
        return 0.0
    xs, ys = [s[0] for s in samples], [s[1] for s in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return (sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx) * 3600 / 1024 if sxx else 0.0


def first_push_seconds(sim, proc, started: float, client_id: str | None, before: int, known: set[str]) -> tuple[float, str]:
    """Seconds from ``started`` until the simulator holds a new value from ``proc``'s client."""

    def arrived():
        if proc.poll() is not None:
            raise RuntimeError(f"pibridge run exited with {proc.returncode} before its first push")
        cid = client_id
        if cid is None:
            new = client_ids(sim) - known
            if not new:
                return None
            cid = next(iter(new))
        return cid if value_count(sim, cid) > before else None

    cid = wait_for(arrived, 60, "the first value from pibridge run", interval=0.005)
    return time.monotonic() - started, cid


def _poll_like_a_browser(url: str, stop_event: threading.Event, counts: dict[str, int]) -> None:
    """GET what the page's script fetches every second, and /metrics every 5 s, until *stop_event*."""

    def get(path: str) -> bytes:
        with urllib.request.urlopen(url.rstrip("/") + path, timeout=10) as answer:
            counts["requests"] += 1
            return answer.read()

    for path in ("/", "/static/page.css", "/static/common.js", "/static/chart.js", "/static/bridge.js"):
        get(path)
    sequence = 0
    tick = 0
    while not stop_event.wait(1.0):
        try:
            get("/api/status")
            get("/api/sensors")
            sequence = json.loads(get(f"/api/history?after={sequence}"))["sequence"]
            if tick % 5 == 0:
                get("/metrics")
        except OSError:
            counts["failed"] += 1
        tick += 1


def page_cost(sim, tmp: Path, sensors: int, interval: float, seconds: float) -> list[Figure]:
    """Peak RSS of a daemon with ``[http]`` (polled) minus that of the same daemon without it."""
    from pibridge.agent.cli import identity_directory

    port = free_port()
    daemons = {}
    running = []
    counts = {"requests": 0, "failed": 0}
    stop_polling = threading.Event()
    try:
        for name in ("plain", "page"):
            storage = tmp / f"storage-{name}"
            provision_identity(sim, identity_directory(storage), f"footprint-{name}")
            config = write_config(tmp / f"{name}.toml", sim, storage, mock_sensors(sensors, interval, METRICS),
                                  client_name=f"footprint-{name}")
            if name == "page":
                text = config.read_text()
                head, sensors_part = text.split("[[sensors]]", 1)
                config.write_text(f'{head}[http]\nlisten = "127.0.0.1:{port}"\n\n[[sensors]]{sensors_part}')
            log = tmp / f"{name}.log"
            daemons[name] = spawn(pibridge_cmd("run", "--config", str(config)), log)
            running.append(daemons[name])
        url = f"http://127.0.0.1:{port}/"

        def page_up():
            try:
                with urllib.request.urlopen(url + "healthz", timeout=2) as answer:
                    return answer.status == 200
            except OSError:
                return False

        wait_for(page_up, 60, "the daemon's page to answer 200 on /healthz", 0.05)
        poller = threading.Thread(target=_poll_like_a_browser, args=(url, stop_polling, counts), daemon=True)
        poller.start()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for name, proc in daemons.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"the {name} daemon exited with {proc.returncode}; see {tmp / name}.log")
            time.sleep(1.0)
        peak = {name: proc_status_kb(proc.pid, "VmHWM") / 1024 for name, proc in daemons.items()}
        stop_polling.set()
        poller.join(15)
    finally:
        stop_polling.set()
        for proc in running:
            stop(proc)
    cost = peak["page"] - peak["plain"]
    note = (f"{sensors} sensors x {len(METRICS)} metrics, {seconds:g} s, {counts['requests']} requests "
            f"({counts['failed']} failed)")
    print(f"web page: peak RSS {peak['page']:.1f} MB with it, {peak['plain']:.1f} MB without; {note}")
    return [
        Figure("footprint", "peak RSS added by the web page", cost, "MB", None, "<= 3 MB", cost <= 3.0, note),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, help="length of the run (default 30, 1 with --quick)")
    parser.add_argument("--sensors", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between reads of each sensor")
    parser.add_argument("--sample", type=float, default=2.0, help="seconds between RSS samples")
    parser.add_argument("--page-seconds", type=float,
                        help="length of the web page comparison (default 120, 20 with --quick; 0 skips it)")
    parser.add_argument("--page-only", action="store_true", help="only the web page comparison")
    args = parser.parse_args(argv)
    minutes = args.minutes or (1.0 if args.quick else 30.0)
    figures: list[Figure] = []

    page_seconds = args.page_seconds if args.page_seconds is not None else (20.0 if args.quick else 120.0)
    if args.page_only:
        with tempfile.TemporaryDirectory(prefix="pibridge-footprint-") as tmp, simulator(Path(tmp) / "sim") as sim:
            figures = page_cost(sim, Path(tmp), args.sensors, args.interval, page_seconds or 20.0)
        report(figures, args.json)
        return 0

    with tempfile.TemporaryDirectory(prefix="pibridge-footprint-") as tmp, simulator(Path(tmp) / "sim") as sim:
        tmp = Path(tmp)
        bare_identity = provision_identity(sim, tmp / "bare", "bare")
        config = write_config(
            tmp / "pibridge.toml", sim, tmp / "storage", mock_sensors(args.sensors, args.interval, METRICS), client_name="footprint"
        )
        log = tmp / "pibridge.log"

        running: list = []
        try:
            # The first start provisions (and loads `cryptography` to make a key and a CSR); a Pi does
            # that once.  Every later boot starts with the identity on disk: that process is the one
            # measured for memory.
            known = client_ids(sim)
            started = time.monotonic()
            daemon = spawn(pibridge_cmd("run", "--config", str(config)), log)
            running.append(daemon)
            cold, client_id = first_push_seconds(sim, daemon, started, None, 0, known)
            cold_hwm = proc_status_kb(daemon.pid, "VmHWM")
            if stop(daemon) != 0:
                print(f"warning: pibridge run exited with {daemon.returncode} on SIGTERM; see {log}")
            before = value_count(sim, client_id)
            started = time.monotonic()
            daemon = spawn(pibridge_cmd("run", "--config", str(config)), log)
            running.append(daemon)
            warm, _ = first_push_seconds(sim, daemon, started, client_id, before, known)
            bare_started = time.monotonic()
            bare = spawn_bare_daemon(sim, bare_identity, args.sensors, len(METRICS), args.interval, tmp / "bare.log")
            running.append(bare)
            wait_for(lambda: value_count(sim, bare_identity.client_id) > 0, 60, "the bare publisher's first value", 0.005)
            bare_first = time.monotonic() - bare_started
            print(f"first push: pibridge cold {cold:.2f} s (peak RSS of that run {cold_hwm / 1024:.1f} MB), "
                  f"warm {warm:.2f} s; bare publisher {bare_first:.2f} s")

            samples: dict[str, list[tuple[float, float]]] = {"pibridge": [], "bare": []}
            hwm_10min: dict[str, int] = {}
            t0 = time.monotonic()
            end = t0 + minutes * 60
            next_print = t0
            while (now := time.monotonic()) < end:
                for name, proc in (("pibridge", daemon), ("bare", bare)):
                    if proc.poll() is not None:
                        raise RuntimeError(f"{name} exited with {proc.returncode} during the run; see {log}")
                    samples[name].append((now - t0, proc_status_kb(proc.pid, "VmRSS")))
                    if now - t0 <= 600:
                        hwm_10min[name] = proc_status_kb(proc.pid, "VmHWM")
                if now >= next_print:
                    print(f"  {(now - t0) / 60:5.1f} min  pibridge RSS {samples['pibridge'][-1][1] / 1024:6.1f} MB"
                          f"  bare RSS {samples['bare'][-1][1] / 1024:6.1f} MB"
                          f"  values stored {value_count(sim, client_id):,}", flush=True)
                    next_print += 60
                time.sleep(args.sample)
            peak = {name: proc_status_kb(p.pid, "VmHWM") for name, p in (("pibridge", daemon), ("bare", bare))}
            delivered = value_count(sim, client_id) - before
            stop(bare)
            if stop(daemon) != 0:
                print(f"warning: pibridge run exited with {daemon.returncode} on SIGTERM; see {log}")
        finally:
            for proc in running:
                stop(proc)

    expected = args.sensors * len(METRICS) * minutes * 60 / args.interval
    print(f"values delivered during the run: {delivered:,} (about {expected:,.0f} expected)")

    # Start-up allocations settle within the first minute (a third of a short run).
    warmup = min(60.0, minutes * 20)
    judge = minutes >= 5  # a shorter run cannot tell a slow leak from start-up noise

    def growth(name: str) -> tuple[float, float]:
        after_warmup = [s for s in samples[name] if s[0] >= warmup] or samples[name]
        first = [kb for t, kb in after_warmup if t < warmup + 60] or [after_warmup[0][1]]
        last = [kb for t, kb in after_warmup if t >= after_warmup[-1][0] - 60]
        return slope_per_hour(after_warmup), (statistics.fmean(last) - statistics.fmean(first)) / 1024

    slope_p, delta_p = growth("pibridge")
    slope_b, delta_b = growth("bare")
    ran = f"{args.sensors} mock sensors, {args.interval:g} s, {minutes:g} min run"
    peak_at = "after 10 min" if minutes >= 10 else f"after {minutes:g} min"
    peak_p = (hwm_10min["pibridge"] if minutes >= 10 else peak["pibridge"]) / 1024
    peak_b = (hwm_10min["bare"] if minutes >= 10 else peak["bare"]) / 1024
    figures += [
        Figure("footprint", f"peak RSS {peak_at}", peak_p, "MB", peak_b, "<= 40 MB", peak_p <= 40, ran),
        Figure("footprint", "exec to first push, warm", warm, "s", bare_first, "<= 1 s", warm <= 1.0, "identity on disk"),
        Figure("footprint", "exec to first push, cold", cold, "s", bare_first, "-", None, "includes provisioning"),
        Figure("footprint", "peak RSS of the first (provisioning) start", cold_hwm / 1024, "MB", None, "-", None,
               "until its first push; cryptography loaded"),
        Figure("footprint", "RSS growth (slope after warm-up)", slope_p, "MB/h", slope_b, "none beyond noise",
               abs(slope_p) <= max(1.0, 3 * abs(slope_b)) if judge else None, ran),
        Figure("footprint", "RSS last min - first min after warm-up", delta_p, "MB", delta_b, "none beyond noise",
               abs(delta_p) <= max(0.5, 3 * abs(delta_b)) if judge else None, ran),
    ]
    if minutes > 10:
        figures.append(Figure("footprint", f"peak RSS after {minutes:g} min", peak["pibridge"] / 1024, "MB",
                              peak["bare"] / 1024, "<= 40 MB", peak["pibridge"] / 1024 <= 40, ran))
    if page_seconds:
        with tempfile.TemporaryDirectory(prefix="pibridge-footprint-page-") as tmp, \
                simulator(Path(tmp) / "sim") as sim:
            figures += page_cost(sim, Path(tmp), args.sensors, args.interval, page_seconds)
    report(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
