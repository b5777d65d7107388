"""Parsing and building of the API's payloads, the unit table, backoff and PUBACK bookkeeping (no broker)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pibridge.agent.client import (
    Backoff,
    _metric_info,
    _MidTable,
    _sensor_info,
    _text_answer,
    check_id,
    decode_answer,
    parse_error_payload,
    push_body,
)
from pibridge.agent.errors import AgentError, ErrorCode, ProtocolError
from pibridge.units import MetricDefinition, ValueType, ValueUnit

TOPIC = "/v1.0/c/sensor/s/info/inbox"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["sensorId", "name", "metrics", "metricId", "errorcode", "errorMessage", "value",
                         "lastUpdated", "valueUnit", "valueType", "valueAnnotation", "x"]), children, max_size=6),
    max_leaves=12,
)


# ---------------------------------------------------------------- nothing but ProtocolError escapes


@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_protocol_error(payload):
    try:
        decode_answer(payload, TOPIC)
    except ProtocolError:
        pass


@given(json_values)
def test_any_json_is_an_agent_error_or_a_protocol_error(body):
    try:
        error = parse_error_payload(json.dumps(body).encode(), TOPIC)
    except ProtocolError:
        return
    assert isinstance(error, AgentError) and isinstance(error.message, str)


@given(json_values)
def test_any_json_parses_as_sensor_metric_or_text_or_raises_protocol_error(body):
    for parse in (_sensor_info, _metric_info, _text_answer):
        try:
            parse(body, TOPIC)
        except ProtocolError:
            pass


def test_error_payload_from_the_reference():
    error = parse_error_payload(b'{"errorMessage": "Failed to delete the following metrics.", "errorcode": 23,'
                                b' "metrics": ["a", "b"]}', TOPIC)
    assert (error.code, error.metrics, error.topic) == (ErrorCode.DELETE_METRICS_FAILED, ["a", "b"], TOPIC)


def test_unknown_error_code_is_kept_as_a_number():
    error = parse_error_payload(b'{"errorMessage": "new", "errorcode": 99}', TOPIC)
    assert error.code == 99 and "unknown code" in str(error)


def test_describe_answer_from_the_reference():
    # Section 5.3.2, success response.
    info = _metric_info({"lastUpdated": 9223372036854775, "metricId": "94c2c5e193bb437195368c08f0bd86ab",
                         "name": "CPUUsage", "value": 0.0, "valueUnit": "NoSI.Dimensionless.PERCENT"}, TOPIC)
    assert info.unit is ValueUnit.PERCENT and info.last_updated == 9223372036854775 and info.value == 0.0


def test_sensor_list_entry_from_the_reference():
    # Section 5.2.2, success response.
    info = _sensor_info({"metrics": [{"link": "/v1.0/x/sensor/d4/metric/94ab/inventory", "metricId": "94ab"}],
                         "name": "unispeed6", "sensorId": "d4", "store": True}, TOPIC)
    assert (info.sensor_id, info.name, info.metric_ids) == ("d4", "unispeed6", ["94ab"])


def test_oversized_answer_is_refused_before_parsing():
    with pytest.raises(ProtocolError, match="more than"):
        decode_answer(b'"' + b"x" * (1 << 20) + b'"', TOPIC)


# ---------------------------------------------------------------- what is sent


def test_deeply_nested_json_is_a_protocol_error_not_a_recursion_error():
    hostile = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(ProtocolError, match="nested too deeply"):
        decode_answer(hostile, TOPIC)
    with pytest.raises(ProtocolError):
        parse_error_payload(hostile, TOPIC)


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
    table = _MidTable()
    table.begin()
    assert table.confirm(7, "ack") is None
    assert table.register(7, "handler") == (True, "ack")
    assert table.confirm(7, "again") is None


def test_registration_before_confirmation_gets_the_handler():
    table = _MidTable()
    table.begin()
    assert table.register(8, "handler") == (False, None)
    assert table.confirm(8, "ack") == "handler"


def test_stray_confirmations_are_not_kept_when_nobody_is_issuing():
    table = _MidTable()
    assert table.confirm(9, "ack") is None
    table.begin()
    assert table.register(9, "handler") == (False, None)
    assert table.confirm(9, "ack") == "handler"
