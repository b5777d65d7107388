"""pibridge against its nearest peer, mqtt-io: CPU, RSS and time to the first publish, same sensors, same interval.

Run:  .venv/bin/python bench/peer_bench.py [--quick] [--sizes 20,200] [--window 60] [--mqtt-io-version 2.7.0]

mqtt-io (https://pypi.org/project/mqtt-io/) reads sensors on a Pi and
publishes each value to an MQTT broker.  The benchmark installs it from PyPI
into a virtual environment of its own under the cache directory
(``$XDG_CACHE_HOME/pibridge-bench``, else ``~/.cache/pibridge-bench``; reused
by later runs) and gives it N inputs of its own ``mock`` sensor module at
the same interval, publishing to a plain Mosquitto started by the
benchmark on loopback.  Its log level is WARNING, so it does not log every
read (pibridge does not either).

pibridge runs N ``mock`` sensors of one quantity each (one value per sensor
per read, as mqtt-io's inputs have), pushing to the agent simulator on
loopback: mutual TLS, QoS 1, a JSON body with the read time, the outbox
beside it.  mqtt-io publishes the bare value as text at QoS 0 without TLS,
so the comparison is tilted towards mqtt-io.

Figures, each pibridge / mqtt-io from the same run:

* time from ``exec`` to the first value at the broker's far side (the
  benchmark's own subscriber for mqtt-io, the simulator's store for
  pibridge), median of ``--starts`` starts of each alone, pibridge's with its
  identity and sensor registry on disk (a normal boot);
* CPU (% of one core) and mean RSS over ``--window`` seconds with both
  running side by side, so both see the same machine.

If mqtt-io cannot be installed or started here, the benchmark says why in
its output and its figures, and still measures pibridge.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Figure, base_parser, free_port, mock_sensors, report, run_until_first_push, simulator, stop, stored_count, wait_for, write_config  # noqa: E402
from _observe import Sampler, provision_client, sensors_seen, stopping  # noqa: E402


class PeerUnavailable(RuntimeError):
    """mqtt-io could not be installed or run here; the message says why."""


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pibridge-bench"


def mqtt_io_python(version: str) -> Path:
    """The interpreter of a venv holding mqtt-io ``version``, created (once) under the cache directory."""
    venv = cache_dir() / f"mqtt-io-{version}-py{sys.version_info.major}.{sys.version_info.minor}"
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([python, "-c", "import mqtt_io"], capture_output=True).returncode == 0:
        return python
    print(f"installing mqtt-io {version} from PyPI into {venv}", flush=True)
    steps = [(f"python -m venv {venv}", [sys.executable, "-m", "venv", "--clear", str(venv)]),
             (f"pip install mqtt-io=={version}",
              [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", f"mqtt-io=={version}"])]
    for label, cmd in steps:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            raise PeerUnavailable(f"`{label}` took more than 10 minutes") from None
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            tail = " / ".join(([line for line in lines if not line.startswith("WARNING")] or lines)[-2:])
            raise PeerUnavailable(f"`{label}` failed ({done.returncode}): {tail}")
    return python


class Broker:
    """A plain Mosquitto on a free loopback port, no TLS, anonymous: what mqtt-io talks to."""

    def __init__(self, workdir: Path):
        from pibridge.sim.broker import find_mosquitto

        self.port = free_port()
        conf = workdir / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.proc = subprocess.Popen([find_mosquitto(), "-c", str(conf)], stdout=(workdir / "mosquitto.log").open("wb"),
                                     stderr=subprocess.STDOUT)


class Subscriber:
    """Counts what arrives on ``<prefix>/sensor/#`` and when the first value came (paho, in this process)."""

    def __init__(self, port: int, prefix: str):
        import paho.mqtt.client as mqtt

        self.first: float | None = None
        self.count = 0
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{prefix}")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{prefix}/sensor/#", qos=0)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        self.client.on_message = self._message
        wait_for(lambda: self._connect(port), 10, "the plain Mosquitto to accept connections", 0.05)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("the benchmark's subscriber got no SUBACK from the plain Mosquitto")

    def _connect(self, port: int) -> bool:
        try:
            self.client.connect("127.0.0.1", port)
            return True
        except OSError:
            return False

    def _message(self, client, userdata, message) -> None:
        # paho's network thread: count and note the time, nothing more.
        now = time.monotonic()
        with self._lock:
            self.count += 1
            if self.first is None:
                self.first = now

    def reset(self) -> None:
        with self._lock:
            self.first, self.count = None, 0

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def mqtt_io_config(path: Path, port: int, prefix: str, sensors: int, interval: float) -> Path:
    config = {
        "mqtt": {"host": "127.0.0.1", "port": port, "topic_prefix": prefix, "client_id": f"{prefix}-daemon"},
        "sensor_modules": [{"name": "mock", "module": "mock"}],
        "sensor_inputs": [{"name": f"s{i:04d}", "module": "mock", "interval": max(1, int(round(interval)))}
                          for i in range(sensors)],
        "logging": {"version": 1, "handlers": {"console": {"class": "logging.StreamHandler", "level": "WARNING"}},
                    "root": {"level": "WARNING", "handlers": ["console"]}},
    }
    path.write_text(json.dumps(config, indent=1))  # JSON is YAML: mqtt-io reads it as is
    return path


