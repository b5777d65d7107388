"""The request API of :class:`~pibridge.agent.client.AgentClient`: one method per request of the reference.

Each method checks its arguments, sends the request through
:meth:`~pibridge.agent.exchange.Exchange._request` and returns the answer
parsed by :mod:`pibridge.agent.answers` (sections 4 and 5 of the API reference);
:meth:`Requests.delete_client`, which the agent does not answer, waits for
the broker's PUBACK instead.
"""

from __future__ import annotations

import enum
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from pibridge.agent import answers, topics
from pibridge.agent.answers import MetricInfo, SensorInfo
from pibridge.agent.errors import AgentConnectionLost, AgentTimeout, ProtocolError
from pibridge.agent.identity import remove_identity
from pibridge.agent.pending import Signal
from pibridge.readings import Value
from pibridge.units import MetricDefinition

# Every part logs as the client, so one logger name still selects all it says.
log = logging.getLogger("pibridge.agent.client")

_ID = re.compile(r"[A-Za-z0-9 _-]{1,32}")


class SensorState(enum.IntEnum):
    """The state a sensor can be set to with :meth:`AgentClient.update_sensor` (section 5.2.3)."""

    OFFLINE = 1
    ONLINE = 2


@dataclass(frozen=True)
class MetricUpdate:
    """A new name and/or annotation for one metric (section 5.3.3)."""

    metric_id: str
    name: str | None = None
    annotation: str | None = None


