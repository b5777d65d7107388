"""Which request a topic is, and where its answers and errors go, in each dialect of the simulator.

``reference`` serves the API reference's request topics and answers on its
answer and error topics only; ``vendor`` also serves the vendor SDKs' request
topics and answers where they listen too (errors only where they listen);
``both`` answers everywhere.  The topic names themselves come from
:mod:`pibridge.agent.topics`, the client's own table, so the two cannot drift.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from pibridge.agent import topics

V = topics.VERSION
DIALECTS = ("reference", "vendor", "both")
TEXT_ANSWERS = ("json", "bare")

#: What the agent logic subscribes to: every request topic of the reference and of the vendor SDKs.
#: ``sensor/+`` covers the reference's ``sensor/create`` and ``sensor/list`` and the Node.js SDK's
#: push to ``sensor/:sensorId`` (one subscription: overlapping ones would deliver a request twice).
REQUEST_TOPICS = [
    f"/{V}/createClient",
    "/createConnector",
    f"/{V}/+/ping",
    f"/{V}/+/update",
    f"/{V}/+/delete",
    f"/{V}/+/inventory",
    f"/{V}/+/sensor/+",
    f"/{V}/+/sensor/+/update",
    f"/{V}/+/sensor/+/delete",
    f"/{V}/+/sensor/+/metric",
    f"/{V}/+/sensor/+/metric/create",
    f"/{V}/+/sensor/+/metric/update",
    f"/{V}/+/sensor/+/metric/delete",
    f"/{V}/+/sensor/+/metric/pushValues",
    f"/{V}/+/sensor/+/metric/+/inventory",
    f"/{V}/+/sensor/+/metric/+/describe",
]


@dataclass
class Request:
    """One parsed request: what it is, whose it is, and where its answers and errors go.

    ``vendor_form`` marks a request topic only the vendor SDKs use.
    """

    kind: str
    topic: str
    payload: bytes
    client_id: str = ""
    sensor_id: str = ""
    metric_id: str = ""
    csr_hash: str = ""
    vendor_form: bool = False
    answer_topics: list[str] = field(default_factory=list)
    error_topics: list[str] = field(default_factory=list)


def _where(reference: str | None, vendor: tuple[str, ...], dialect: str, errors: bool) -> list[str]:
    """The topics an answer (or an error) goes to in *dialect*.

    The vendor dialect answers on the reference's topic and the SDKs' (an
    answer where nobody listens costs nothing, and the reference's own
    examples keep working), but reports errors only where the SDKs listen:
    the Python SDK also listens on the reference's metric error topic and
    would report one failed delete twice.
    """
    ours = [reference] if reference else []
    if dialect == "reference" or not vendor:
        return ours
    if dialect == "vendor" and errors:
        return list(vendor)
    return ours + list(vendor)


def parse_topic(topic: str, payload: bytes, dialect: str = "both") -> Request | None:
    """Map a request topic onto a :class:`Request` with its answer and error topics, or None if it is not one."""
    parts = topic.split("/")
    if parts[0] != "":
        return None
    rest = parts[1:]
    if rest in ([V, "createClient"], ["createConnector"]):
        h = hashlib.sha256(payload).hexdigest()
        route = topics.cert_back(h)
        return Request("create_client", topic, payload, csr_hash=h, vendor_form=rest == ["createConnector"],
                       answer_topics=[route.answer], error_topics=[route.error])
    if len(rest) < 3 or rest[0] != V:
        return None
    cid, tail = rest[1], rest[2:]
    req = Request("", topic, payload, client_id=cid)
    match tail:
        case ["ping"]:
            req.kind, route = "ping", topics.ping(cid)
        case ["update"]:
            req.kind, route = "update_client", topics.update_client(cid)
        case ["delete"]:
            req.kind, route = "delete_client", topics.delete_client(cid)
        case ["sensor", "list"]:
            req.kind, route = "list_sensors", topics.list_sensors(cid)
        case ["inventory"]:
            req.kind, route, req.vendor_form = "list_sensors", topics.list_sensors(cid), True
        case ["sensor", "create"]:
            req.kind, route = "create_sensor", topics.create_sensor(cid)
        case ["sensor", sid]:
            req.kind, req.sensor_id, route = "push_values", sid, topics.push_values_node(cid, sid)
            req.vendor_form = True
        case ["sensor", sid, "update"]:
            req.kind, req.sensor_id, route = "update_sensor", sid, topics.update_sensor(cid, sid)
        case ["sensor", sid, "delete"]:
            req.kind, req.sensor_id, route = "delete_sensor", sid, topics.delete_sensor(cid, sid)
        case ["sensor", sid, "metric", "create"]:
            req.kind, req.sensor_id, route = "create_metrics", sid, topics.create_metrics(cid, sid)
        case ["sensor", sid, "metric"]:
            req.kind, req.sensor_id, route = "create_metrics", sid, topics.create_metrics(cid, sid)
            req.vendor_form = True
        case ["sensor", sid, "metric", "update"]:
            req.kind, req.sensor_id, route = "update_metrics", sid, topics.update_metrics(cid, sid)
        case ["sensor", sid, "metric", "delete"]:
            req.kind, req.sensor_id, route = "delete_metrics", sid, topics.delete_metrics(cid, sid)
        case ["sensor", sid, "metric", "pushValues"]:
            req.kind, req.sensor_id, route = "push_values", sid, topics.push_values(cid, sid)
        case ["sensor", sid, "metric", mid, "inventory" | "describe"]:
            # .../describe is what the reference's own example publishes to.
            req.kind, req.sensor_id, req.metric_id = "describe_metric", sid, mid
            route = topics.describe_metric(cid, sid, mid)
        case _:
            return None
    req.answer_topics = _where(route.answer, route.vendor_answers, dialect, errors=False)
    req.error_topics = _where(route.error, route.vendor_errors, dialect, errors=True)
    return req


def is_answer_topic(topic: str) -> bool:
    """A topic the agent publishes on, not one it serves."""
    return topic.endswith("/inbox") or topic.endswith("/livedata") or topic.startswith("/certBack/")
