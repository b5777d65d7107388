"""What the simulated agent does with each request of the API reference (sections 4 and 5).

Validation runs in this order, and the first failure is answered on the request's
error topic as ``{"errorMessage": str, "errorcode": int}``:

1. the payload is JSON (4) and a JSON object (5);
2. the sensor / metric named in the topic exists (15 / 16);
3. required keys are present (6) and have the right type (7, 10, 11, ...);
4. values make sense: known unit (12) or type (13), unit or type with
   annotation given (14), state 1 or 2 (19), unused sensor name (28),
   valid client name (25).

Requests that carry a list of metrics (create, update, delete, pushValues)
check every entry.  With one entry, a failing entry gives its own code
(e.g. 12 for an unknown unit).  With several entries, failing entries give
the list code (26 create, 24 update, 23 delete, 27 push) with
``"metrics": [...]`` naming them (matchingIds for create, metricIds
otherwise) and each reason in the message.  Create, update and delete are
then not applied at all; a push stores the values that were fine, because
dropping good readings for one bad one would lose data.

Threading: every handler runs in the worker thread of
:class:`~pibridge.sim.agent.AgentLogic`, one request at a time, so it may
write SQLite; none runs in paho's network loop.  A push runs inside the
worker's open batch (:meth:`pibridge.sim.store.Store.batch`), and what it
publishes is held back until that batch is committed.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Callable

from pibridge.agent import topics
from pibridge.agent.errors import DESCRIPTIONS, ErrorCode
from pibridge.units import ValueType, ValueUnit

from .pki import CsrRejected, new_id
from .routing import Request

log = logging.getLogger("pibridge.sim")

#: Sensor and metric IDs a push may create on the fly (section 5.1).
PUSH_ID = re.compile(r"[a-zA-Z0-9 _-]{1,32}")
#: The reference's describe example shows this for a metric that never got a value.
NEVER_UPDATED_US = 9223372036854775
_DEFAULT_VALUE = {"double": 0.0, "integer": 0, "bool": False, "string": ""}
#: Values of these Python types always fit a metric of the type (others go through :func:`_check_value`).
_PLAIN_TYPES = {"double": (int, float), "integer": (int,), "bool": (bool,), "string": (str,)}


class Refusal(Exception):
    """A request the agent refuses: the code, a detail naming the key or item, and metric IDs for 23/24/26/27."""

    def __init__(self, code: ErrorCode, detail: str = "", metrics: list | None = None):
        self.code = ErrorCode(code)
        self.detail = detail
        self.metrics = metrics
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = DESCRIPTIONS[self.code]
        return f"{text} {self.detail}" if self.detail else text

    def payload(self) -> bytes:
        body: dict = {"errorMessage": self.message, "errorcode": int(self.code)}
        if self.code in LIST_CODES:
            body["metrics"] = list(self.metrics or [])
        return json.dumps(body).encode()


LIST_CODES = {ErrorCode.DELETE_METRICS_FAILED, ErrorCode.CHANGE_METRICS_FAILED,
              ErrorCode.CREATE_METRICS_FAILED, ErrorCode.PUSH_VALUES_FAILED}


# -- reading payloads -----------------------------------------------------------


def _json_object(payload: bytes, empty_ok: bool = False) -> dict:
    if empty_ok and not payload.strip():
        return {}
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refusal(ErrorCode.INVALID_JSON, f"({exc})")
    if not isinstance(data, dict):
        raise Refusal(ErrorCode.JSON_IS_NOT_AN_OBJECT, f"Expected a JSON object, got {type(data).__name__}.")
    return data


def _required(obj: dict, key: str, where: str = ""):
    if key not in obj:
        raise Refusal(ErrorCode.MISSING_PARAMETER, f"Missing key: {key}{where}.")
    return obj[key]


def _string(obj: dict, key: str, where: str = "") -> str:
    value = _required(obj, key, where)
    if not isinstance(value, str):
        raise Refusal(ErrorCode.PARAMETER_IS_NOT_A_STRING, f"Key: {key}{where}.")
    return value


def _array(obj: dict, key: str) -> list:
    value = _required(obj, key)
    if not isinstance(value, list):
        raise Refusal(ErrorCode.PARAMETER_IS_NOT_AN_ARRAY, f"Key: {key}.")
    return value


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _entry(item, index: int) -> dict:
    """One element of a ``metrics`` array.  The vendor SDK's documentation sends each as a JSON string."""
    if isinstance(item, str):
        try:
            item = json.loads(item)
        except ValueError:
            pass
    if not isinstance(item, dict):
        raise Refusal(ErrorCode.JSON_IS_NOT_AN_OBJECT, f"metrics[{index}] is not an object.")
    return item


