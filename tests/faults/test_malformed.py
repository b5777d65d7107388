"""Garbage from the agent's side, and garbage config files: no crash, no traceback, a clear error.

Answers: a second MQTT client holding a copy of the bridge's own certificate
(so the broker's ACL lets it onto exactly that client's topics) publishes
fuzzed payloads -- not JSON, wrong JSON types, deeply nested JSON, a
megabyte of JSON, bytes that are not UTF-8 -- on the topics the running
daemon listens to, and on topics it never asked for.  The daemon must keep
running and keep its schedule, and its log must not show a traceback.

Config: ``pibridge check --config`` is run as a user would, on config files
hypothesis derives from a valid one by breaking it (wrong types, cut short,
stray characters).  Exit status 0, 1 or 2, never a traceback, and a file
that does not load names the file.
"""

from __future__ import annotations

import json
import random
import shutil
import ssl
import string
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pibridge.agent.identity import load_identity
from tests.faults.bridge import Bridge, mock, pibridge, wait_until
from tests.faults.checks import assert_no_gaps, readings

INTERVAL = 0.25


def fuzz_payloads(rng: random.Random, count: int) -> list[bytes]:
    """Payloads an agent must never send, a deterministic mix for one seed."""

    def value(depth: int):
        kind = rng.randrange(9 if depth < 4 else 6)
        if kind == 0:
            return None
        if kind == 1:
            return rng.choice([True, False])
        if kind == 2:
            return rng.randint(-2**70, 2**70)
        if kind == 3:
            return rng.choice([0.5, -1e308, 1e-308, 3.14])
        if kind in (4, 5):
            return "".join(rng.choice(string.printable + "äöü€\u202e") for _ in range(rng.randrange(40)))
        if kind == 6:
            return [value(depth + 1) for _ in range(rng.randrange(5))]
        keys = ["errorMessage", "errorcode", "metrics", "sensorId", "metricId", "name", "value", "timestamp", "x"]
        return {rng.choice(keys): value(depth + 1) for _ in range(rng.randrange(6))}

    fixed = [
        b"", b"\xff\xfe\x00garbage", b"not json", b"[]", b"{}", b"null", b"42", b'"Sensor was updated."',
        b'{"errorcode": "seven", "errorMessage": []}', b'{"errorcode": 1e400}', b'{"errorcode": -1}',
        b'{"errorMessage": "boom", "errorcode": 27, "metrics": "not a list"}',
        b"[" * 100_000 + b"]" * 100_000,
        json.dumps({"errorMessage": "x" * 1_000_000, "errorcode": 3}).encode(),
        b'{"sensorId": 5, "name": null}', b'[{"sensorId": "a/b/#", "name": "x"}]',
    ]
    return fixed + [json.dumps(value(0)).encode() for _ in range(count)]