def start_mqtt_io(python: Path, config: Path, log: Path, sub: Subscriber) -> tuple[subprocess.Popen, float]:
    """Start mqtt-io; return it and the seconds from exec to its first sensor value at the subscriber."""
    sub.reset()
    started = time.monotonic()
    proc = subprocess.Popen([str(python), "-m", "mqtt_io", str(config)], stdout=log.open("ab"), stderr=subprocess.STDOUT)

    def first():
        if proc.poll() is not None:
            raise PeerUnavailable(f"mqtt-io exited with {proc.returncode} before its first value: "
                                  + " / ".join(log.read_text(errors="replace").strip().splitlines()[-3:]))
        return sub.first

    try:
        at = wait_for(first, 60, "mqtt-io's first value", 0.005)
    except BaseException:
        stop(proc)
        raise
    return proc, at - started


def start_pibridge(sim, config: Path, log: Path, client_id: str) -> tuple[subprocess.Popen, float]:
    return run_until_first_push(sim, client_id, config, log, 60)


def compare(sim, broker: Broker, python: Path | None, tmp: Path, n: int, interval: float, window: float,
            starts: int) -> dict:
    """One size: first-publish times (each alone), then CPU and RSS side by side."""
    work = tmp / f"n{n}"
    work.mkdir()
    config = write_config(work / "pibridge.toml", sim, work / "storage", mock_sensors(n, interval, ["temperature"]),
                          client_name=f"peer{n}")
    log = work / "pibridge.log"
    client_id = provision_client(config, log)
    out: dict = {"n": n, "peer_error": None}
    with stopping() as running:
        # The first start creates the sensors on the agent; every later boot finds them in its registry.
        proc, _ = start_pibridge(sim, config, log, client_id)
        wait_for(lambda: sensors_seen(sim, client_id) >= n, 120, f"values from all {n} sensors", 0.2)
        stop(proc)
        sub = mqtt_io_cfg = None
        if python is not None:
            prefix = f"mqttio{n}"
            sub = Subscriber(broker.port, prefix)
            mqtt_io_cfg = mqtt_io_config(work / "mqtt-io.yml", broker.port, prefix, n, interval)
        firsts: dict[str, list[float]] = {"pibridge": [], "mqtt-io": []}
        try:
            for _ in range(starts):
                proc, seconds = start_pibridge(sim, config, log, client_id)
                firsts["pibridge"].append(seconds)
                stop(proc)
                if sub is not None:
                    proc, seconds = start_mqtt_io(python, mqtt_io_cfg, work / "mqtt-io.log", sub)
                    firsts["mqtt-io"].append(seconds)
                    stop(proc)
            daemon, _ = start_pibridge(sim, config, log, client_id)
            running.append(daemon)
            peer = None
            if sub is not None:
                peer, _ = start_mqtt_io(python, mqtt_io_cfg, work / "mqtt-io.log", sub)
                running.append(peer)
        except PeerUnavailable as e:
            out["peer_error"] = str(e)
            print(f"  mqtt-io: {e}")
            sub, peer = None, None
            daemon, _ = start_pibridge(sim, config, log, client_id)
            running.append(daemon)
        time.sleep(3 * interval)  # both past their start-up
        samplers = {"pibridge": Sampler(daemon.pid)}
        if peer is not None:
            samplers["mqtt-io"] = Sampler(peer.pid)
        results: dict = {}
        counts0 = (stored_count(sim, client_id), sub.count if sub else 0)
        threads = [threading.Thread(target=lambda k=k, s=s: results.__setitem__(k, s.run(window))) for k, s in samplers.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out["values"] = {"pibridge": stored_count(sim, client_id) - counts0[0],
                         "mqtt-io": (sub.count - counts0[1]) if sub else 0}
        if sub is not None:
            sub.close()
    out["windows"] = results
    out["first"] = {k: statistics.median(v) for k, v in firsts.items() if v}
    w = results["pibridge"]
    line = (f"  {n:4d} sensors: pibridge CPU {w.cpu_percent:5.2f} %, RSS {w.rss_mean_mb:5.1f} MB, first value "
            f"{out['first'].get('pibridge', float('nan')):.2f} s, {out['values']['pibridge']:,} values in {window:g} s")
    if "mqtt-io" in results:
        p = results["mqtt-io"]
        line += (f"; mqtt-io CPU {p.cpu_percent:5.2f} %, RSS {p.rss_mean_mb:5.1f} MB, first value "
                 f"{out['first']['mqtt-io']:.2f} s, {out['values']['mqtt-io']:,} values")
    print(line, flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--sizes", help="comma-separated sensor counts (default 20,200; 20 with --quick)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between reads (whole seconds for mqtt-io)")
    parser.add_argument("--window", type=float, help="seconds of side-by-side sampling (default 60; 15 with --quick)")
    parser.add_argument("--starts", type=int, help="starts of each for the first-publish median (default 3; 1 with --quick)")
    parser.add_argument("--mqtt-io-version", default="2.7.0", help="the mqtt-io release to install (`pip index versions mqtt-io`)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in (args.sizes or ("20" if args.quick else "20,200")).split(",")]
    window = args.window or (15.0 if args.quick else 60.0)
    starts = args.starts or (1 if args.quick else 3)

    python: Path | None = None
    unavailable = None
    try:
        python = mqtt_io_python(args.mqtt_io_version)
    except (PeerUnavailable, OSError) as e:
        unavailable = f"mqtt-io {args.mqtt_io_version} could not be installed here: {e}"
        print(unavailable)
    rows = []
    with tempfile.TemporaryDirectory(prefix="pibridge-peer-") as tmp, simulator(Path(tmp) / "sim") as sim:
        broker = Broker(Path(tmp))
        try:
            for n in sizes:
                rows.append(compare(sim, broker, python, Path(tmp), n, args.interval, window, starts))
        finally:
            stop(broker.proc)

    figures: list[Figure] = []
    for r in rows:
        n, w = r["n"], r["windows"]
        why = unavailable or r["peer_error"]
        note = f"{n} mock sensors x 1 value, {args.interval:g} s"
        if "mqtt-io" not in w:
            figures.append(Figure("peer", f"mqtt-io {args.mqtt_io_version}, {n} sensors", 0, "", None, "-", None,
                                  f"not measured: {why}"))
            figures += [Figure("peer", f"CPU, {n} sensors, pibridge alone", w["pibridge"].cpu_percent, "% of a core",
                               None, "-", None, note),
                        Figure("peer", f"RSS mean, {n} sensors, pibridge alone", w["pibridge"].rss_mean_mb, "MB",
                               None, "-", None, note)]
            continue
        p, m = w["pibridge"], w["mqtt-io"]
        figures += [
            Figure("peer", f"CPU, {n} sensors", p.cpu_percent, "% of a core", m.cpu_percent, "<= 1x mqtt-io",
                   p.cpu_percent <= m.cpu_percent, note + f", side by side {window:g} s; baseline mqtt-io {args.mqtt_io_version}"),
            Figure("peer", f"RSS mean, {n} sensors", p.rss_mean_mb, "MB", m.rss_mean_mb, "<= 1x mqtt-io",
                   p.rss_mean_mb <= m.rss_mean_mb, f"peaks {p.hwm_mb:.1f} / {m.hwm_mb:.1f} MB"),
            Figure("peer", f"exec to first value, {n} sensors", r["first"]["pibridge"], "s", r["first"]["mqtt-io"],
                   "<= 1x mqtt-io", r["first"]["pibridge"] <= r["first"]["mqtt-io"],
                   f"median of {starts} starts each alone; pibridge with its identity on disk"),
            Figure("peer", f"values delivered in the window, {n} sensors", r["values"]["pibridge"], "values",
                   r["values"]["mqtt-io"], "-", None, "pibridge: stored by the simulator; mqtt-io: at a subscriber"),
        ]
    report(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
