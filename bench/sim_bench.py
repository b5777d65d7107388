"""The agent simulator's pace: pushes stored and answered per second, against the broker's own pace in the same run.

Run:  .venv/bin/python bench/sim_bench.py [--quick] [--pushes 20000] [--sensors 20] [--metrics 3] [--repeat 3]

``pibridge sim`` runs as a process of its own on loopback.  One client is
provisioned and gets 20 sensors of 3 metrics (one unit each).  Then a bare
paho-mqtt client on the mutual-TLS listener publishes every push (all the
sensor's metrics under one timestamp, QoS 1) as fast as the broker's PUBACKs
allow (at most ``--inflight`` unacknowledged), and waits for every push's
answer (``"Sensor was updated."`` on ``.../sensor/<id>/info/inbox``).  The
clock runs from the first publish to the last answer; afterwards the
benchmark checks that the simulator's store holds every value.

The baseline is the broker's pace in the same run: the last PUBACK, which
comes back as soon as Mosquitto has a push, however far behind the
simulator's API logic is.  A ratio near 1 means the simulator keeps up with
its broker.  Runs repeat ``--repeat`` times, each with a fresh simulator;
the median counts.
"""

from __future__ import annotations

import contextlib
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Figure, base_parser, free_port, machine, pibridge_cmd, report, spawn, stop  # noqa: E402

import paho.mqtt.client as mqtt  # noqa: E402

from pibridge.agent.identity import provision  # noqa: E402

TARGET = 5_000
UNIT = "SI.Temperature.CELSIUS"


class Client:
    """A bare paho client with the provisioned certificate: requests one at a time, then a flood of pushes."""

    def __init__(self, port: int, ca_file: Path, identity, inflight: int):
        self.base = f"/v1.0/{identity.client_id}"
        self._cond = threading.Condition()
        self._replies: dict[str, list[bytes]] = {}
        self.answers = 0
        self.errors: list[bytes] = []
        self.last_answer = 0.0
        self.acks = 0
        self.last_ack = 0.0
        self.mqtt = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.mqtt.tls_set(str(ca_file), str(identity.cert_file), str(identity.key_file))
        self.mqtt.max_inflight_messages_set(inflight)
        self.mqtt.on_socket_open = lambda c, u, sock: sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.mqtt.on_message = self._on_message
        self.mqtt.on_publish = self._on_publish
        connected = threading.Event()
        self.mqtt.on_connect = lambda *a: connected.set()
        self.mqtt.connect("127.0.0.1", port)
        self.mqtt.loop_start()
        if not connected.wait(10):
            raise RuntimeError("no CONNACK from the simulator")
        subscribed = threading.Event()
        self.mqtt.on_subscribe = lambda *a: subscribed.set()
        self.mqtt.subscribe([(f"{self.base}/sensor/+/info/inbox", 1), (f"{self.base}/sensor/+/error/inbox", 1),
                             (f"{self.base}/sensor/inbox", 1), (f"{self.base}/sensor/error/inbox", 1),
                             (f"{self.base}/sensor/+/metric/inbox", 1), (f"{self.base}/sensor/+/metric/error/inbox", 1)])
        if not subscribed.wait(10):
            raise RuntimeError("no SUBACK from the simulator")

    def _on_message(self, client, userdata, message) -> None:
        now = time.monotonic()
        where = message.topic[len(self.base):].split("/")  # a push's: ["", "sensor", id, "info"|"error", "inbox"]
        with self._cond:
            if len(where) == 5 and where[3] == "info":
                self.answers += 1
                self.last_answer = now
            elif len(where) == 5 and where[3] == "error":
                self.errors.append(bytes(message.payload))
            else:
                self._replies.setdefault(message.topic, []).append(bytes(message.payload))
            self._cond.notify_all()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self.acks += 1
        self.last_ack = time.monotonic()

    def request(self, path: str, body: dict, answer: str, error: str):
        self.mqtt.publish(self.base + path, json.dumps(body), qos=1)
        topics = (self.base + answer, self.base + error)
        with self._cond:
            if not self._cond.wait_for(lambda: any(self._replies.get(t) for t in topics), 10):
                raise RuntimeError(f"no answer to {path}")
            if self._replies.get(topics[1]):
                raise RuntimeError(f"{path} refused: {self._replies[topics[1]][0]!r}")
            return json.loads(self._replies[topics[0]].pop(0))

    def wait_answers(self, count: int, timeout: float) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.answers + len(self.errors) >= count, timeout):
                raise RuntimeError(f"{self.answers} of {count} pushes answered within {timeout:g} s")
        if self.errors:
            raise RuntimeError(f"{len(self.errors)} pushes refused, the first: {self.errors[0]!r}")

    def close(self) -> None:
        self.mqtt.disconnect()
        self.mqtt.loop_stop()