class Injector:
    """An MQTT client on the bridge's own topics, with a copy of its certificate."""

    def __init__(self, bridge: Bridge, sim, workdir):
        copy = workdir / "injector-identity"
        shutil.copytree(bridge.storage / "identity", copy)
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

    def send(self, topic: str, payload: bytes) -> None:
        self.client.publish(self.base + topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_fuzzed_answers_do_not_crash_or_stall_the_daemon(tmp_path, sim):
    sensors = [mock("lab", INTERVAL, seed=1), mock("yard", INTERVAL, ("temperature",), seed=2)]
    bridge = Bridge(tmp_path, sim, sensors, name="fuzzed").start()
    bridge.wait_values(10, timeout=30)
    sensor_ids = bridge.sensor_ids()
    injector = Injector(bridge, sim, tmp_path)
    rng = random.Random(7)
    topics = [f"/sensor/{sid}/error/inbox" for sid in sensor_ids.values()]      # always listened to
    topics += ["/ping/info/inbox", "/ping/error/inbox", "/inventory/inbox", "/sensor/inbox"]  # answers to requests
    topics += [f"/sensor/{sid}/livedata" for sid in sensor_ids.values()]
    topics += ["/sensor/nosuch/metric/inbox", "/certBack/x", "/unexpected/topic", "/v9.9/what"]
    started = time.time() * 1000
    try:
        for payload in fuzz_payloads(rng, 150):
            injector.send(rng.choice(topics), payload)
        # Keep at it through at least one of the daemon's pings (every 10 s) so a request
        # is waiting for an answer while garbage arrives on its answer topic.
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline:
            injector.send(rng.choice(topics[:6]), rng.choice(fuzz_payloads(rng, 3)))
            bridge.assert_running()
    finally:
        injector.close()
    ended = time.time() * 1000
    wait_until(lambda: all(max(readings(bridge.values()).get(s, {0: 0})) > ended + 1000 for s in ("lab", "yard")),
               30, "readings from after the fuzzing")
    bridge.assert_running()
    assert bridge.stop() == 0
    log = bridge.log_text()
    assert "Traceback" not in log, log[log.index("Traceback") - 500:][:3000]
    got = readings(bridge.values())
    for sensor in ("lab", "yard"):
        stamps = sorted(ts for ts in got[sensor] if ts >= started - 2000)
        assert_no_gaps(stamps, INTERVAL, sensor)


def test_deeply_nested_json_is_a_protocol_error_not_a_recursion_error():
    # json.loads raises RecursionError, not ValueError, on a few thousand nested brackets: an agent
    # (or anyone holding the client's certificate) could otherwise put a traceback in the log.
    from pibridge.agent.client import decode_answer
    from pibridge.agent.errors import ProtocolError

    with pytest.raises(ProtocolError, match="/v1.0/x/sensor/y/error/inbox"):
        decode_answer(b"[" * 100_000 + b"]" * 100_000, "/v1.0/x/sensor/y/error/inbox")


def test_garbage_answers_while_setting_up_give_a_clear_error_then_recover(tmp_path, sim):
    sensors = [mock("lab", INTERVAL, seed=1)]
    bridge = Bridge(tmp_path, sim, sensors, name="setup").start()
    bridge.wait_values(4, timeout=30)
    injector = Injector(bridge, sim, tmp_path)
    assert bridge.stop() == 0
    # Added to the config: a sensor the agent does not know yet, so the restart has to ask for one.
    with bridge.config.open("a") as f:
        f.write('\n[[sensors]]\nname = "new"\ndriver = "mock"\ninterval = 0.25\nmetrics = ["temperature"]\n')
    rng = random.Random(11)
    # The agent keeps quiet, so the garbage is the only answer the daemon's setup requests get.
    sim.faults.silent = True
    bridge.start()
    try:
        def garbage_seen():
            for payload in (b"not json", b'{"sensorId": 5}', b"[1, 2", b'{"errorcode": "x"}'):
                injector.send(rng.choice(["/inventory/inbox", "/sensor/inbox"]), payload)
            return "setting up sensors on the agent failed" in bridge.log_text()

        wait_until(garbage_seen, 30, "the daemon to report the garbage answer", interval=0.05)
    finally:
        injector.close()
        sim.faults.silent = False
    wait_until(lambda: "new" in bridge.sensor_ids() and readings(bridge.values()).get("new"), 40,
               "the new sensor to be set up once the garbage stops")
    bridge.assert_running()
    assert bridge.stop() == 0
    log = bridge.log_text()
    assert "Traceback" not in log
    failed = [line for line in log.splitlines() if "setting up sensors on the agent failed" in line]
    assert failed and all("/v1.0/" in line for line in failed), failed


VALID = """\
[agent]
host = "127.0.0.1"
api_port = 18884
client_name = "fuzz"
timeout = 2.0

[storage]
dir = "{storage}"
outbox_max_bytes = 1000000
commit_interval = 1.0

[[sensors]]
name = "greenhouse"
driver = "mock"
interval = 5.0
metrics = ["temperature", "humidity"]
seed = 3

[sensors.metric.temperature]
offset = -0.5
"""

SCALARS = st.one_of(
    st.integers(-10**20, 10**20).map(str), st.floats(allow_nan=False).map(repr), st.booleans().map(lambda b: "true" if b else "false"),
    st.text(max_size=12).map(json.dumps), st.just("[1, \"a\"]"), st.just("{ x = 1 }"), st.just("nan"), st.just("inf"),
)


@st.composite
def broken_configs(draw):
    lines = VALID.splitlines()
    how = draw(st.sampled_from(["value", "cut", "insert", "drop"]))
    if how == "value":
        keyed = [i for i, line in enumerate(lines) if " = " in line]
        i = draw(st.sampled_from(keyed))
        lines[i] = lines[i].split(" = ")[0] + " = " + draw(SCALARS)
    elif how == "cut":
        text = "\n".join(lines)
        return text[: draw(st.integers(0, len(text)))]
    elif how == "insert":
        i = draw(st.integers(0, len(lines)))
        lines.insert(i, draw(st.text(alphabet=st.characters(codec="utf-8"), max_size=30)))
    else:
        del lines[draw(st.integers(0, len(lines) - 1))]
    return "\n".join(lines) + "\n"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=broken_configs())
def test_fuzzed_config_files_through_pibridge_check(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text.replace("{storage}", str(tmp_path / "storage")), encoding="utf-8")
    done = pibridge("check", "--config", str(path), "--timeout", "2")
    output = done.stdout + done.stderr
    assert done.returncode in (0, 1, 2), output
    assert "Traceback" not in output, output
    if done.returncode == 2:
        assert str(path) in output, f"the error does not name the file:\n{output}"
