"""Reading the agent's answers: liberal in what is accepted, typed in what comes out.

The reference prints its answers one way, a real agent may send them
another, and the agent the vendor SDKs were written for a third.  Each
function here takes the raw MQTT payload of one answer and returns what the
request asked for, or raises :class:`ProtocolError` saying what it could not
understand (with the topic and a short, escaped snippet).  Nothing else ever
escapes: not ``json``'s errors, not ``RecursionError``, not ``UnicodeError``.

What is tolerated:

* text answers ("Sensor was changed."): a JSON string, bare text, either
  with whitespace or a newline around it, any wording.  The topic says which
  request is answered; the wording is returned for the log, never checked.
* errors: an object with ``errorcode`` (a number, a numeric string, an
  integral float) and/or ``errorMessage``; unknown codes are kept as numbers,
  a missing message becomes the reference's description of the code, a
  ``metrics`` that is not a list is ignored, extra fields are ignored.
* structured answers (sensor list, created sensor, created metrics,
  describe): extra fields, missing optional fields (``link``, ``store``,
  ``metrics``, ``value``, ``lastUpdated``), IDs and ``matchingId`` as numbers
  or strings, array items in any order, units and types newer than the
  reference (kept as their text).
* ping: the echo may be ``{"answer": msg}``, the request itself, a JSON
  string or bare text; it counts once it carries the message sent (a ping
  with a message of its own: also when it has the shape ``{"answer": ...}``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pibridge.agent.errors import DESCRIPTIONS, AgentError, ErrorCode, ProtocolError, printable
from pibridge.readings import Value
from pibridge.units import ValueType, ValueUnit

#: Answers larger than this are refused unparsed (the largest real answer, a
#: sensor list, is a few kilobytes per sensor).
MAX_ANSWER_BYTES = 1 << 20

#: What a parser returns for an answer that is well-formed but evidently meant
#: for another request (an earlier one that timed out, another process).
STALE = object()


@dataclass(frozen=True)
class SensorInfo:
    """A sensor as the agent knows it: its ID, its name and the IDs of its metrics."""

    sensor_id: str
    name: str
    metric_ids: list[str]


@dataclass(frozen=True)
class MetricInfo:
    """What the agent says about one metric (section 5.3.2).

    ``last_updated`` is the agent's timestamp of the last value in
    microseconds since the epoch.  A metric has either ``unit`` or
    ``value_type`` plus ``annotation``; a unit or type the reference does not
    list is kept as its text.
    """

    metric_id: str
    name: str
    value: Value | None
    last_updated: int | None
    unit: ValueUnit | str | None
    value_type: ValueType | str | None
    annotation: str | None


def snippet(payload: bytes, size: int = 80) -> str:
    """The start of *payload* as an escaped, quoted string for a log line."""
    text = bytes(payload[:size]).decode("utf-8", "replace")
    return repr(text + ("..." if len(payload) > size else ""))


def _shape_error(topic: str, expected: str, got: object) -> ProtocolError:
    text = repr(got)
    if len(text) > 120:
        text = text[:117] + "..."
    return ProtocolError(f"unexpected answer on {topic}: expected {expected}, got {printable(text)}")


# --------------------------------------------------------------------------- raw payloads


def decode_text(payload: bytes, topic: str) -> str:
    """The payload as text without surrounding whitespace (or a byte-order mark)."""
    if len(payload) > MAX_ANSWER_BYTES:
        raise ProtocolError(
            f"the agent sent {len(payload)} bytes on {topic}, more than the {MAX_ANSWER_BYTES} "
            "this client accepts in one answer"
        )
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(f"the agent sent bytes that are not UTF-8 text on {topic}: {snippet(payload)}") from None
    return text.lstrip("\ufeff").strip()


def _loads(text: str, payload: bytes, topic: str) -> object:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ProtocolError(
            f"the agent sent something that is not JSON on {topic} ({exc}): {snippet(payload)}"
        ) from None
    except RecursionError:
        # json nests by recursion: a payload of many thousand brackets is hostile, not an answer.
        raise ProtocolError(
            f"the agent sent JSON nested too deeply to be an answer on {topic}: {snippet(payload)}"
        ) from None


def decode_answer(payload: bytes, topic: str) -> object:
    """The JSON value of an agent message, or ProtocolError saying what is wrong with it."""
    return _loads(decode_text(payload, topic), payload, topic)


def _maybe_json(text: str) -> tuple[bool, object]:
    """(True, value) if *text* is JSON, else (False, None); hostile nesting counts as not JSON."""
    if not text or text[0] not in '"[{-0123456789tfn':
        return False, None
    try:
        return True, json.loads(text)
    except (ValueError, RecursionError):
        return False, None


# --------------------------------------------------------------------------- text answers and errors


def text_answer(payload: bytes, topic: str) -> str:
    """The text of a plain answer ("Sensor was updated."), however it is encoded; any wording."""
    text = decode_text(payload, topic)
    is_json, value = _maybe_json(text)
    if is_json and isinstance(value, str):
        return value.strip()
    return text


def _code(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("+-").isdigit() and len(text) <= 18:
            return int(text)
    return None


def error_answer(payload: bytes, topic: str) -> AgentError:
    """Turn an error-topic message into an :class:`AgentError` (ProtocolError if it is not one)."""
    body = decode_answer(payload, topic)
    expected = 'an error object {"errorcode": int, "errorMessage": str, "metrics": [...]?}'
    if not isinstance(body, dict):
        raise _shape_error(topic, expected, body)
    code = _code(body.get("errorcode"))
    message = body.get("errorMessage")
    if isinstance(message, (int, float)) and not isinstance(message, bool):
        message = str(message)
    if not isinstance(message, str):
        if code is None:
            raise _shape_error(topic, expected, body)
        try:
            message = DESCRIPTIONS[ErrorCode(code)]
        except ValueError:
            message = "(no errorMessage)"
    metrics = body.get("metrics")
    if isinstance(metrics, str):
        metrics = [metrics]
    elif not isinstance(metrics, list):
        metrics = []
    return AgentError(code, message, metrics, topic)


# --------------------------------------------------------------------------- ping


def _strings(value: object):
    """Every string inside a parsed JSON value (iteratively: the value may be deep)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def ping_echo(payload: bytes, topic: str, message: str, family: str = "", lenient: bool = False) -> object:
    """The echo of a ping: *message* if the answer carries it anywhere; STALE if it carries another of
    our pings (one containing *family*); ProtocolError for anything else.

    *lenient* (for a message only this ping uses, so no other echo can be
    mistaken for it): the reference's shape ``{"answer": ...}`` counts even
    without the message (an agent that answers but does not echo).  Without
    it, such an answer is taken for the echo of an earlier ping: STALE.
    """
    text = decode_text(payload, topic)
    is_json, value = _maybe_json(text)
    found = list(_strings(value)) if is_json else [text]
    if any(message in s for s in found):
        return message
    if family and any(family in s for s in found):
        return STALE
    if isinstance(value, dict) and "answer" in value:
        if not lenient:
            return STALE
        answer = value["answer"]
        return printable(answer if isinstance(answer, str) else json.dumps(answer))
    raise _shape_error(topic, f'the echo of {message!r} or {{"answer": ...}}', text)