def check_id(kind: str, value: str) -> str:
    """*value* if it can be a sensor or metric ID, else ValueError (IDs become topic levels)."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValueError(
            f"{kind} ID {value!r} is not valid: use 1 to 32 letters, digits, spaces, '_' or '-'"
        )
    return value


def _check_value(metric_id: str, value: object) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"metric {metric_id!r}: {value} cannot be sent (JSON has no NaN or infinity)")
    if not isinstance(value, (bool, int, float, str)):
        raise ValueError(f"metric {metric_id!r}: value {value!r} must be a number, a bool or a string")


class Requests:
    """Every request of the API reference, each a blocking method; a part of ``AgentClient``."""

    def ping(self, message: str | None = None) -> str:
        """Check the agent is alive; returns the message it echoed (section 4.2).

        Sends ``{"request": message}`` as the reference does; without
        *message*, one unique to this call.  Whatever shape the echo has, it
        counts once it carries the message (without *message*, any
        ``{"answer": ...}`` counts too: an agent that answers without
        echoing); anything else on the answer topic is skipped, so garbage
        there never passes for the agent's answer.
        """
        lenient = message is None
        if lenient:
            message = f"{self._ping_family}-{next(self._pings)}"
        elif not isinstance(message, str) or not message:
            raise ValueError("a ping message must be a non-empty string")
        family = self._ping_family

        def parse(payload: bytes, topic: str) -> object:
            return answers.ping_echo(payload, topic, message, family, lenient)

        return self._request(topics.ping(self.client_id), {"request": message}, parse, kind="ping")

    def update_client_name(self, name: str) -> str:
        """Rename this client on the agent; returns the agent's confirmation (section 4.3).

        The reference asks only for a string (its example: "New client name");
        this is the client's display name, not the certificate's CommonName.
        """
        if not isinstance(name, str):
            raise ValueError(f"a client name must be a string, not {name!r}")

        def parse(payload: bytes, topic: str) -> object:
            is_object, body = False, None
            try:
                body = answers.decode_answer(payload, topic)
                is_object = isinstance(body, dict)
            except ProtocolError:
                pass
            if is_object and isinstance(body.get("name"), str):
                return body["name"]
            return answers.text_answer(payload, topic)

        return self._request(topics.update_client(self.client_id), {"name": name}, parse, kind="update_client")

    def delete_client(self) -> None:
        """Delete this client, its sensors and metrics on the agent, and the local key and certificate.

        The agent does not answer (section 4.4): this waits for the broker to
        take the request (PUBACK).  The certificate is useless afterwards.
        """
        route = topics.delete_client(self.client_id)
        self._require_connection(route.request)
        signal = Signal()
        self._acks.begin()
        try:
            info = self._mqtt.publish(route.request, b"{}", qos=1)
        except BaseException:
            self._acks.abort()
            raise
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self._acks.abort()
            raise AgentConnectionLost(f"cannot send {route.request}: {mqtt.error_string(info.rc)}")
        early, _ = self._acks.register(info.mid, signal.set)
        if early:
            signal.set()
        if not signal.event.wait(self.timeout):
            self._acks.drop(info.mid)
            raise AgentTimeout(f"the broker did not confirm {route.request} within {self.timeout:g} s")
        remove_identity(self.identity)
        log.info("deleted client %s on the agent and its key and certificate", self.client_id)

    # ------------------------------------------------------------ sensors

    def create_sensor(self, name: str) -> SensorInfo:
        """Create a sensor called *name*; returns it with the ID the agent chose (section 5.2.1)."""
        if not isinstance(name, str) or not name:
            raise ValueError("a sensor needs a non-empty name")

        def parse(payload: bytes, topic: str) -> object:
            return answers.created_sensor(payload, topic, name)

        return self._request(topics.create_sensor(self.client_id), {"name": name}, parse, kind="create_sensor")

    def list_sensors(self) -> list[SensorInfo]:
        """Every sensor of this client with its metric IDs (section 5.2.2)."""

        return self._request(topics.list_sensors(self.client_id), {}, answers.sensor_list, kind="list_sensors")

    def update_sensor(self, sensor_id: str, *, name: str, state: SensorState | None = None) -> str:
        """Rename a sensor and optionally set it online or offline (section 5.2.3)."""
        check_id("sensor", sensor_id)
        if not isinstance(name, str) or not name:
            raise ValueError("a sensor needs a non-empty name")
        body: dict = {"name": name}
        if state is not None:
            body["state"] = int(SensorState(state))
        return self._request(topics.update_sensor(self.client_id, sensor_id), body, answers.text_answer,
                             kind="update_sensor")

    def delete_sensor(self, sensor_id: str) -> str:
        """Delete a sensor and its metrics (section 5.2.4)."""
        check_id("sensor", sensor_id)
        return self._request(topics.delete_sensor(self.client_id, sensor_id), {}, answers.text_answer,
                             kind="delete_sensor")

    # ------------------------------------------------------------ metrics

    def create_metrics(self, sensor_id: str, definitions: Sequence[MetricDefinition]) -> list[str]:
        """Create metrics on a sensor; returns their IDs in the order of *definitions* (section 5.3.1)."""
        check_id("sensor", sensor_id)
        if not definitions:
            raise ValueError("create_metrics needs at least one MetricDefinition")
        for definition in definitions:
            if not isinstance(definition, MetricDefinition):
                raise ValueError(f"{definition!r} is not a MetricDefinition")
        matching = [str(next(self._matching)) for _ in definitions]
        names = [d.name for d in definitions]
        body = {"metrics": [d.to_api(m) for d, m in zip(definitions, matching)]}

        def parse(payload: bytes, topic: str) -> object:
            return answers.created_metrics(payload, topic, matching, names)

        return self._request(topics.create_metrics(self.client_id, sensor_id), body, parse, kind="create_metrics")

    def describe_metric(self, sensor_id: str, metric_id: str) -> MetricInfo:
        """The definition and last value of one metric (section 5.3.2)."""
        check_id("sensor", sensor_id)
        check_id("metric", metric_id)

        def parse(payload: bytes, topic: str) -> object:
            return answers.metric_info(payload, topic, metric_id)

        return self._request(topics.describe_metric(self.client_id, sensor_id, metric_id), {}, parse,
                             kind="describe_metric")

    def update_metrics(self, sensor_id: str, updates: Sequence[MetricUpdate]) -> str:
        """Rename metrics and/or change their annotation (section 5.3.3)."""
        check_id("sensor", sensor_id)
        if not updates:
            raise ValueError("update_metrics needs at least one MetricUpdate")
        items = []
        for update in updates:
            check_id("metric", update.metric_id)
            if update.name is None and update.annotation is None:
                raise ValueError(f"metric {update.metric_id!r}: give a new name, a new annotation or both")
            item = {"metricId": update.metric_id}
            if update.name is not None:
                item["name"] = update.name
            if update.annotation is not None:
                item["valueAnnotation"] = update.annotation
            items.append(item)
        return self._request(topics.update_metrics(self.client_id, sensor_id), {"metrics": items},
                             answers.text_answer, kind="update_metrics")

    def delete_metrics(self, sensor_id: str, metric_ids: Sequence[str]) -> str:
        """Delete metrics of a sensor (section 5.3.4)."""
        check_id("sensor", sensor_id)
        if not metric_ids or isinstance(metric_ids, str):
            raise ValueError("delete_metrics needs a list of metric IDs")
        body = {"metrics": [{"metricId": check_id("metric", m)} for m in metric_ids]}
        return self._request(topics.delete_metrics(self.client_id, sensor_id), body, answers.text_answer,
                             kind="delete_metrics")

    # ------------------------------------------------------------ values

    def push_values(self, sensor_id: str, values: Mapping[str, Value], timestamp_ms: int | None = None) -> None:
        """Push values of several metrics of one sensor and wait for "Sensor was updated." (section 5.1).

        Without *timestamp_ms* the agent stamps the values with its own time.
        """
        check_id("sensor", sensor_id)
        if not values:
            raise ValueError("push_values needs at least one metric value")
        for metric_id, value in values.items():
            check_id("metric", metric_id)
            _check_value(metric_id, value)
        if timestamp_ms is not None and (isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int)):
            raise ValueError(f"timestamp_ms must be milliseconds since the epoch as an int, not {timestamp_ms!r}")
        body: dict = {"metrics": [{"metricId": k, "value": v} for k, v in values.items()]}
        if timestamp_ms is not None:
            body["timestamp"] = timestamp_ms
        route = topics.push_values(self.client_id, sensor_id)
        # No wildcard below the request topic: publish_values pushes to the
        # same topic, and every one of them would echo back to us.
        self._request(route, body, answers.text_answer, kind="push_values", watch_request=False)
