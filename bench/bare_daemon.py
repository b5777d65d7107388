"""The baseline for the daemon benchmarks: the least a Python program can do to push sensor values.

Usage: bare_daemon.py HOST PORT CA CERT KEY CLIENT_ID SENSORS METRICS INTERVAL

One paho-mqtt client on a mutual-TLS connection publishes, every INTERVAL
seconds, one QoS 1 push per sensor with METRICS made-up values, and does
nothing else: no drivers, no outbox, no logging, no retry.  The footprint
benchmark runs it next to ``pibridge run`` and compares RSS and time to the
first push.  It prints ``first-puback <seconds since start>`` once.
"""

from __future__ import annotations

import time

START = time.monotonic()

import json  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402

import paho.mqtt.client as mqtt  # noqa: E402


def main(argv: list[str]) -> int:
    host, port, ca, cert, key, client_id = argv[:6]
    sensors, metrics, interval = int(argv[6]), int(argv[7]), float(argv[8])
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    first = threading.Event()

    def on_publish(client, userdata, mid, reason_code, properties):
        if not first.is_set():
            first.set()
            print(f"first-puback {time.monotonic() - START:.3f}", flush=True)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{client_id}", protocol=mqtt.MQTTv311)
    client.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
    client.on_publish = on_publish
    client.connect(host, int(port))
    client.loop_start()
    rng = random.Random(1)
    next_at = time.monotonic()
    while not stopping.is_set():
        ts = int(time.time() * 1000)
        for s in range(sensors):
            body = {"metrics": [{"metricId": f"m{j}", "value": round(rng.uniform(0, 100), 2)} for j in range(metrics)], "timestamp": ts}
            client.publish(f"/v1.0/{client_id}/sensor/bare{s}/metric/pushValues", json.dumps(body), qos=1)
        next_at += interval
        stopping.wait(max(0.0, next_at - time.monotonic()))
    client.disconnect()
    client.loop_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