def _each_entry(items: list, ident_key: str, check: Callable[[dict, str], object],
                quick: Callable[[object], object] | None = None) -> tuple[list, list]:
    """Run ``check(entry, where)`` on every element of a ``metrics`` array.

    Returns what the checks returned, in order, and ``(identifier, Refusal)`` for each
    element refused, so one bad element does not hide what is wrong with the others.
    *quick*, if given, is tried first on each element: what it returns (if not None)
    is taken as the result, so plainly good elements skip the full checks.
    """
    results, failures = [], []
    for i, item in enumerate(items):
        if quick is not None:
            result = quick(item)
            if result is not None:
                results.append(result)
                continue
        ident: object = i
        try:
            entry = _entry(item, i)
            ident = entry.get(ident_key, i)
            results.append(check(entry, f" (metrics[{i}])"))
        except Refusal as refusal:
            failures.append((ident, refusal))
    return results, failures


def _check_value(value, value_type: str, where: str) -> None:
    """Refuse a pushed value that does not fit the metric's type (strings holding the value are accepted)."""
    if value_type == "double":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return
        if isinstance(value, str):
            try:
                float(value)
                return
            except ValueError:
                pass
        raise Refusal(ErrorCode.PARAMETER_IS_NOT_A_DOUBLE, f"Key: value{where}.")
    if value_type == "integer":
        if _is_int(value) or (isinstance(value, float) and value.is_integer()):
            return
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            return
        raise Refusal(ErrorCode.PARAMETER_IS_NOT_AN_INTEGER, f"Key: value{where}.")
    if value_type == "bool":
        if isinstance(value, bool) or (isinstance(value, str) and value.lower() in ("true", "false")):
            return
        raise Refusal(ErrorCode.PARAMETER_IS_NOT_A_BOOL, f"Key: value{where}.")
    if not isinstance(value, str):
        raise Refusal(ErrorCode.PARAMETER_IS_NOT_A_STRING, f"Key: value{where}.")


