"""The publishers the push and outbox benchmarks compare, each run in a fresh child process.

``python bench/_contenders.py NAME JOB.json [--profile OUT]`` runs one of
:data:`CONTENDERS` and prints its result as one JSON line.  A child process
of its own means ``getrusage(RUSAGE_SELF)`` counts exactly this contender's
CPU (all its threads, paho's network thread included) and nothing of the
simulator, the broker or the benchmark driving them.

Every contender sends the same pushes (:func:`payload_plan`): round after
round, one push per sensor holding all its metrics under one timestamp.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

BASE_TS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: every run stores the same timestamps


def payload_plan(job: dict, by_quantity: bool = False):
    """(sensor_id, {metric: value}, timestamp_ms) for every push of ``job``, in sending order.

    The keys are the agent's metric IDs of each sensor, or with ``by_quantity``
    the quantity names a driver reports (what Delivery maps onto the IDs).
    """
    sensors, quantities = job["sensors"], job["quantities"]
    keys = {s: quantities for s in sensors} if by_quantity else job["metric_ids"]
    first = job.get("first_round", 0)
    for r in range(first, first + job["rounds"]):
        for i, sensor in enumerate(sensors):
            yield sensor, {m: 20.0 + ((r * 7 + i * 3 + j) % 200) / 10.0 for j, m in enumerate(keys[sensor])}, BASE_TS + r * 1000 + i


def cpu_seconds() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _identity(job: dict):
    from pibridge.agent.identity import Identity

    fields = dict(job["identity"])
    if isinstance(fields.get("not_after"), str):
        from datetime import datetime

        fields["not_after"] = datetime.fromisoformat(fields["not_after"])
    return Identity(**fields)


def _connected_client(job: dict):
    from pibridge.agent.client import AgentClient

    client = AgentClient(_identity(job), host=job["host"], port=job["port"], ca_file=job["ca_file"])
    client.start()
    client.wait_connected(15)
    return client


class Counter:
    """Counts acknowledgements from any thread and wakes the waiter at ``total``."""

    def __init__(self, total: int):
        self.total = total
        self.count = 0
        self.done = threading.Event()
        self._changed = threading.Condition()

    def __call__(self, *_args) -> None:
        with self._changed:
            self.count += 1
            if self.count >= self.total:
                self.done.set()
            self._changed.notify_all()

    def acknowledged(self) -> int:
        return self.count

    def sleep(self, timeout: float) -> None:
        """Sleep until the next acknowledgement, at most ``timeout`` seconds."""
        with self._changed:
            self._changed.wait(timeout)

    def wait(self, timeout: float, who: str) -> None:
        if not self.done.wait(timeout):
            raise SystemExit(f"{who}: only {self.count} of {self.total} acknowledgements within {timeout:g} s")


def paced(job: dict, plan, acknowledged, who: str, sleep=time.sleep):
    """Yield the pushes of ``plan``, never more than ``job["window"]`` ahead of ``acknowledged()``.

    A daemon's readers hand over one round at a time, so the sender is never
    thousands of pushes ahead of the broker; every contender is held to the
    same bound (no ``window``: everything at once).
    """
    window = job.get("window")
    if not window:
        yield from plan
        return
    for sent, push in enumerate(plan):
        if sent - acknowledged() >= window:
            deadline = time.monotonic() + job["timeout"]
            while sent - acknowledged() >= window:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{who}: stuck with {sent - acknowledged()} pushes unacknowledged")
                sleep(0.001)
        yield push


def run_bare(job: dict) -> dict:
    """A bare paho-mqtt client: json.dumps the push, publish at QoS 1, count PUBACKs.  Nothing else."""
    import paho.mqtt.client as mqtt

    connected = threading.Event()
    total = job["rounds"] * len(job["sensors"])
    acks = Counter(total)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=job["identity"]["client_id"], protocol=mqtt.MQTTv311)
    client.tls_set(ca_certs=job["ca_file"], certfile=job["identity"]["cert_file"], keyfile=job["identity"]["key_file"])
    if job.get("inflight"):
        client.max_inflight_messages_set(job["inflight"])
    client.on_connect = lambda c, u, f, rc, p: rc.is_failure or connected.set()
    client.on_publish = lambda c, u, mid, rc, p: acks()
    client.connect(job["host"], job["port"])
    client.loop_start()
    if not connected.wait(15):
        raise SystemExit("bare publisher: no CONNACK within 15 s")
    prefix = f"/v1.0/{job['identity']['client_id']}/sensor/"
    topic_of = {s: f"{prefix}{s}/metric/pushValues" for s in job["sensors"]}
    dumps = json.dumps

    c0, t0 = cpu_seconds(), time.perf_counter()
    for sensor, values, ts in paced(job, payload_plan(job), acks.acknowledged, "bare publisher", acks.sleep):
        body = {"metrics": [{"metricId": m, "value": v} for m, v in values.items()], "timestamp": ts}
        client.publish(topic_of[sensor], dumps(body), qos=1)
    acks.wait(job["timeout"], "bare publisher")
    t1, c1 = time.perf_counter(), cpu_seconds()
    client.disconnect()
    client.loop_stop()
    return {"seconds": t1 - t0, "cpu": c1 - c0, "pushes": total}


def run_bare_confirmed(job: dict) -> dict:
    """The bare publisher held to the agent's pace: at most ``job["credit"]`` pushes the agent has
    not answered yet ("Sensor was updated." on the sensor's info topic), the bound pibridge's
    replay keeps with its pings.  The clock stops at the last answer."""
    import paho.mqtt.client as mqtt

    connected, subscribed = threading.Event(), threading.Event()
    total = job["rounds"] * len(job["sensors"])
    answers = Counter(total)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=job["identity"]["client_id"], protocol=mqtt.MQTTv311)
    client.tls_set(ca_certs=job["ca_file"], certfile=job["identity"]["cert_file"], keyfile=job["identity"]["key_file"])
    client.on_connect = lambda c, u, f, rc, p: rc.is_failure or connected.set()
    client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
    client.on_message = lambda c, u, m: answers()
    client.connect(job["host"], job["port"])
    client.loop_start()
    if not connected.wait(15):
        raise SystemExit("bare publisher: no CONNACK within 15 s")
    prefix = f"/v1.0/{job['identity']['client_id']}/sensor/"
    client.subscribe(prefix + "+/info/inbox", qos=0)
    if not subscribed.wait(15):
        raise SystemExit("bare publisher: no SUBACK within 15 s")
    topic_of = {s: f"{prefix}{s}/metric/pushValues" for s in job["sensors"]}
    dumps = json.dumps
    paced_job = job | {"window": job["credit"]}
    c0, t0 = cpu_seconds(), time.perf_counter()
    for sensor, values, ts in paced(paced_job, payload_plan(job), answers.acknowledged, "bare publisher", answers.sleep):
        body = {"metrics": [{"metricId": m, "value": v} for m, v in values.items()], "timestamp": ts}
        client.publish(topic_of[sensor], dumps(body), qos=1)
    answers.wait(job["timeout"], "bare publisher (agent answers)")
    t1, c1 = time.perf_counter(), cpu_seconds()
    client.disconnect()
    client.loop_stop()
    return {"seconds": t1 - t0, "cpu": c1 - c0, "pushes": total}


def run_client(job: dict) -> dict:
    """pibridge's AgentClient alone: ``publish_values`` with an acknowledgement callback per push."""
    client = _connected_client(job)
    total = job["rounds"] * len(job["sensors"])
    acks = Counter(total)
    c0, t0 = cpu_seconds(), time.perf_counter()
    for sensor, values, ts in paced(job, payload_plan(job), acks.acknowledged, "AgentClient.publish_values", acks.sleep):
        client.publish_values(sensor, values, ts, on_ack=acks)
    acks.wait(job["timeout"], "AgentClient.publish_values")
    t1, c1 = time.perf_counter(), cpu_seconds()
    client.stop()
    return {"seconds": t1 - t0, "cpu": c1 - c0, "pushes": total}


def _routes(job: dict) -> dict:
    from pibridge.bridge.registry import Route

    # The bench names each configured sensor after its agent ID; quantities map onto that sensor's metric IDs.
    return {s: Route(s, dict(zip(job["quantities"], job["metric_ids"][s]))) for s in job["sensors"]}


def _outbox(job: dict):
    from pibridge.outbox.store import Outbox

    return Outbox(Path(job["outbox"]), **job.get("outbox_options", {}))


def _wait_delivered(delivery, total: int, timeout: float, who: str) -> None:
    # Delivery counts acknowledgements in its own thread; a plain integer is safe to poll.
    deadline = time.monotonic() + timeout
    while delivery.delivered < total:
        if time.monotonic() > deadline:
            raise SystemExit(f"{who}: only {delivery.delivered} of {total} readings acknowledged within {timeout:g} s")
        time.sleep(0.002)


def run_delivery(job: dict) -> dict:
    """The daemon's live path: readers submit Readings to Delivery, which publishes through AgentClient."""
    from pibridge.bridge.delivery import LIVE, Delivery
    from pibridge.readings import Reading

    client = _connected_client(job)
    outbox = _outbox(job)
    delivery = Delivery(outbox, **job.get("delivery_options", {}))
    delivery.start()
    delivery.attach(client, _routes(job))
    deadline = time.monotonic() + 15
    while delivery.mode is not LIVE:
        if time.monotonic() > deadline:
            raise SystemExit(f"Delivery did not go live within 15 s (mode {delivery.mode})")
        time.sleep(0.01)
    total = job["rounds"] * len(job["sensors"])
    readings = [Reading(s, ts, v) for s, v, ts in payload_plan(job, by_quantity=True)]
    c0, t0 = cpu_seconds(), time.perf_counter()
    for reading in paced(job, readings, lambda: delivery.delivered, "Delivery"):
        delivery.submit(reading)
    _wait_delivered(delivery, total, job["timeout"], "Delivery")
    t1, c1 = time.perf_counter(), cpu_seconds()
    spilled = delivery.spilled
    delivery.stop()
    client.stop()
    outbox.close()
    return {"seconds": t1 - t0, "cpu": c1 - c0, "pushes": total, "spilled": spilled}


def run_fill(job: dict) -> dict:
    """The agent is down: Delivery writes every submitted Reading to the outbox, in durable batches."""
    from pibridge.bridge.delivery import Delivery
    from pibridge.outbox.store import read_stats
    from pibridge.readings import Reading

    outbox = _outbox(job)
    delivery = Delivery(outbox, **job.get("delivery_options", {}))
    delivery.start()
    total = job["rounds"] * len(job["sensors"])
    chunk = 10_000
    plan = payload_plan(job, by_quantity=True)
    c0, t0 = cpu_seconds(), time.perf_counter()
    submitted = 0
    while submitted < total:
        # Build readings a chunk at a time so the plan itself does not fill the memory being measured.
        for s, v, ts in (next(plan) for _ in range(min(chunk, total - submitted))):
            delivery.submit(Reading(s, ts, v))
            submitted += 1
    delivery.stop(drain_timeout=0, timeout=job["timeout"])
    t1, c1 = time.perf_counter(), cpu_seconds()
    outbox.close()
    stats = read_stats(Path(job["outbox"]))
    return {"seconds": t1 - t0, "cpu": c1 - c0, "readings": total, "stats": _jsonable(stats)}


def run_replay(job: dict) -> dict:
    """The agent is back: Delivery replays the whole outbox, oldest first, until it is empty."""
    from pibridge.bridge.delivery import LIVE, Delivery

    client = _connected_client(job)
    outbox = _outbox(job)
    delivery = Delivery(outbox, **job.get("delivery_options", {}))
    delivery.start()
    total = job["rounds"] * len(job["sensors"])
    c0, t0 = cpu_seconds(), time.perf_counter()
    delivery.attach(client, _routes(job))
    _wait_delivered(delivery, total, job["timeout"], "replay")
    while delivery.mode is not LIVE:
        time.sleep(0.002)
    t1, c1 = time.perf_counter(), cpu_seconds()
    delivery.stop()
    client.stop()
    outbox.close()
    return {"seconds": t1 - t0, "cpu": c1 - c0, "pushes": total}


def _jsonable(stats) -> dict:
    if hasattr(stats, "_asdict"):
        stats = stats._asdict()
    elif hasattr(stats, "__dataclass_fields__"):
        from dataclasses import asdict

        stats = asdict(stats)
    return {k: (v if isinstance(v, (int, float, str, bool, type(None))) else str(v)) for k, v in dict(stats).items()}


def _profiled(func, job: dict, out: str) -> dict:
    """Run ``func`` under cProfile in every thread (paho's and the delivery thread too), merged into ``out``."""
    import cProfile
    import pstats

    profiles: list[cProfile.Profile] = []
    original_run = threading.Thread.run

    def profiled_run(self):
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()
        try:
            original_run(self)
        finally:
            profile.disable()

    threading.Thread.run = profiled_run
    main_profile = cProfile.Profile()
    result = main_profile.runcall(func, job)
    threading.Thread.run = original_run
    stats = pstats.Stats(main_profile)
    for profile in profiles:
        profile.create_stats()
        stats.add(profile)
    stats.dump_stats(out)
    stats.stream = sys.stderr
    stats.sort_stats("tottime").print_stats(30)
    return result


CONTENDERS = {
    "bare": run_bare,
    "bare_confirmed": run_bare_confirmed,
    "client": run_client,
    "delivery": run_delivery,
    "fill": run_fill,
    "replay": run_replay,
}


def main(argv: list[str]) -> int:
    name, job = argv[0], json.loads(Path(argv[1]).read_text())
    if "--profile" in argv:
        result = _profiled(CONTENDERS[name], job, argv[argv.index("--profile") + 1])
    else:
        result = CONTENDERS[name](job)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
