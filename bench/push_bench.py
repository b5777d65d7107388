"""Push path: values/s and CPU per value, pibridge against a bare paho QoS 1 publisher.

Run:  .venv/bin/python bench/push_bench.py [--quick] [--rounds N] [--sensors 200] [--metrics 5] [--profile OUT]

A simulator runs on loopback; one client is provisioned and gets 200 sensors
of 5 metrics each, created through pibridge's own client.  Then contenders
push the same payloads (one push per sensor per round, all the sensor's
metrics under one timestamp, as the agent wants):

* **pibridge**: the daemon's delivery thread (:class:`pibridge.bridge.delivery.Delivery`
  in live mode, an :class:`pibridge.outbox.Outbox` beside it, untouched while
  the agent acknowledges in time) publishing through
  :meth:`AgentClient.publish_values`.  Readings are submitted as the sensor
  readers submit them; a value counts when its PUBACK has come back and
  Delivery has retired it.  This is the whole path every live reading takes.
* **client only**: :meth:`AgentClient.publish_values` called directly with an
  acknowledgement callback, to tell the client's cost from Delivery's.
* **bare paho**: a paho-mqtt client on its own mutual-TLS connection with the
  same certificate, ``json.dumps`` of the same push body, QoS 1 to the same
  topics, PUBACKs counted and nothing else.

Every contender is held to the same bound: at most two rounds of pushes
(``--window``) ahead of the PUBACKs, as the daemon's readers hand over a round
at a time; a burst of all pushes at once would measure paho's queue, and
would push Delivery past its ack window into spilling.

Each contender runs in a fresh child process (bench/_contenders.py), so its
CPU time (``getrusage(RUSAGE_SELF)``, every thread) holds its own work only.
The clock runs from the first publish to the last acknowledgement;
connecting is not counted.  Runs alternate between contenders and the best
of ``--repeat`` counts for each.  After each run the benchmark checks that
the simulator stored every value.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Figure, base_parser, report, simulator, stored_count, wait_stored  # noqa: E402

CONTENDERS_SCRIPT = Path(__file__).resolve().parent / "_contenders.py"
LABELS = {"delivery": "pibridge", "client": "client only", "bare": "bare paho"}


def contend(name: str, job: dict, workdir: Path, profile: str | None = None) -> dict:
    """Run one contender in a fresh interpreter and return its timings."""
    job_file = workdir / f"job-{name}.json"
    job_file.write_text(json.dumps(job))
    cmd = [sys.executable, str(CONTENDERS_SCRIPT), name, str(job_file)]
    if profile:
        cmd += ["--profile", profile]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=job["timeout"] + 120)
    if out.returncode != 0:
        raise RuntimeError(f"contender {name!r} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    if profile:
        print(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def identity_job(identity, sim) -> dict:
    not_after = identity.not_after
    return {
        "host": "127.0.0.1",
        "port": sim.api_port,
        "ca_file": str(sim.ca_file),
        "identity": {
            "client_id": identity.client_id,
            "key_file": str(identity.key_file),
            "cert_file": str(identity.cert_file),
            "not_after": not_after.isoformat() if hasattr(not_after, "isoformat") else not_after,
        },
    }


def setup_client(sim, workdir: Path, name: str, n_sensors: int, n_metrics: int) -> tuple[object, dict]:
    """Provision one client; create its sensors and metrics through pibridge's AgentClient.

    Returns the identity and the plan fields of a job: sensor IDs, each
    sensor's metric IDs, and the quantity names Delivery maps onto them.
    """
    from pibridge.agent.client import AgentClient
    from pibridge.agent.identity import provision
    from pibridge.units import MetricDefinition, ValueUnit

    identity = provision(workdir / "identity", host="127.0.0.1", port=sim.provision_port, ca_file=sim.ca_file,
                         client_name=name)
    client = AgentClient(identity, host="127.0.0.1", port=sim.api_port, ca_file=sim.ca_file)
    client.start()
    quantities = [f"q{j}" for j in range(n_metrics)]
    metric_ids: dict[str, list[str]] = {}
    try:
        client.wait_connected(15)
        definitions = [MetricDefinition(q, ValueUnit.CELSIUS) for q in quantities]
        for i in range(n_sensors):
            sensor_id = _id(client.create_sensor(f"{name}{i:03d}"), "sensor_id")
            metric_ids[sensor_id] = [_id(m, "metric_id") for m in client.create_metrics(sensor_id, definitions)]
    finally:
        client.stop()
    return identity, {"sensors": list(metric_ids), "metric_ids": metric_ids, "quantities": quantities}


def _id(obj, attr: str) -> str:
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict):
        return obj.get(attr) or obj.get(attr.replace("_id", "Id"))
    return getattr(obj, attr)


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, default=200)
    parser.add_argument("--metrics", type=int, default=5)
    parser.add_argument("--rounds", type=int, help="pushes per sensor per run (default 50, 10 with --quick)")
    parser.add_argument("--repeat", type=int, help="runs per contender, alternating; the best counts (default 3, 1 with --quick)")
    parser.add_argument("--profile", metavar="PATH", help="also write a cProfile (all threads) of one pibridge run")
    parser.add_argument("--contenders", default="bare,delivery,client", help="which contenders to run")
    parser.add_argument("--window", type=int, help="pushes a contender may be ahead of its PUBACKs "
                        "(default: two rounds, 2 x --sensors; 0: no bound)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (10 if args.quick else 50)
    repeat = args.repeat or (1 if args.quick else 3)
    names = [n for n in args.contenders.split(",") if n]
    per_run = rounds * args.sensors * args.metrics

    with tempfile.TemporaryDirectory(prefix="pibridge-pushbench-") as tmp, simulator(Path(tmp) / "sim") as sim:
        tmp = Path(tmp)
        identity, plan = setup_client(sim, tmp, "pushbench", args.sensors, args.metrics)
        job = identity_job(identity, sim) | plan | {
            "rounds": rounds,
            "timeout": 600,
            "window": args.window or 2 * args.sensors,
            "delivery_options": {"ack_window": 2.0},  # the daemon's default [storage] ack_window
        }
        print(f"push path: {args.sensors} sensors x {args.metrics} metrics, {rounds} rounds = {per_run:,} values per run")
        results: dict[str, list[dict]] = {n: [] for n in names}
        stored = stored_count(sim, identity.client_id)
        for run in range(repeat):
            order = names if run % 2 == 0 else names[::-1]
            for name in order:
                outbox = tmp / f"outbox-{name}-{run}"
                outbox.mkdir()
                r = contend(name, job | {"outbox": str(outbox / "outbox.db"), "first_round": run * rounds}, tmp)
                stored += per_run
                if wait_stored(sim, identity.client_id, stored, timeout=600) < stored:
                    raise RuntimeError(f"the simulator did not store all {per_run:,} values of the {name} run")
                print(f"  run {run + 1} {LABELS[name]:12s} {per_run / r['seconds']:10,.0f} values/s"
                      f"  {r['cpu'] / per_run * 1e6:7.2f} µs CPU/value"
                      f"  ({r['seconds']:.2f} s wall, {r['cpu']:.2f} s CPU"
                      + (f", {r['spilled']} spilled to the outbox" if r.get("spilled") else "") + ")", flush=True)
                results[name].append(r)
        if args.profile:
            contend("delivery", job | {"outbox": str(tmp / "outbox-profile.db")}, tmp, profile=args.profile)
            print(f"cProfile of one pibridge run (all threads) written to {args.profile}")

    def best(name: str) -> tuple[float, float]:
        return (max(per_run / r["seconds"] for r in results[name]), min(r["cpu"] / per_run for r in results[name]))

    note = f"{args.sensors}x{args.metrics}, {rounds} rounds, best of {repeat}, window {job['window']}"
    figures = []
    if "bare" in results:
        rate_b, cpu_b = best("bare")
        for name in ("delivery", "client"):
            if name in results:
                rate, cpu = best(name)
                target = name == "delivery"
                figures += [
                    Figure("push", f"values/s, {LABELS[name]}", rate, "values/s", rate_b,
                           ">= 0.70x bare" if target else "-", rate >= 0.7 * rate_b if target else None, note),
                    Figure("push", f"CPU per value, {LABELS[name]}", cpu * 1e6, "µs", cpu_b * 1e6,
                           "<= 1.5x bare" if target else "-", cpu <= 1.5 * cpu_b if target else None, note),
                ]
    report(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
