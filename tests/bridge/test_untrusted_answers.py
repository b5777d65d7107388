"""Answers the daemon must not trust blindly, sent by a second client holding a copy of its certificate.

The broker lets anyone with the bridge's certificate publish on its topics,
so a forged or broken message can arrive where the agent's answers do: a
burst of "unknown sensor" errors must ask for one new set-up, not one per
message; garbage on the ping's answer topic is not the agent answering; an
``errorMessage`` with a newline must not forge a log line.
"""

from __future__ import annotations

import json
import logging
import shutil
import ssl
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from daemon_support import wait_for
from pibridge.agent.identity import load_identity
from pibridge.bridge import daemon
from pibridge.bridge.config import parse_config
from pibridge.bridge.daemon import Bridge


class Injector:
    """An MQTT client on the bridge's own topics, with a copy of its certificate."""

    def __init__(self, storage, sim, workdir):
        copy = workdir / "injector-identity"
        shutil.copytree(storage / "identity", copy)
        identity = load_identity(copy)
        self.base = f"/v1.0/{identity.client_id}"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="injector", protocol=mqtt.MQTTv311)
        self.client.tls_set(ca_certs=str(sim.ca_file), certfile=str(identity.cert_file),
                            keyfile=str(identity.key_file), cert_reqs=ssl.CERT_REQUIRED)
        connected = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: rc.is_failure or connected.set()
        self.client.connect("127.0.0.1", sim.api_port)
        self.client.loop_start()
        assert connected.wait(10), "the injector could not connect"

    def send(self, topic: str, payload) -> None:
        if not isinstance(payload, bytes):
            payload = json.dumps(payload).encode()
        self.client.publish(self.base + topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def bridge(sim, tmp_path, monkeypatch):
    monkeypatch.setattr(daemon, "RESETUP_MIN_INTERVAL", 1.0)
    config = parse_config(f"""
[agent]
host = "127.0.0.1"
provision_port = {sim.provision_port}
api_port = {sim.api_port}
ca_file = "{sim.ca_file}"
client_name = "untrusting"
timeout = 1.0
[storage]
dir = "{tmp_path / 'storage'}"
ack_window = 1.0
[[sensors]]
name = "porch"
driver = "mock"
interval = 0.1
metrics = ["temperature"]
""")
    bridge = Bridge(config)
    stop = threading.Event()
    bridge.start()
    thread = threading.Thread(target=bridge.run, args=(stop,))
    thread.start()
    wait_for(lambda: bridge.connected and bridge.delivery.mode == "live", 20, "a live connection")
    yield bridge
    stop.set()
    bridge.wake()
    thread.join(10)
    bridge.close()


@pytest.fixture
def injector(bridge, sim, tmp_path):
    injector = Injector(tmp_path / "storage", sim, tmp_path)
    yield injector
    injector.close()


def list_requests(caplog) -> int:
    return sum(1 for r in caplog.records if r.name == "pibridge.sim" and r.getMessage().startswith("request list_sensors"))


def test_a_burst_of_unknown_sensor_errors_asks_for_one_new_set_up(bridge, injector, sim, caplog):
    caplog.set_level(logging.INFO, logger="pibridge.sim")
    sensor_id = bridge.registry.sensor("porch").sensor_id
    before = list_requests(caplog)
    started = time.monotonic()
    for _ in range(60):
        injector.send(f"/sensor/{sensor_id}/error/inbox", {"errorcode": 15, "errorMessage": "no such sensor"})
    wait_for(lambda: bridge.push_errors >= 60, 10, "every forged error handled")
    burst = time.monotonic() - started
    wait_for(lambda: list_requests(caplog) > before and bridge._reconcile_at is None, 10,
             "the set-up the burst asked for")
    # One set-up per RESETUP_MIN_INTERVAL at most, however many errors came meanwhile.
    assert 1 <= list_requests(caplog) - before <= 1 + int(burst / daemon.RESETUP_MIN_INTERVAL)
    # Errors naming a sensor that is not ours set nothing up.
    for _ in range(5):
        injector.send("/sensor/notours/error/inbox", {"errorcode": 15, "errorMessage": "no such sensor"})
    wait_for(lambda: bridge.push_errors >= 65, 10, "the stranger's errors handled")
    assert bridge._reconcile_at is None


def test_garbage_on_the_ping_answer_topic_is_no_answer(bridge, injector, sim, caplog):
    caplog.set_level(logging.WARNING)
    sim.faults.silent = True
    stop = threading.Event()

    def flood():
        while not stop.is_set():
            injector.send("/ping/info/inbox", b"\x00 not the echo")
            injector.send("/ping/info/inbox", {"errorcode": "x", "value": [1, 2]})
            injector.send("/ping/info/inbox", b"pong")

    flooder = threading.Thread(target=flood)
    flooder.start()
    try:
        bridge._control.put(("confirm",))
        wait_for(lambda: "did not answer a ping" in caplog.text, 10, "the daemon noticing the agent is silent")
    finally:
        stop.set()
        flooder.join(10)
        sim.faults.silent = False
    assert "answered a ping with an error" not in caplog.text
    wait_for(lambda: bridge.connected and bridge.delivery.mode == "live", 20, "delivery back once the agent answers")


def test_an_error_message_cannot_forge_a_log_line(bridge, injector, caplog):
    caplog.set_level(logging.WARNING)
    sensor_id = bridge.registry.sensor("porch").sensor_id
    injector.send(f"/sensor/{sensor_id}/error/inbox",
                  {"errorcode": 27, "errorMessage": "bad value\n2026-12-01 ERROR pibridge: forged line"})
    def logged():
        return [r.getMessage() for r in caplog.records if "refused values" in r.getMessage()]

    lines = wait_for(logged, 10, "the error logged")
    assert all("\n" not in line for line in lines)
    assert "bad value\\n2026-12-01 ERROR pibridge: forged line" in lines[0]
