"""Fixtures of the simulator's own tests: one simulator per module, clients that speak the reference."""

from __future__ import annotations

import pytest

from pibridge.sim import Simulator
from tests.support.mqtt_client import Mqtt, provision
from tests.support.sim import free_port


class ApiClient:
    """A provisioned client connected to the API port and subscribed to all of its own topics."""

    def __init__(self, sim: Simulator, directory, name: str = "tester"):
        self.identity = provision(sim.host, sim.provision_port, sim.ca_file, directory, name)
        self.id = self.identity.client_id
        self.base = f"/v1.0/{self.id}"
        self.mqtt = Mqtt(sim.host, sim.api_port, sim.ca_file, self.identity.cert, self.identity.key).connect()
        self.mqtt.subscribe(f"{self.base}/#")

    def call(self, path: str, payload, answer: str | None, error: str | None, timeout: float = 5.0):
        """Publish to base+path and return ("answer"|"error", body) from base+answer / base+error."""
        return self.mqtt.request(self.base + path, payload, answer and self.base + answer,
                                 error and self.base + error, timeout)

    def create_sensor(self, name: str) -> str:
        kind, body = self.call("/sensor/create", {"name": name}, "/sensor/inbox", "/sensor/error/inbox")
        assert kind == "answer", body
        return body["sensorId"]

    def create_metrics(self, sensor_id: str, *definitions: dict) -> list[str]:
        metrics = [{"matchingId": str(i), **d} for i, d in enumerate(definitions)]
        kind, body = self.call(f"/sensor/{sensor_id}/metric/create", {"metrics": metrics},
                               f"/sensor/{sensor_id}/metric/inbox", f"/sensor/{sensor_id}/metric/error/inbox")
        assert kind == "answer", body
        return [m["metricId"] for m in body]

    def push(self, sensor_id: str, values: dict, timestamp: int | None = None):
        body: dict = {"metrics": [{"metricId": m, "value": v} for m, v in values.items()]}
        if timestamp is not None:
            body["timestamp"] = timestamp
        return self.call(f"/sensor/{sensor_id}/metric/pushValues", body,
                         f"/sensor/{sensor_id}/info/inbox", f"/sensor/{sensor_id}/error/inbox")

    def close(self) -> None:
        self.mqtt.close()


@pytest.fixture(scope="module")
def shared_sim(tmp_path_factory):
    """One simulator for a module whose tests do not disturb each other (each uses its own client)."""
    simulator = Simulator(tmp_path_factory.mktemp("shared-sim"), provision_port=free_port(), api_port=free_port())
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def client_factory(tmp_path):
    made: list[ApiClient] = []

    def make(simulator: Simulator, name: str = "tester") -> ApiClient:
        c = ApiClient(simulator, tmp_path / f"client{len(made)}", name)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def client(shared_sim, client_factory) -> ApiClient:
    return client_factory(shared_sim)
