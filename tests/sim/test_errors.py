"""Every error code the reference ties to a request, produced by that request (API reference section 6).

The payload is exactly ``{"errorMessage": str, "errorcode": int}``, plus
``"metrics": [...]`` for codes 23, 24, 26 and 27, and the message starts
with the reference's description of the code.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from pibridge.agent.errors import DESCRIPTIONS, ErrorCode
from tests.support.mqtt_client import Mqtt, make_csr, make_key

E = ErrorCode
LIST_CODES = {E.DELETE_METRICS_FAILED, E.CHANGE_METRICS_FAILED, E.CREATE_METRICS_FAILED, E.PUSH_VALUES_FAILED}


@pytest.fixture
def setup(client):
    """A client with sensor 'weather' holding a percent metric and three custom ones."""
    sensor = client.create_sensor("weather")
    percent, count, flag, text = client.create_metrics(
        sensor,
        {"name": "humidity", "valueUnit": "NoSI.Dimensionless.PERCENT"},
        {"name": "count", "valueType": "integer", "valueAnnotation": "items"},
        {"name": "door", "valueType": "bool", "valueAnnotation": "open"},
        {"name": "label", "valueType": "string", "valueAnnotation": ""},
    )
    return client, {"s": sensor, "pct": percent, "int": count, "bool": flag, "str": text}


def assert_error(kind, body, code: ErrorCode):
    assert kind == "error", body
    assert body["errorcode"] == int(code), body
    assert body["errorMessage"].startswith(DESCRIPTIONS[code]), body
    expected_keys = {"errorMessage", "errorcode"} | ({"metrics"} if code in LIST_CODES else set())
    assert set(body) == expected_keys


SENSOR = "/sensor/{s}"
# (request path, payload, answer path, error path, expected code)
CASES = [
    # section 4.2 ping
    ("/ping", "{not json", "/ping/info/inbox", "/ping/error/inbox", E.INVALID_JSON),
    ("/ping", "[1]", "/ping/info/inbox", "/ping/error/inbox", E.JSON_IS_NOT_AN_OBJECT),
    ("/ping", {}, "/ping/info/inbox", "/ping/error/inbox", E.MISSING_PARAMETER),
    ("/ping", {"request": 5}, "/ping/info/inbox", "/ping/error/inbox", E.PARAMETER_IS_NOT_A_STRING),
    # section 4.3 client update
    ("/update", {}, "/update/info/inbox", "/update/error/inbox", E.MISSING_PARAMETER),
    ("/update", {"name": 1}, "/update/info/inbox", "/update/error/inbox", E.PARAMETER_IS_NOT_A_STRING),
    ("/update", {"name": ""}, "/update/info/inbox", "/update/error/inbox", E.INVALID_CLIENT_NAME),
    # section 5.2.1 sensor create
    ("/sensor/create", "{", "/sensor/inbox", "/sensor/error/inbox", E.INVALID_JSON),
    ("/sensor/create", '"name"', "/sensor/inbox", "/sensor/error/inbox", E.JSON_IS_NOT_AN_OBJECT),
    ("/sensor/create", {}, "/sensor/inbox", "/sensor/error/inbox", E.MISSING_PARAMETER),
    ("/sensor/create", {"name": 7}, "/sensor/inbox", "/sensor/error/inbox", E.PARAMETER_IS_NOT_A_STRING),
    ("/sensor/create", {"name": "weather"}, "/sensor/inbox", "/sensor/error/inbox", E.SENSOR_NAME_EXISTS_ERROR),
    # section 5.2.2 list
    ("/sensor/list", "nope", "/inventory/inbox", "/inventory/error/inbox", E.INVALID_JSON),
    # section 5.2.3 sensor update
    ("/sensor/unknown/update", {"name": "x"}, "/sensor/unknown/update/info/inbox",
     "/sensor/unknown/update/error/inbox", E.UNKNOWN_SENSOR_ID),
    (SENSOR + "/update", {"state": 2}, SENSOR + "/update/info/inbox", SENSOR + "/update/error/inbox",
     E.MISSING_PARAMETER),
    (SENSOR + "/update", {"name": "w", "state": "2"}, SENSOR + "/update/info/inbox", SENSOR + "/update/error/inbox",
     E.PARAMETER_IS_NOT_AN_INTEGER),
    (SENSOR + "/update", {"name": "w", "state": 3}, SENSOR + "/update/info/inbox", SENSOR + "/update/error/inbox",
     E.OUT_OF_RANGE),
    # section 5.2.4 sensor delete
    ("/sensor/unknown/delete", {}, "/sensor/unknown/delete/info/inbox", "/sensor/unknown/delete/error/inbox",
     E.UNKNOWN_SENSOR_ID),
    # section 5.3.1 metric create
    ("/sensor/unknown/metric/create", {"metrics": []}, "/sensor/unknown/metric/inbox",
     "/sensor/unknown/metric/error/inbox", E.UNKNOWN_SENSOR_ID),
    (SENSOR + "/metric/create", {}, SENSOR + "/metric/inbox", SENSOR + "/metric/error/inbox", E.MISSING_PARAMETER),
    (SENSOR + "/metric/create", {"metrics": {"name": "x"}}, SENSOR + "/metric/inbox", SENSOR + "/metric/error/inbox",
     E.PARAMETER_IS_NOT_AN_ARRAY),
    (SENSOR + "/metric/create", {"metrics": [{"matchingId": "1", "valueUnit": "SI.Temperature.CELSIUS"}]},
     SENSOR + "/metric/inbox", SENSOR + "/metric/error/inbox", E.MISSING_PARAMETER),
    (SENSOR + "/metric/create", {"metrics": [{"matchingId": "1", "name": "m", "valueUnit": "SI.Mass.GRAM"}]},
     SENSOR + "/metric/inbox", SENSOR + "/metric/error/inbox", E.UNKNOWN_VALUE_UNIT),
    (SENSOR + "/metric/create",
     {"metrics": [{"matchingId": "1", "name": "m", "valueType": "float", "valueAnnotation": "x"}]},
     SENSOR + "/metric/inbox", SENSOR + "/metric/error/inbox", E.UNKNOWN_METRIC_TYPE),
    (SENSOR + "/metric/create", {"metrics": [{"matchingId": "1", "name": "m"}]},
     SENSOR + "/metric/inbox", SENSOR + "/metric/error/inbox", E.VALUE_UNIT_OR_VALUE_TYPE_HAS_TO_BE_PROVIDED),
    (SENSOR + "/metric/create", {"metrics": [{"matchingId": "1", "name": "m", "valueType": "integer"}]},
     SENSOR + "/metric/inbox", SENSOR + "/metric/error/inbox", E.VALUE_UNIT_OR_VALUE_TYPE_HAS_TO_BE_PROVIDED),
    (SENSOR + "/metric/create", {"metrics": [{"matchingId": "1", "name": 4, "valueUnit": "SI.Power.WATT"}]},
     SENSOR + "/metric/inbox", SENSOR + "/metric/error/inbox", E.PARAMETER_IS_NOT_A_STRING),
    # section 5.3.2 describe
    ("/sensor/unknown/metric/{pct}/inventory", {}, "/sensor/unknown/metric/{pct}/inventory/inbox",
     "/sensor/unknown/metric/{pct}/inventory/error/inbox", E.UNKNOWN_SENSOR_ID),
    (SENSOR + "/metric/unknown/inventory", {}, SENSOR + "/metric/unknown/inventory/inbox",
     SENSOR + "/metric/unknown/inventory/error/inbox", E.UNKNOWN_METRIC_ID),
    # section 5.3.3 metric update
    (SENSOR + "/metric/update", {"metrics": [{"metricId": "unknown", "name": "x"}]},
     SENSOR + "/metric/update/info/inbox", SENSOR + "/metric/update/error/inbox", E.UNKNOWN_METRIC_ID),
    (SENSOR + "/metric/update", {"metrics": [{"metricId": "{pct}", "name": 1}]},
     SENSOR + "/metric/update/info/inbox", SENSOR + "/metric/update/error/inbox", E.PARAMETER_IS_NOT_A_STRING),
    # section 5.3.4 metric delete
    (SENSOR + "/metric/delete", {"metrics": [{"metricId": "unknown"}]},
     SENSOR + "/metric/delete/info/inbox", SENSOR + "/metric/error/inbox", E.UNKNOWN_METRIC_ID),
    (SENSOR + "/metric/delete", {"metrics": [{}]},
     SENSOR + "/metric/delete/info/inbox", SENSOR + "/metric/error/inbox", E.MISSING_PARAMETER),
    # section 5.1 push
    (SENSOR + "/metric/pushValues", "{]", SENSOR + "/info/inbox", SENSOR + "/error/inbox", E.INVALID_JSON),
    (SENSOR + "/metric/pushValues", {"metrics": "all"}, SENSOR + "/info/inbox", SENSOR + "/error/inbox",
     E.PARAMETER_IS_NOT_AN_ARRAY),
    (SENSOR + "/metric/pushValues", {"metrics": [{"metricId": "{pct}"}]}, SENSOR + "/info/inbox",
     SENSOR + "/error/inbox", E.MISSING_PARAMETER),
    (SENSOR + "/metric/pushValues", {"metrics": [{"metricId": "{pct}", "value": "high"}]}, SENSOR + "/info/inbox",
     SENSOR + "/error/inbox", E.PARAMETER_IS_NOT_A_DOUBLE),
    (SENSOR + "/metric/pushValues", {"metrics": [{"metricId": "{bool}", "value": 1}]}, SENSOR + "/info/inbox",
     SENSOR + "/error/inbox", E.PARAMETER_IS_NOT_A_BOOL),
    (SENSOR + "/metric/pushValues", {"metrics": [{"metricId": "{int}", "value": 1.5}]}, SENSOR + "/info/inbox",
     SENSOR + "/error/inbox", E.PARAMETER_IS_NOT_AN_INTEGER),
    (SENSOR + "/metric/pushValues", {"metrics": [{"metricId": "{str}", "value": 1}]}, SENSOR + "/info/inbox",
     SENSOR + "/error/inbox", E.PARAMETER_IS_NOT_A_STRING),
    (SENSOR + "/metric/pushValues", {"metrics": [{"metricId": "{pct}", "value": 1}], "timestamp": "now"},
     SENSOR + "/info/inbox", SENSOR + "/error/inbox", E.PARAMETER_IS_NOT_AN_INTEGER),
    ("/sensor/bad.id/metric/pushValues", {"metrics": [{"metricId": "t", "value": 1}]},
     "/sensor/bad.id/info/inbox", "/sensor/bad.id/error/inbox", E.UNKNOWN_SENSOR_ID),
    (SENSOR + "/metric/pushValues", {"metrics": [{"metricId": "x" * 33, "value": 1}]}, SENSOR + "/info/inbox",
     SENSOR + "/error/inbox", E.UNKNOWN_METRIC_ID),
]


@pytest.mark.parametrize("path, payload, answer, error, code", CASES,
                         ids=[f"{c[4].value}-{c[4].name}-{c[0].split('/')[-1]}" for c in CASES])
def test_request_gives_the_reference_error(setup, path, payload, answer, error, code):
    client, ids = setup

    def fill(text):
        for key, value in ids.items():
            text = text.replace("{" + key + "}", value)
        return text

    if not isinstance(payload, str):
        payload = fill(json.dumps(payload))
    kind, body = client.call(fill(path), payload, fill(answer), fill(error))
    assert_error(kind, body, code)


def test_a_failed_request_changes_nothing(setup):
    client, ids = setup
    kind, _ = client.call(f"/sensor/{ids['s']}/update", {"name": "renamed", "state": 9},
                          f"/sensor/{ids['s']}/update/info/inbox", f"/sensor/{ids['s']}/update/error/inbox")
    assert kind == "error"
    kind, listing = client.call("/sensor/list", {}, "/inventory/inbox", "/inventory/error/inbox")
    assert [s["name"] for s in listing] == ["weather"]


def test_renaming_a_sensor_to_a_taken_name_is_refused(setup):
    client, ids = setup
    client.create_sensor("garden")
    kind, body = client.call(f"/sensor/{ids['s']}/update", {"name": "garden"},
                             f"/sensor/{ids['s']}/update/info/inbox", f"/sensor/{ids['s']}/update/error/inbox")
    assert_error(kind, body, E.SENSOR_NAME_EXISTS_ERROR)


def test_several_bad_metric_definitions_give_26_naming_them_and_create_nothing(setup, shared_sim):
    client, ids = setup
    s = ids["s"]
    request = {"metrics": [
        {"matchingId": "a", "name": "ok", "valueUnit": "SI.Power.WATT"},
        {"matchingId": "b", "name": "bad", "valueUnit": "SI_Energy_JOULE"},
        {"matchingId": "c", "name": "worse", "valueType": "complex", "valueAnnotation": ""},
    ]}
    kind, body = client.call(f"/sensor/{s}/metric/create", request, f"/sensor/{s}/metric/inbox",
                             f"/sensor/{s}/metric/error/inbox")
    assert_error(kind, body, E.CREATE_METRICS_FAILED)
    assert body["metrics"] == ["b", "c"]
    assert DESCRIPTIONS[E.UNKNOWN_VALUE_UNIT] in body["errorMessage"]
    assert DESCRIPTIONS[E.UNKNOWN_METRIC_TYPE] in body["errorMessage"]
    assert len(shared_sim.store.metrics(client.id, s)) == 4


def test_several_metric_updates_with_an_unknown_id_give_24_and_change_nothing(setup, shared_sim):
    client, ids = setup
    s = ids["s"]
    request = {"metrics": [{"metricId": ids["pct"], "name": "renamed"}, {"metricId": "nope", "name": "x"}]}
    kind, body = client.call(f"/sensor/{s}/metric/update", request, f"/sensor/{s}/metric/update/info/inbox",
                             f"/sensor/{s}/metric/update/error/inbox")
    assert_error(kind, body, E.CHANGE_METRICS_FAILED)
    assert body["metrics"] == ["nope"]
    assert shared_sim.store.metric(client.id, s, ids["pct"])["name"] == "humidity"


def test_several_metric_deletes_with_an_unknown_id_give_23_and_delete_nothing(setup, shared_sim):
    client, ids = setup
    s = ids["s"]
    request = {"metrics": [{"metricId": ids["pct"]}, {"metricId": "gone"}]}
    kind, body = client.call(f"/sensor/{s}/metric/delete", request, f"/sensor/{s}/metric/delete/info/inbox",
                             f"/sensor/{s}/metric/error/inbox")
    assert_error(kind, body, E.DELETE_METRICS_FAILED)
    assert body["metrics"] == ["gone"]
    assert shared_sim.store.metric(client.id, s, ids["pct"]) is not None


def test_a_push_with_a_bad_value_gives_27_and_stores_the_good_ones(setup, shared_sim):
    client, ids = setup
    s = ids["s"]
    kind, body = client.push(s, {ids["pct"]: 55.5, ids["bool"]: "maybe"}, timestamp=1590394246545)
    assert_error(kind, body, E.PUSH_VALUES_FAILED)
    assert body["metrics"] == [ids["bool"]]
    stored = shared_sim.store.wait_for_values(client.id, 1, timeout=5)
    assert [(v["metric_id"], v["value"], v["timestamp_ms"]) for v in stored] == [(ids["pct"], 55.5, 1590394246545)]


# -- section 4.1: errors of the certificate exchange ------------------------------


@pytest.fixture
def provisioning(shared_sim):
    client = Mqtt(shared_sim.host, shared_sim.provision_port, shared_sim.ca_file).connect()
    client.subscribe("/certBack/+", "/certBack/+/error")
    yield client
    client.close()


def _csr_request(provisioning, payload: bytes):
    digest = hashlib.sha256(payload).hexdigest()
    return provisioning.request("/v1.0/createClient", payload, f"/certBack/{digest}", f"/certBack/{digest}/error")


@pytest.mark.parametrize("payload, code", [
    (b"", E.CERTIFICATE_IS_EMPTY_ERROR),
    (b"-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n-----END CERTIFICATE REQUEST-----\n",
     E.CERTIFICATE_FORMAT_ERROR),
    (b"hello", E.CERTIFICATE_FORMAT_ERROR),
], ids=["empty", "broken-pem", "not-pem"])
def test_a_bad_csr_is_refused(provisioning, payload, code):
    kind, body = _csr_request(provisioning, payload)
    assert_error(kind, body, code)


def test_a_csr_without_common_name_is_refused_with_22(provisioning):
    csr = make_csr(make_key(), None, extra=[x509.NameAttribute(NameOID.ORGANIZATION_NAME, "no name")])
    assert_error(*_csr_request(provisioning, csr), E.CERTIFICATE_WITHOUT_COMMON_NAME)


@pytest.mark.parametrize("name", ["two words", "semi;colon", "slash/name", "ümlaut"])
def test_a_client_name_outside_the_allowed_characters_is_refused_with_25(provisioning, name):
    assert_error(*_csr_request(provisioning, make_csr(make_key(), name)), E.INVALID_CLIENT_NAME)


def test_every_allowed_name_character_is_accepted(provisioning, shared_sim):
    name = "Az09.*-,@'_"
    kind, body = _csr_request(provisioning, make_csr(make_key(), name))
    assert kind == "answer"
    assert name in [c["name"] for c in shared_sim.store.clients()]
