"""Fixtures for the web page tests: a real bridge (in this process) with its page, against the simulator.

``bridge_page(sensors=..., **http)``
    starts a :class:`pibridge.bridge.daemon.Bridge` with ``[http]`` on a free port,
    its control loop in a thread, against the ``sim`` fixture; returns a
    :class:`RunningBridge`.  Stopped after the test.
``artifacts``
    a directory for screenshots: ``test-artifacts/`` in the repository (or
    ``$PIBRIDGE_TEST_ARTIFACTS``), kept after the run for people to look at.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pibridge.bridge.config import parse_config
from pibridge.bridge.daemon import Bridge
from tests.support.sim import free_port
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]

SENSORS = """
[[sensors]]
name = "greenhouse"
driver = "mock"
interval = 0.25
metrics = ["temperature", "humidity"]
seed = 1

[[sensors]]
name = "door"
driver = "mock"
interval = 0.5
metrics = ["contact"]
seed = 3
"""


class RunningBridge:
    def __init__(self, bridge: Bridge, sim):
        self.bridge = bridge
        self.sim = sim
        self.url = bridge.page.url

    def get(self, path: str) -> tuple[int, bytes, dict]:
        """(status, body, headers) of a GET; an HTTP error status is returned, not raised."""
        try:
            with urllib.request.urlopen(self.url.rstrip("/") + path, timeout=10) as answer:
                return answer.status, answer.read(), dict(answer.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read(), dict(error.headers)

    def json(self, path: str):
        status, body, _ = self.get(path)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def stored_readings(self) -> int:
        return self.sim.store.received(self.bridge.client_id)[0] if self.bridge.client_id else 0


@pytest.fixture
def bridge_page(sim, tmp_path):
    started: list[tuple[Bridge, threading.Event, threading.Thread]] = []

    def start(sensors: str = SENSORS, **http) -> RunningBridge:
        lines = [f'listen = "127.0.0.1:{free_port()}"'] + [f"{k} = {json.dumps(v)}" for k, v in http.items()]
        text = (
            f'[agent]\nhost = "127.0.0.1"\nprovision_port = {sim.provision_port}\napi_port = {sim.api_port}\n'
            f'ca_file = "{sim.ca_file}"\ntimeout = 3.0\n\n'
            f'[storage]\ndir = "{tmp_path / "storage"}"\nack_window = 1.0\ncommit_interval = 0.2\n\n'
            "[http]\n" + "\n".join(lines) + "\n" + sensors
        )
        bridge = Bridge(parse_config(text, tmp_path / "pibridge.toml"))
        stop = threading.Event()
        bridge.start()
        thread = threading.Thread(target=bridge.run, args=(stop,), name="test-control", daemon=True)
        thread.start()
        started.append((bridge, stop, thread))
        assert bridge.page is not None and bridge.page.url, "the page did not start"
        wait_until(lambda: bridge.connected and bridge.delivery.delivered > 0, timeout=20,
                   what="the bridge to connect and deliver")
        return RunningBridge(bridge, sim)

    yield start
    for bridge, stop, thread in started:
        stop.set()
        bridge.wake()
        thread.join(10)
        bridge.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = Path(os.environ.get("PIBRIDGE_TEST_ARTIFACTS") or REPO / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path
