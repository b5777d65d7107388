"""Topic names of the agent API (reference form, section 4 and 5).

Every request topic has an answer topic and an error topic.  The
:class:`Route` of a request names all three, so the client subscribes and
waits on exactly what the reference says the agent answers on.

Where the agent the vendor SDKs were written for answers elsewhere (table in
the API notes: describe errors, metric delete), the route also names those
topics (``vendor_answers`` / ``vendor_errors``): the client accepts an
answer there too, and the simulator's vendor dialect answers there.
"""

from __future__ import annotations

from dataclasses import dataclass

VERSION = "v1.0"


@dataclass(frozen=True)
class Route:
    """Where a request goes and where its answer and its error come back."""

    request: str
    answer: str | None
    error: str | None
    vendor_answers: tuple[str, ...] = ()
    vendor_errors: tuple[str, ...] = ()

    @property
    def answers(self) -> tuple[str, ...]:
        """Every topic an answer may come on: the reference's first."""
        return ((self.answer,) if self.answer else ()) + self.vendor_answers

    @property
    def errors(self) -> tuple[str, ...]:
        """Every topic an error may come on: the reference's first."""
        return ((self.error,) if self.error else ()) + self.vendor_errors


def create_client() -> str:
    return f"/{VERSION}/createClient"


def cert_back(csr_hash: str) -> Route:
    return Route(create_client(), f"/certBack/{csr_hash}", f"/certBack/{csr_hash}/error")


def _client(client_id: str) -> str:
    return f"/{VERSION}/{client_id}"


def ping(client_id: str) -> Route:
    base = f"{_client(client_id)}/ping"
    return Route(base, f"{base}/info/inbox", f"{base}/error/inbox")


def update_client(client_id: str) -> Route:
    base = f"{_client(client_id)}/update"
    return Route(base, f"{base}/info/inbox", f"{base}/error/inbox")


def delete_client(client_id: str) -> Route:
    # No answer in the reference; the Python SDK listens for errors here.
    base = f"{_client(client_id)}/delete"
    return Route(base, None, None, vendor_errors=(f"{base}/error/inbox",))


def create_sensor(client_id: str) -> Route:
    base = f"{_client(client_id)}/sensor"
    return Route(f"{base}/create", f"{base}/inbox", f"{base}/error/inbox")


def list_sensors(client_id: str) -> Route:
    c = _client(client_id)
    return Route(f"{c}/sensor/list", f"{c}/inventory/inbox", f"{c}/inventory/error/inbox")


def _sensor(client_id: str, sensor_id: str) -> str:
    return f"{_client(client_id)}/sensor/{sensor_id}"


def update_sensor(client_id: str, sensor_id: str) -> Route:
    base = f"{_sensor(client_id, sensor_id)}/update"
    return Route(base, f"{base}/info/inbox", f"{base}/error/inbox")


def delete_sensor(client_id: str, sensor_id: str) -> Route:
    base = f"{_sensor(client_id, sensor_id)}/delete"
    return Route(base, f"{base}/info/inbox", f"{base}/error/inbox")


def create_metrics(client_id: str, sensor_id: str) -> Route:
    base = f"{_sensor(client_id, sensor_id)}/metric"
    return Route(f"{base}/create", f"{base}/inbox", f"{base}/error/inbox")


def describe_metric(client_id: str, sensor_id: str, metric_id: str) -> Route:
    base = f"{_sensor(client_id, sensor_id)}/metric/{metric_id}/inventory"
    return Route(base, f"{base}/inbox", f"{base}/error/inbox",
                 vendor_errors=(f"{_sensor(client_id, sensor_id)}/inventory/error/inbox",))


def update_metrics(client_id: str, sensor_id: str) -> Route:
    base = f"{_sensor(client_id, sensor_id)}/metric/update"
    return Route(base, f"{base}/info/inbox", f"{base}/error/inbox")


def delete_metrics(client_id: str, sensor_id: str) -> Route:
    sensor = _sensor(client_id, sensor_id)
    base = f"{sensor}/metric"
    # Python SDK: the sensor-delete topics; Node.js SDK: below the request topic.
    return Route(f"{base}/delete", f"{base}/delete/info/inbox", f"{base}/error/inbox",
                 vendor_answers=(f"{sensor}/delete/info/inbox", f"{base}/delete/inbox"),
                 vendor_errors=(f"{sensor}/delete/error/inbox", f"{base}/delete/error/inbox"))


def push_values(client_id: str, sensor_id: str) -> Route:
    base = _sensor(client_id, sensor_id)
    return Route(f"{base}/metric/pushValues", f"{base}/info/inbox", f"{base}/error/inbox")


def push_values_node(client_id: str, sensor_id: str) -> Route:
    """The Node.js SDK's push topic (the sensor's own topic); answers as for :func:`push_values`."""
    route = push_values(client_id, sensor_id)
    return Route(_sensor(client_id, sensor_id), route.answer, route.error)


def livedata(client_id: str, sensor_id: str = "+") -> str:
    return f"{_sensor(client_id, sensor_id)}/livedata"