def _detect_type(value, where: str) -> str:
    """The type of a metric created on the fly by a push (section 5.1: double, string or boolean)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "double"
    if isinstance(value, str):
        return "string"
    raise Refusal(ErrorCode.PARAMETER_IS_NOT_A_DOUBLE,
                  f"Key: value{where} must be a number, a string or a bool, not {type(value).__name__}.")


def _aggregate(failures: list[tuple[object, Refusal]], count: int, code: ErrorCode) -> Refusal:
    """One entry: its own refusal.  Several: the list code naming the failed ones and why."""
    if count == 1:
        return failures[0][1]
    reasons = " ".join(f"[{ident}] {r.message}" for ident, r in failures)
    return Refusal(code, reasons, metrics=[ident for ident, _ in failures])


class RequestHandlers:
    """One ``_<kind>`` method per request kind of :func:`~pibridge.sim.routing.parse_topic`; a part of ``AgentLogic``.

    Each returns the answer's payload (None: the request gets no answer) or
    raises :class:`Refusal`.  They use the store, the authority and the
    publisher of :class:`~pibridge.sim.agent.AgentLogic`.
    """

    def _text(self, message: str) -> bytes:
        """A plain answer: a JSON string as the reference prints it (with the quotes), or bare text."""
        if self.text_answers == "bare":
            return message.encode()
        return json.dumps(message).encode()

    # -- client (section 4) ----------------------------------------------------

    def _create_client(self, req: Request) -> bytes:
        pem = req.payload
        if pem.lstrip().startswith(b'"'):
            # The reference says to "wrap the text in quotes"; accept a JSON string too.
            try:
                pem = json.loads(pem).encode()
            except (ValueError, AttributeError):
                pass
        try:
            signed = self.authority.sign_csr(pem)
        except CsrRejected as exc:
            raise Refusal(exc.code, exc.detail)
        self.store.add_client(signed.client_id, signed.name, signed.serial)
        log.info("signed client %s (%s)", signed.client_id, signed.name)
        return signed.certificate_pem

    def _ping(self, req: Request) -> bytes:
        body = _json_object(req.payload)
        return json.dumps({"answer": _string(body, "request")}).encode()

    def _update_client(self, req: Request) -> bytes:
        name = _string(_json_object(req.payload), "name")
        if not name.strip() or any(ord(c) < 32 for c in name):
            raise Refusal(ErrorCode.INVALID_CLIENT_NAME, f"Name: {name!r}.")
        self.store.rename_client(req.client_id, name)
        return self._text("Client name was successfully updated.")

    def _delete_client(self, req: Request) -> None:
        self.store.revoke_client(req.client_id)
        log.info("client %s deleted; its certificate is revoked", req.client_id)
        self._on_revoke(req.client_id)
        return None

    # -- sensors (section 5.2) -------------------------------------------------

    def _sensor(self, req: Request) -> dict:
        sensor = self.store.sensor(req.client_id, req.sensor_id)
        if sensor is None:
            raise Refusal(ErrorCode.UNKNOWN_SENSOR_ID, f"Sensor: {req.sensor_id}.")
        return sensor

    def _create_sensor(self, req: Request) -> bytes:
        name = _string(_json_object(req.payload), "name")
        if self.store.sensor_named(req.client_id, name) is not None:
            raise Refusal(ErrorCode.SENSOR_NAME_EXISTS_ERROR, f"Name: {name!r}.")
        sensor_id = new_id()
        self.store.add_sensor(req.client_id, sensor_id, name)
        return json.dumps({"name": name, "sensorId": sensor_id}).encode()

    def _list_sensors(self, req: Request) -> bytes:
        _json_object(req.payload, empty_ok=True)
        listing = []
        for s in self.store.sensors(req.client_id):
            listing.append({
                "metrics": [{"link": topics.describe_metric(req.client_id, s["sensor_id"], m).request,
                             "metricId": m} for m in s["metrics"]],
                "name": s["name"],
                "sensorId": s["sensor_id"],
                "store": True,
            })
        return json.dumps(listing).encode()

    def _update_sensor(self, req: Request) -> bytes:
        body = _json_object(req.payload)
        self._sensor(req)
        name = _string(body, "name")
        state = body.get("state")
        if "state" in body:
            if not _is_int(state):
                raise Refusal(ErrorCode.PARAMETER_IS_NOT_AN_INTEGER, "Key: state.")
            if state not in (1, 2):
                raise Refusal(ErrorCode.OUT_OF_RANGE, f"Key: state must be 1 (Offline) or 2 (Online), not {state}.")
        other = self.store.sensor_named(req.client_id, name)
        if other is not None and other["sensor_id"] != req.sensor_id:
            raise Refusal(ErrorCode.SENSOR_NAME_EXISTS_ERROR, f"Name: {name!r}.")
        self.store.update_sensor(req.client_id, req.sensor_id, name, state)
        return self._text("Sensor was changed.")

    def _delete_sensor(self, req: Request) -> bytes:
        _json_object(req.payload, empty_ok=True)
        self._sensor(req)
        self.store.delete_sensor(req.client_id, req.sensor_id)
        return self._text("Sensor was deleted.")

    # -- metrics (section 5.3) -------------------------------------------------

    def _create_metrics(self, req: Request) -> bytes:
        body = _json_object(req.payload)
        self._sensor(req)
        items = _array(body, "metrics")

        def definition_of(entry: dict, where: str) -> dict:
            matching_id = _required(entry, "matchingId", where)
            if not isinstance(matching_id, str) and not _is_int(matching_id):
                raise Refusal(ErrorCode.PARAMETER_IS_NOT_A_STRING, f"Key: matchingId{where}.")
            name = _string(entry, "name", where)
            definition = {"metric_id": new_id(), "name": name, "matching_id": matching_id}
            if "valueUnit" in entry:
                unit = _string(entry, "valueUnit", where)
                try:
                    definition["value_unit"] = ValueUnit(unit).value
                except ValueError:
                    raise Refusal(ErrorCode.UNKNOWN_VALUE_UNIT, f"valueUnit: {unit!r}{where}.")
            elif "valueType" in entry:
                value_type = _string(entry, "valueType", where)
                try:
                    definition["value_type"] = ValueType(value_type).value
                except ValueError:
                    raise Refusal(ErrorCode.UNKNOWN_METRIC_TYPE, f"valueType: {value_type!r}{where}.")
                if "valueAnnotation" not in entry:
                    raise Refusal(ErrorCode.VALUE_UNIT_OR_VALUE_TYPE_HAS_TO_BE_PROVIDED,
                                  f"valueAnnotation is missing{where}.")
                definition["value_annotation"] = _string(entry, "valueAnnotation", where)
            else:
                raise Refusal(ErrorCode.VALUE_UNIT_OR_VALUE_TYPE_HAS_TO_BE_PROVIDED, where.strip())
            return definition

        created, failures = _each_entry(items, "matchingId", definition_of)
        if failures:
            raise _aggregate(failures, len(items), ErrorCode.CREATE_METRICS_FAILED)
        self.store.add_metrics(req.client_id, req.sensor_id, created)
        return json.dumps([{"matchingId": m["matching_id"], "metricId": m["metric_id"]} for m in created]).encode()

    def _metric_entries(self, req: Request, body: dict, code: ErrorCode, extra: Callable[[dict, str], dict]):
        """Check every ``{"metricId": ...}`` entry of an update/delete; return the changes or raise."""
        items = _array(body, "metrics")

        def change_of(entry: dict, where: str) -> dict:
            metric_id = _string(entry, "metricId", where)
            if self.store.metric(req.client_id, req.sensor_id, metric_id) is None:
                raise Refusal(ErrorCode.UNKNOWN_METRIC_ID, f"Metric: {metric_id}.")
            return {"metric_id": metric_id, **extra(entry, where)}

        changes, failures = _each_entry(items, "metricId", change_of)
        if failures:
            raise _aggregate(failures, len(items), code)
        return changes

    def _describe_metric(self, req: Request) -> bytes:
        _json_object(req.payload, empty_ok=True)
        self._sensor(req)
        metric = self.store.metric(req.client_id, req.sensor_id, req.metric_id)
        if metric is None:
            raise Refusal(ErrorCode.UNKNOWN_METRIC_ID, f"Metric: {req.metric_id}.")
        value_type = metric["value_type"] or "double"
        described = {
            "lastUpdated": metric["last_updated_us"] if metric["last_updated_us"] is not None else NEVER_UPDATED_US,
            "metricId": metric["metric_id"],
            "name": metric["name"],
            "value": metric["last_value"] if metric["last_value"] is not None else _DEFAULT_VALUE[value_type],
        }
        if metric["value_unit"]:
            described["valueUnit"] = metric["value_unit"]
        else:
            described["valueType"] = metric["value_type"]
            described["valueAnnotation"] = metric["value_annotation"] or ""
        return json.dumps(described).encode()

    def _update_metrics(self, req: Request) -> bytes:
        body = _json_object(req.payload)
        self._sensor(req)

        def fields(entry: dict, where: str) -> dict:
            change = {}
            if "name" in entry:
                change["name"] = _string(entry, "name", where)
            if "valueAnnotation" in entry:
                change["value_annotation"] = _string(entry, "valueAnnotation", where)
            return change

        changes = self._metric_entries(req, body, ErrorCode.CHANGE_METRICS_FAILED, fields)
        self.store.update_metrics(req.client_id, req.sensor_id, changes)
        return self._text("All metrics were successfully modified.")

    def _delete_metrics(self, req: Request) -> bytes:
        body = _json_object(req.payload)
        self._sensor(req)
        changes = self._metric_entries(req, body, ErrorCode.DELETE_METRICS_FAILED, lambda e, w: {})
        self.store.delete_metrics(req.client_id, req.sensor_id, [c["metric_id"] for c in changes])
        return self._text("All metrics were successfully deleted.")

    # -- push (section 5.1) ----------------------------------------------------

    def _push_values(self, req: Request) -> bytes:
        body = _json_object(req.payload)
        known = self.store.value_types(req.client_id, req.sensor_id)
        if known is None and not PUSH_ID.fullmatch(req.sensor_id):
            raise Refusal(ErrorCode.UNKNOWN_SENSOR_ID,
                          f"Sensor: {req.sensor_id!r} does not exist and is not a valid new ID "
                          "(a-z, A-Z, 0-9, space, _ and -, at most 32 characters).")
        items = _array(body, "metrics")
        if "timestamp" in body:
            timestamp = body["timestamp"]
            if not _is_int(timestamp):
                raise Refusal(ErrorCode.PARAMETER_IS_NOT_AN_INTEGER, "Key: timestamp.")
        else:
            timestamp = int(time.time() * 1000)
        types = dict(known or {})
        new_metrics: list[dict] = []

        def value_of(entry: dict, where: str) -> tuple:
            metric_id = _string(entry, "metricId", where)
            value = _required(entry, "value", where)
            if metric_id in types:
                _check_value(value, types[metric_id], where)
            else:
                if not PUSH_ID.fullmatch(metric_id):
                    raise Refusal(ErrorCode.UNKNOWN_METRIC_ID,
                                  f"Metric: {metric_id!r} does not exist and is not a valid new ID "
                                  "(a-z, A-Z, 0-9, space, _ and -, at most 32 characters).")
                types[metric_id] = _detect_type(value, where)
                new_metrics.append({"metric_id": metric_id, "name": metric_id, "value_type": types[metric_id]})
            return metric_id, value

        def known_value(item) -> tuple | None:
            # A known metric with a value of its own type, as nearly every entry is.
            if type(item) is dict:
                metric_id, value = item.get("metricId"), item.get("value")
                if type(metric_id) is str and type(value) in _PLAIN_TYPES.get(types.get(metric_id), ()):
                    return metric_id, value
            return None

        accepted, failures = _each_entry(items, "metricId", value_of, quick=known_value)
        if accepted:
            self.store.push(req.client_id, req.sensor_id, None if known is not None else req.sensor_id,
                            new_metrics, accepted, timestamp)
            live = {"metrics": [{"metricId": m, "value": v} for m, v in accepted], "timestamp": timestamp}
            # Live data is a stream for whoever watches (section 5.1): QoS 0, which halves what the
            # simulator's one network thread sends per push; the answer below stays QoS 1.
            self._publish([topics.livedata(req.client_id, req.sensor_id)], json.dumps(live).encode(), qos=0)
        if failures:
            raise _aggregate(failures, len(items), ErrorCode.PUSH_VALUES_FAILED)
        return self._text("Sensor was updated.")