# --------------------------------------------------------------------------- structured answers


def _identifier(value: object) -> str | None:
    """An ID or a matchingId: a string, or a number the agent turned it into."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return None


def _name(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def sensor_info(item: object, topic: str) -> SensorInfo:
    """One sensor of a list or a create answer: ``sensorId`` and ``name`` needed, ``metrics`` optional."""
    expected = 'a sensor {"sensorId": str, "name": str, "metrics": [{"metricId": str}, ...]}'
    if not isinstance(item, dict):
        raise _shape_error(topic, expected, item)
    sensor_id = _identifier(item.get("sensorId"))
    name = _name(item.get("name"))
    metrics = item.get("metrics")
    if sensor_id is None or name is None or not isinstance(metrics, (list, type(None))):
        raise _shape_error(topic, expected, item)
    metric_ids = []
    for metric in metrics or []:
        metric_id = _identifier(metric.get("metricId") if isinstance(metric, dict) else metric)
        if metric_id is None:
            raise _shape_error(topic, expected, item)
        metric_ids.append(metric_id)
    return SensorInfo(sensor_id, name, metric_ids)


def sensor_list(payload: bytes, topic: str) -> list[SensorInfo]:
    """The answer to a sensor list: a JSON array of sensors (an object with a ``sensors`` array too)."""
    body = decode_answer(payload, topic)
    if isinstance(body, dict) and isinstance(body.get("sensors"), list):
        body = body["sensors"]
    if not isinstance(body, list):
        raise _shape_error(topic, "a JSON array of sensors", body)
    return [sensor_info(item, topic) for item in body]


def created_sensor(payload: bytes, topic: str, name: str) -> object:
    """The answer to a sensor create: the sensor (STALE if it names another one)."""
    body = decode_answer(payload, topic)
    expected = 'a sensor {"sensorId": str, "name": str}'
    if not isinstance(body, dict):
        raise _shape_error(topic, expected, body)
    sensor_id = _identifier(body.get("sensorId"))
    if sensor_id is None:
        raise _shape_error(topic, expected, body)
    answered = _name(body.get("name"))
    if answered is not None and answered != name:
        return STALE
    return SensorInfo(sensor_id, name, [])


def created_metrics(payload: bytes, topic: str, matching: list[str], names: list[str]) -> object:
    """The metric IDs for *matching* (the matchingIds sent, in order), from a metric create answer.

    Items are matched by ``matchingId`` in any order.  An answer without any
    ``matchingId`` but with one item per definition is taken in order.
    """
    body = decode_answer(payload, topic)
    expected = 'a JSON array [{"matchingId": str, "metricId": str}, ...]'
    if isinstance(body, dict) and isinstance(body.get("metrics"), list):
        body = body["metrics"]
    if not isinstance(body, list):
        raise _shape_error(topic, expected, body)
    found: dict[str, str] = {}
    unmatched: list[str] = []
    for item in body:
        metric_id = _identifier(item.get("metricId")) if isinstance(item, dict) else None
        if metric_id is None:
            raise _shape_error(topic, expected, item)
        matching_id = _identifier(item.get("matchingId"))
        if matching_id is None:
            unmatched.append(metric_id)
        else:
            found[matching_id] = metric_id
    if not found and len(unmatched) == len(matching):
        return unmatched
    if not any(m in found for m in matching):
        return STALE
    missing = [n for n, m in zip(names, matching) if m not in found]
    if missing:
        raise ProtocolError(f"the agent's answer on {topic} has no metric ID for {printable(', '.join(missing))}")
    return [found[m] for m in matching]


def _enum_or_text(enum_type, value: object):
    if not isinstance(value, str):
        return None
    try:
        return enum_type(value)
    except ValueError:
        return value


def metric_info(payload: bytes, topic: str, metric_id: str | None = None) -> object:
    """The answer to a describe (STALE if it describes a metric other than *metric_id*)."""
    body = decode_answer(payload, topic)
    expected = 'a metric {"metricId": str, "name": str, "value": ..., "lastUpdated": int, "valueUnit" | "valueType"}'
    if not isinstance(body, dict):
        raise _shape_error(topic, expected, body)
    answered_id = _identifier(body.get("metricId"))
    name = _name(body.get("name"))
    if answered_id is None or name is None:
        raise _shape_error(topic, expected, body)
    if metric_id is not None and answered_id != metric_id:
        return STALE
    last = _code(body.get("lastUpdated"))
    value = body.get("value")
    if not isinstance(value, (bool, int, float, str)):
        value = None
    annotation = body.get("valueAnnotation")
    return MetricInfo(
        answered_id,
        name,
        value,
        last,
        _enum_or_text(ValueUnit, body.get("valueUnit")),
        _enum_or_text(ValueType, body.get("valueType")),
        annotation if isinstance(annotation, str) else None,
    )