def wait_for_provisioning(state_dir: Path, port: int, timeout: float = 30.0):
    """Provision a client once the simulator's provisioning listener answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return provision(state_dir / "client", host="127.0.0.1", port=port, ca_file=state_dir / "ca.crt",
                             client_name="sim-bench")
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def stored(state_dir: Path) -> int:
    import sqlite3

    with contextlib.closing(sqlite3.connect(f"file:{state_dir / 'state.db'}?mode=ro", uri=True, timeout=30)) as db:
        return db.execute("SELECT count(*) FROM pushed_values").fetchone()[0]


def one_run(pushes: int, sensors: int, metrics: int, inflight: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="pibridge-sim-bench-") as tmp:
        state_dir = Path(tmp) / "sim"
        provision_port, api_port = free_port(), free_port()
        proc = spawn(pibridge_cmd("sim", "--state-dir", str(state_dir), "--provision-port", str(provision_port),
                                  "--api-port", str(api_port)), Path(tmp) / "sim.log")
        try:
            identity = wait_for_provisioning(state_dir, provision_port)
            client = Client(api_port, state_dir / "ca.crt", identity, inflight)
            try:
                targets = []
                for s in range(sensors):
                    sid = client.request("/sensor/create", {"name": f"room{s:02d}"},
                                         "/sensor/inbox", "/sensor/error/inbox")["sensorId"]
                    created = client.request(
                        f"/sensor/{sid}/metric/create",
                        {"metrics": [{"matchingId": str(m), "name": f"t{m}", "valueUnit": UNIT} for m in range(metrics)]},
                        f"/sensor/{sid}/metric/inbox", f"/sensor/{sid}/metric/error/inbox")
                    targets.append((f"{client.base}/sensor/{sid}/metric/pushValues", [m["metricId"] for m in created]))
                bodies = []
                for i in range(pushes):
                    topic, ids = targets[i % sensors]
                    body = {"metrics": [{"metricId": m, "value": 20.0 + (i % 100) / 10 + k} for k, m in enumerate(ids)],
                            "timestamp": 1_700_000_000_000 + i}
                    bodies.append((topic, json.dumps(body)))
                start = time.monotonic()
                for topic, body in bodies:
                    client.mqtt.publish(topic, body, qos=1)
                client.wait_answers(pushes, timeout=max(60.0, pushes / 500))
                answered, acked = client.last_answer - start, client.last_ack - start
            finally:
                client.close()
            values = stored(state_dir)
            if values != pushes * metrics:
                raise RuntimeError(f"the simulator stored {values} values of {pushes * metrics}")
        finally:
            stop(proc)
    return {"answered": pushes / answered, "acked": pushes / acked}


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=20_000, help="pushes per run (default 20,000)")
    parser.add_argument("--sensors", type=int, default=20, help="sensors, pushed to in turn (default 20)")
    parser.add_argument("--metrics", type=int, default=3, help="metrics per sensor, all in each push (default 3)")
    parser.add_argument("--inflight", type=int, default=512, help="unacknowledged pushes at most (default 512)")
    parser.add_argument("--repeat", type=int, default=3, help="runs, each with a fresh simulator (default 3)")
    args = parser.parse_args(argv)
    pushes, repeat = (5_000, 1) if args.quick else (args.pushes, args.repeat)

    print(f"machine: {machine()}")
    print(f"{pushes:,} pushes of {args.metrics} values to {args.sensors} sensors, QoS 1, at most {args.inflight} "
          f"unacknowledged; median of {repeat} run(s)")
    runs = [one_run(pushes, args.sensors, args.metrics, args.inflight) for _ in range(repeat)]
    for r in runs:
        print(f"  stored and answered {r['answered']:,.0f} pushes/s, broker acknowledged {r['acked']:,.0f} pushes/s")
    answered = statistics.median(r["answered"] for r in runs)
    acked = statistics.median(r["acked"] for r in runs)
    figures = [
        Figure("sim", "pushes stored and answered", answered, "pushes/s", acked,
               f">= {TARGET:,} pushes/s", answered >= TARGET),
        Figure("sim", "values stored", answered * args.metrics, "values/s", acked * args.metrics),
    ]
    report(figures, args.json)
    print("\nbaseline: the broker's PUBACKs to the same client in the same run (its pace, not the simulator's)")
    return 0 if all(f.met is not False for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
