"""Parsing and building of the API's payloads, the unit table, backoff and PUBACK bookkeeping (no broker)."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pibridge.agent.answers import (
    STALE,
    created_metrics,
    created_sensor,
    decode_answer,
    error_answer,
    metric_info,
    ping_echo,
    sensor_list,
    text_answer,
)
from pibridge.agent.client import Backoff, check_id, push_body
from pibridge.agent.pending import MidTable, Waiter
from pibridge.agent.errors import AgentError, AgentTimeout, ErrorCode, ProtocolError, printable
from pibridge.units import MetricDefinition, ValueType, ValueUnit

TOPIC = "/v1.0/c/sensor/s/info/inbox"
#: Fixed examples under CI, so a red build is the code's fault and can be repeated.
FUZZ = settings(max_examples=300, deadline=None, derandomize=os.environ.get("CI") == "true")

KEYS = ["sensorId", "name", "metrics", "metricId", "matchingId", "errorcode", "errorMessage", "value", "answer",
        "request", "lastUpdated", "valueUnit", "valueType", "valueAnnotation", "link", "store", "x"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10)
    | st.sampled_from(["15", " 16 ", "1e3", "pibridge-ab-1", "SI.Power.WATT", "double", "7"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(KEYS), children, max_size=6),
    max_leaves=12,
)


def encodings(value) -> st.SearchStrategy[bytes]:
    """*value* the ways an agent may put it on the wire: JSON, JSON with whitespace, bare text."""
    text = json.dumps(value)
    forms = [text, f"  {text}\n", text + "\r\n", "\ufeff" + text]
    if isinstance(value, str):
        forms.append(value)
        forms.append(value + "\n")
    return st.sampled_from([f.encode() for f in forms])


payloads = st.one_of(
    st.binary(max_size=200),
    json_values.flatmap(encodings),
    st.sampled_from([b"[" * 5000 + b"]" * 5000, b'"' + b"x" * (1 << 20) + b'"', b"\xff\xfe\x00garbage", b""]),
)

PARSERS = [
    lambda p: text_answer(p, TOPIC),
    lambda p: error_answer(p, TOPIC),
    lambda p: sensor_list(p, TOPIC),
    lambda p: created_sensor(p, TOPIC, "porch"),
    lambda p: created_metrics(p, TOPIC, ["100000001", "100000002"], ["a", "b"]),
    lambda p: metric_info(p, TOPIC, "m1"),
    lambda p: ping_echo(p, TOPIC, "pibridge-ab-1", "pibridge-ab"),
    lambda p: ping_echo(p, TOPIC, "pibridge-ab-1", "pibridge-ab", lenient=True),
]


# ---------------------------------------------------------------- nothing but ProtocolError escapes


@FUZZ
@given(payloads)
def test_every_parser_returns_or_raises_protocol_error_on_any_payload(payload):
    for parse in PARSERS:
        try:
            result = parse(payload)
        except ProtocolError as exc:
            assert "\n" not in str(exc) and "\r" not in str(exc)
            continue
        if isinstance(result, AgentError):
            assert isinstance(result.message, str) and result.message.isprintable()


@FUZZ
@given(st.text(max_size=60).filter(lambda t: t.strip() == t and t and not t.startswith("\ufeff")))
def test_any_text_answer_comes_back_whatever_the_encoding(text):
    for payload in (json.dumps(text).encode(), text.encode(), f" {json.dumps(text)}\n".encode()):
        got = text_answer(payload, TOPIC)
        assert got == text.strip() or (text.startswith('"') and got == text), (payload, got)


@FUZZ
@given(st.one_of(st.integers(1, 28), st.integers(29, 10**6)), st.sampled_from([int, str, float]),
       st.one_of(st.none(), st.text(max_size=30)))
def test_any_error_code_form_gives_the_number(code, form, message):
    body = {"errorcode": form(code)}
    if message is not None:
        body["errorMessage"] = message
    error = error_answer(json.dumps(body).encode(), TOPIC)
    assert int(error.code) == code and error.message == printable(message if message is not None else error.message)
    assert isinstance(error.code, ErrorCode) == (code <= 28)


@FUZZ
@given(st.permutations(range(4)), st.lists(st.sampled_from(["link", "store", "unit", "x"]), max_size=3))
def test_created_metrics_match_by_matching_id_in_any_order_and_form(order, extras):
    matching = ["100000001", "100000002", "100000003", "100000004"]
    items = []
    for i in order:
        item = {"metricId": f"id{i}", "matchingId": int(matching[i]) if i % 2 else matching[i]}
        item.update({key: 1 for key in extras})
        items.append(item)
    assert created_metrics(json.dumps(items).encode(), TOPIC, matching, list("abcd")) == ["id0", "id1", "id2", "id3"]


# ---------------------------------------------------------------- the reference's examples and known shapes


def test_error_payload_from_the_reference():
    error = error_answer(b'{"errorMessage": "Failed to delete the following metrics.", "errorcode": 23,'
                         b' "metrics": ["a", "b"]}', TOPIC)
    assert (error.code, error.metrics, error.topic) == (ErrorCode.DELETE_METRICS_FAILED, ["a", "b"], TOPIC)


def test_unknown_error_code_is_kept_as_a_number():
    error = error_answer(b'{"errorMessage": "new", "errorcode": 99}', TOPIC)
    assert error.code == 99 and "unknown code" in str(error)


def test_an_error_message_cannot_forge_a_log_line():
    error = error_answer(json.dumps({"errorcode": 3, "errorMessage": "x\n2026-01-01 ERROR forged\u202e"}).encode(),
                         TOPIC)
    assert error.message == "x\\n2026-01-01 ERROR forged\\u202e" and "\n" not in str(error)


def test_describe_answer_from_the_reference():
    # Section 5.3.2, success response.
    info = metric_info(json.dumps({"lastUpdated": 9223372036854775, "metricId": "94c2c5e193bb437195368c08f0bd86ab",
                                   "name": "CPUUsage", "value": 0.0, "valueUnit": "NoSI.Dimensionless.PERCENT"}).encode(),
                       TOPIC)
    assert info.unit is ValueUnit.PERCENT and info.last_updated == 9223372036854775 and info.value == 0.0


def test_describe_of_another_metric_is_stale():
    assert metric_info(b'{"metricId": "other", "name": "n"}', TOPIC, "m1") is STALE


def test_sensor_list_from_the_reference():
    # Section 5.2.2, success response.
    listing = sensor_list(json.dumps([{"metrics": [{"link": "/v1.0/x/sensor/d4/metric/94ab/inventory",
                                                    "metricId": "94ab"}],
                                       "name": "unispeed6", "sensorId": "d4", "store": True}]).encode(), TOPIC)
    assert [(i.sensor_id, i.name, i.metric_ids) for i in listing] == [("d4", "unispeed6", ["94ab"])]


def test_created_sensor_of_another_name_is_stale():
    assert created_sensor(b'{"name": "other", "sensorId": "s"}', TOPIC, "porch") is STALE
    assert created_sensor(b'{"sensorId": 5}', TOPIC, "porch").sensor_id == "5"


def test_ping_echo_of_an_earlier_ping_is_stale_and_garbage_is_refused():
    assert ping_echo(b'{"answer": "pibridge-ab-1"}', TOPIC, "pibridge-ab-2", "pibridge-ab") is STALE
    with pytest.raises(ProtocolError, match="echo"):
        ping_echo(b'"hello"', TOPIC, "pibridge-ab-2", "pibridge-ab")
    with pytest.raises(ProtocolError, match="echo"):
        ping_echo(b'{"reply": "pibridge-ab-"}', TOPIC, "pibridge-ab-2", "")
    # The reference's shape without the message: an agent that answers but does not echo.
    assert ping_echo(b'{"answer": "pong"}', TOPIC, "pibridge-ab-2", "pibridge-ab", lenient=True) == "pong"
    assert ping_echo(b'{"answer": "pong"}', TOPIC, "my ping", "pibridge-ab") is STALE


def test_oversized_answer_is_refused_before_parsing():
    with pytest.raises(ProtocolError, match="more than"):
        decode_answer(b'"' + b"x" * (1 << 20) + b'"', TOPIC)


def test_deeply_nested_json_is_a_protocol_error_not_a_recursion_error():
    hostile = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(ProtocolError, match="nested too deeply"):
        decode_answer(hostile, TOPIC)
    with pytest.raises(ProtocolError):
        error_answer(hostile, TOPIC)


# ---------------------------------------------------------------- what is sent


def test_push_body_matches_the_reference_example():
    # Section 5.1, Mosquitto publish example.
    body = json.loads(push_body({"temp": 21.5, "humidity": 21.5}, 1590394246545))
    assert body == {"metrics": [{"value": 21.5, "metricId": "temp"}, {"value": 21.5, "metricId": "humidity"}],
                    "timestamp": 1590394246545}


def test_push_body_without_timestamp_leaves_it_to_the_agent():
    assert json.loads(push_body({"m": True}, None)) == {"metrics": [{"metricId": "m", "value": True}]}


def test_push_body_refuses_nan_and_objects():
    with pytest.raises(ValueError):
        push_body({"m": float("nan")}, 1)
    with pytest.raises(ValueError, match="numbers, bools or strings"):
        push_body({"m": object()}, 1)


@pytest.mark.parametrize("good", ["a", "Sensor 1", "x_y-z", "9" * 32])
def test_valid_ids(good):
    assert check_id("sensor", good) == good


@pytest.mark.parametrize("bad", ["", "9" * 33, "a/b", "+", "#", "ä", None])
def test_invalid_ids(bad):
    with pytest.raises(ValueError, match="1 to 32 letters"):
        check_id("metric", bad)


# ---------------------------------------------------------------- units (section 5.3.1)

REFERENCE_UNITS = """SI.ElectricCurrent.AMPERE SI.DataAmount.BIT SI.Temperature.CELSIUS SI.ElectricCapacitance.FARAD
SI.Mass.KILOGRAM SI.Frequency.HERTZ SI.Energy.JOULE SI.Length.METER SI.Velocity.METERS_PER_SECOND
SI.AmountOfSubstance.MOLE SI.Force.NEWTON SI.ElectricResistance.OHM SI.Pressure.PASCAL SI.Angle.RADIAN
SI.Duration.SECOND SI.Area.SQUARE_METRE SI.ElectricPotential.VOLT SI.Power.WATT SI.LuminousIntensity.CANDELA
SI.Acceleration.METERS_PER_SQUARE_SECOND NoSI.Dimensionless.PERCENT NoSI.Dimensionless.DECIBEL
NoSI.Location.LATITUDE NoSI.Location.LONGITUDE""".split()


def test_the_unit_table_is_the_references_24_units():
    assert [u.value for u in ValueUnit] == REFERENCE_UNITS and len(REFERENCE_UNITS) == 24


@pytest.mark.parametrize("typo", ["SI.Mass.GRAM", "SI_Energy_JOULE", "celsius"])
def test_the_sdk_documents_typos_are_refused(typo):
    with pytest.raises(ValueError, match=f"unknown valueUnit '{typo}'.*SI.Mass.KILOGRAM"):
        MetricDefinition("m", typo)


def test_metric_definitions_are_checked_before_sending():
    with pytest.raises(ValueError, match="give a predefined unit, or a valueType"):
        MetricDefinition("m")
    with pytest.raises(ValueError, match="not both"):
        MetricDefinition("m", ValueUnit.VOLT, ValueType.DOUBLE, "V")
    with pytest.raises(ValueError, match="together with a valueAnnotation"):
        MetricDefinition("m", value_type=ValueType.DOUBLE)
    with pytest.raises(ValueError, match="unknown valueType 'float'"):
        MetricDefinition("m", value_type="float", annotation="x")
    with pytest.raises(ValueError, match="non-empty name"):
        MetricDefinition("", ValueUnit.VOLT)


def test_metric_definitions_in_api_form():
    assert MetricDefinition("CPUUsage", "NoSI.Dimensionless.PERCENT").to_api("1") == {
        "matchingId": "1", "name": "CPUUsage", "valueUnit": "NoSI.Dimensionless.PERCENT"}
    assert MetricDefinition("ShopFloor1", value_type="integer", annotation="goods per minute").to_api("3") == {
        "matchingId": "3", "name": "ShopFloor1", "valueType": "integer", "valueAnnotation": "goods per minute"}


# ---------------------------------------------------------------- backoff


def test_backoff_grows_exponentially_to_the_cap_with_jitter_below_the_nominal_delay():
    backoff = Backoff(initial=0.5, maximum=8.0, factor=2.0, jitter=0.5)
    delays = backoff.delays()
    nominal = [0.5, 1, 2, 4, 8, 8, 8, 8]
    observed = [next(delays) for _ in nominal]
    for got, expected in zip(observed, nominal):
        assert expected * 0.5 <= got <= expected
    many = [next(Backoff(initial=1.0, jitter=0.5).delays()) for _ in range(200)]
    assert max(many) - min(many) > 0.2, "no jitter"


# ---------------------------------------------------------------- PUBACK bookkeeping


def test_confirmation_before_registration_is_handed_back():
    table = MidTable()
    table.begin()
    assert table.confirm(7, "ack") is None
    assert table.register(7, "handler") == (True, "ack")
    assert table.confirm(7, "again") is None


def test_registration_before_confirmation_gets_the_handler():
    table = MidTable()
    table.begin()
    assert table.register(8, "handler") == (False, None)
    assert table.confirm(8, "ack") == "handler"


def test_stray_confirmations_are_not_kept_when_nobody_is_issuing():
    table = MidTable()
    assert table.confirm(9, "ack") is None
    table.begin()
    assert table.register(9, "handler") == (False, None)
    assert table.confirm(9, "ack") == "handler"


# ---------------------------------------------------------------- the waiting request, as paho's thread feeds it


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["answer", "error", "vendor", "stray"]), payloads), max_size=6))
def test_a_waiting_request_never_raises_in_pahos_thread_and_only_well_formed_answers_end_it(messages):
    from pibridge.agent import topics

    route = topics.delete_metrics("c", "s")
    topic_of = {"answer": route.answer, "error": route.error, "vendor": route.vendor_answers[1],
                "stray": route.request + "/result"}
    complaints = []
    waiter = Waiter(route, route.answers, route.errors, text_answer, lambda t, p: complaints.append(p))
    for which, payload in messages:
        topic = topic_of[which]
        if which == "stray":
            waiter.ignore(topic, "stray")
        else:
            waiter.offer(topic, payload)
        if waiter.event.is_set():
            break
    if waiter.event.is_set():
        assert waiter.answered_on in route.answers + route.errors
        assert waiter.error is None or isinstance(waiter.error, AgentError)
    else:
        assert waiter.ignored == len(complaints)
        assert isinstance(waiter.no_answer(1.0), ProtocolError if complaints else AgentTimeout)
