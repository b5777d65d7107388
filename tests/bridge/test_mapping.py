"""SensorMapping: agent metric definitions, calibration, unit conversion, thresholds, bad values.

Conversion factors are the SI prefix definitions (SI Brochure, 9th edition,
section 3, table 7): hecto = 10^2, milli = 10^-3, centi = 10^-2.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pibridge.bridge.config import parse_config
from pibridge.bridge.mapping import BadValue, SensorMapping
from pibridge.drivers import create
from pibridge.readings import UNITS, Quantity, Reading
from pibridge.units import MetricDefinition, ValueType, ValueUnit

ALL_MOCK = ["temperature", "humidity", "pressure", "illuminance", "voltage", "distance", "co2", "contact", "counter"]


def mapping(metric_tables: str = "", metrics: list[str] = ALL_MOCK, interval: float = 5.0) -> SensorMapping:
    config = parse_config(
        f'[[sensors]]\nname = "greenhouse"\ndriver = "mock"\ninterval = {interval}\nmetrics = {metrics!r}\n'
        + metric_tables
    )
    sensor = config.sensors[0]
    return SensorMapping(sensor, list(sensor.quantities))


def reading(t_ms: int = 1_700_000_000_000, **values) -> Reading:
    return Reading("greenhouse", t_ms, values)


# --- definitions ---------------------------------------------------------------------------


def test_definitions_use_predefined_units_where_the_agent_has_them():
    defs = mapping().definitions()
    assert defs["temperature"] == MetricDefinition("temperature", ValueUnit.CELSIUS)
    assert defs["humidity"] == MetricDefinition("humidity", ValueUnit.PERCENT)
    assert defs["pressure"] == MetricDefinition("pressure", ValueUnit.PASCAL)  # hPa is sent as Pa
    assert defs["voltage"] == MetricDefinition("voltage", ValueUnit.VOLT)
    assert defs["distance"] == MetricDefinition("distance", ValueUnit.METER)  # cm is sent as m


def test_definitions_fall_back_to_custom_metrics():
    defs = mapping().definitions()
    assert defs["illuminance"].to_api("1") == {
        "matchingId": "1", "name": "illuminance", "valueType": "double", "valueAnnotation": "lx",
    }
    assert (defs["co2"].value_type, defs["co2"].annotation) == (ValueType.DOUBLE, "ppm")
    assert (defs["counter"].value_type, defs["counter"].annotation) == (ValueType.INTEGER, "count")
    assert defs["contact"].value_type is ValueType.BOOL


def test_definitions_follow_renames_and_leave_out_dropped_quantities():
    m = mapping('[sensors.metric.temperature]\nname = "air temperature"\n[sensors.metric.humidity]\ndrop = true\n')
    defs = m.definitions()
    assert defs["temperature"].name == "air temperature"
    assert "humidity" not in defs
    assert m.metric_name("temperature") == "air temperature"


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_every_canonical_unit_gives_a_valid_agent_definition(unit):
    from pibridge.bridge.config import MetricConfig, SensorConfig

    q = Quantity("q", unit)
    sensor = SensorConfig("s", "mock", 5.0, metrics={"q": MetricConfig("q", "q")})
    body = SensorMapping(sensor, [q]).definitions()["q"].to_api("7")
    assert ("valueUnit" in body) != ("valueType" in body and "valueAnnotation" in body)
    if "valueUnit" in body:
        ValueUnit.parse(body["valueUnit"])  # one of the reference's 24 units, never a made-up one


# --- values --------------------------------------------------------------------------------


def test_units_are_converted_to_the_agent_unit():
    out = mapping(metrics=["pressure", "distance", "temperature", "illuminance"]).apply(
        reading(pressure=1013.25, distance=120.5, temperature=21.5, illuminance=350.0)
    )
    assert out.values == {"pressure": 101325.0, "distance": 1.205, "temperature": 21.5, "illuminance": 350.0}
    assert out.sensor == "greenhouse" and out.timestamp_ms == 1_700_000_000_000


def test_conversion_leaves_no_binary_noise():
    # 3300 mV * 0.001 is 3.3000000000000003 in binary floating point.
    assert 3300 * 1e-3 != 3.3
    out = mapping(metrics=["voltage"]).apply(reading(voltage=3.3))
    assert out.values["voltage"] == 3.3
    from pibridge.bridge.config import MetricConfig, SensorConfig

    sensor = SensorConfig("s", "x", 5.0, metrics={"supply": MetricConfig("supply", "supply")})
    m = SensorMapping(sensor, [Quantity("supply", "mV")])
    assert m.apply(Reading("s", 0, {"supply": 3300})).values == {"supply": 3.3}


def test_calibration_happens_in_the_canonical_unit_before_conversion():
    m = mapping("[sensors.metric.pressure]\nscale = 1.001\noffset = -2.5\n", metrics=["pressure"])
    out = m.apply(reading(pressure=1000.0))
    assert out.values["pressure"] == pytest.approx((1000.0 * 1.001 - 2.5) * 100)
    assert m.chains["pressure"].correct(1000.0) == pytest.approx(998.5)  # hPa, before conversion


def test_rounding_is_in_the_canonical_unit():
    m = mapping("[sensors.metric.pressure]\nround = 1\n[sensors.metric.temperature]\nround = 0\n",
                metrics=["pressure", "temperature"])
    out = m.apply(reading(pressure=1013.26, temperature=21.5001))
    assert out.values == {"pressure": 101330.0, "temperature": 22.0}


def test_dropped_quantities_are_not_sent():
    m = mapping("[sensors.metric.humidity]\ndrop = true\n", metrics=["temperature", "humidity"])
    assert m.apply(reading(temperature=20.0, humidity=50.0)).values == {"temperature": 20.0}
    assert m.apply(reading(humidity=50.0)) is None
    # Garbage in a quantity nobody wants does not cost the others their reading.
    assert m.apply(reading(temperature=20.0, humidity=math.nan)).values == {"temperature": 20.0}


def test_counters_stay_whole_and_exact():
    m = mapping(metrics=["counter"])
    big = 2**60 + 1
    assert m.apply(reading(counter=big)).values == {"counter": big}
    assert m.apply(reading(counter=7.0)).values == {"counter": 7}
    scaled = mapping("[sensors.metric.counter]\nscale = 0.5\n", metrics=["counter"]).apply(reading(counter=7))
    assert scaled.values == {"counter": 4} and isinstance(scaled.values["counter"], int)


def test_booleans_pass_and_zero_one_become_booleans():
    m = mapping(metrics=["contact"])
    assert m.apply(reading(contact=True)).values == {"contact": True}
    assert m.apply(reading(contact=0)).values == {"contact": False}


# --- threshold and heartbeat ---------------------------------------------------------------


def test_threshold_pushes_only_real_changes_and_heartbeat_pushes_anyway():
    m = mapping("[sensors.metric.temperature]\nthreshold = 0.5\nheartbeat = 60\n", metrics=["temperature", "humidity"])
    pushes = []
    for second, temperature in [(0, 20.0), (5, 20.2), (10, 20.4), (15, 20.5), (20, 20.6), (80, 20.6), (85, 20.1)]:
        out = m.apply(reading(temperature=temperature, humidity=50.0), now=second)
        pushes.append((second, out.values.get("temperature")))
    # 20.0 first; 20.5 moved 0.5; 20.6 at 80 s: heartbeat (60 s after 20.5); 20.1 moved 0.5 from 20.6.
    assert pushes == [(0, 20.0), (5, None), (10, None), (15, 20.5), (20, None), (80, 20.6), (85, 20.1)]


def test_threshold_measures_from_the_last_pushed_value_not_the_last_read():
    m = mapping("[sensors.metric.temperature]\nthreshold = 1.0\n", metrics=["temperature"])
    values = [20.0, 20.4, 20.8, 21.0, 21.3]
    sent = [m.apply(reading(temperature=v), now=i) for i, v in enumerate(values)]
    # A slow drift is still reported once it adds up to the threshold.
    assert [s.values["temperature"] if s else None for s in sent] == [20.0, None, None, 21.0, None]


def test_threshold_tolerates_float_noise():
    m = mapping("[sensors.metric.temperature]\nthreshold = 0.1\n", metrics=["temperature"])
    assert 21.2 - 21.1 < 0.1
    m.apply(reading(temperature=21.1), now=0)
    assert m.apply(reading(temperature=21.2), now=1) is not None


def test_without_now_the_heartbeat_runs_on_reading_timestamps():
    m = mapping("[sensors.metric.temperature]\nthreshold = 5\nheartbeat = 60\n", metrics=["temperature"])
    assert m.apply(reading(t_ms=1_000_000, temperature=20.0)) is not None
    assert m.apply(reading(t_ms=1_059_000, temperature=20.0)) is None
    assert m.apply(reading(t_ms=1_060_000, temperature=20.0)) is not None


# --- values of the wrong kind --------------------------------------------------------------


@pytest.mark.parametrize(
    "quantity, value, words",
    [
        ("temperature", math.nan, "finite"),
        ("temperature", math.inf, "finite"),
        ("pressure", -math.inf, "finite"),
        ("temperature", "21.5", "expected a number"),
        ("temperature", True, "expected a number"),
        ("temperature", None, "expected a number"),
        ("temperature", 10**400, "too large"),
        ("counter", "\x00\xff", "expected a number"),
        ("contact", "on", "expected true/false"),
        ("contact", 2, "expected true/false"),
        ("contact", 1.0, "expected true/false"),
        ("no_such_quantity", 1.0, "does not declare"),
    ],
)
def test_wrong_kind_of_value_is_refused_naming_sensor_and_quantity(quantity, value, words):
    m = mapping()
    with pytest.raises(ValueError) as info:
        m.apply(reading(**{quantity: value}))
    assert isinstance(info.value, BadValue)
    text = str(info.value)
    assert "sensor 'greenhouse'" in text and f"quantity {quantity!r}" in text and words in text
    assert (info.value.sensor, info.value.quantity) == ("greenhouse", quantity)


def test_a_refused_reading_leaves_the_threshold_state_alone():
    m = mapping("[sensors.metric.temperature]\nthreshold = 1\n", metrics=["temperature", "humidity"])
    m.apply(reading(temperature=20.0, humidity=50.0), now=0)
    with pytest.raises(BadValue):
        m.apply(reading(temperature=25.0, humidity=math.nan), now=1)
    assert m.apply(reading(temperature=25.0, humidity=50.0), now=2).values["temperature"] == 25.0


def test_calibration_overflow_is_refused():
    m = mapping("[sensors.metric.temperature]\nscale = 1e9\n", metrics=["temperature"])
    with pytest.raises(BadValue, match="overflows"):
        m.apply(reading(temperature=1e300))


def test_overlong_text_is_refused():
    from pibridge.bridge.config import MetricConfig, SensorConfig

    sensor = SensorConfig("s", "x", 5.0, metrics={"note": MetricConfig("note", "note")})
    m = SensorMapping(sensor, [Quantity("note", "text")])
    assert m.apply(Reading("s", 0, {"note": "door opened"})).values == {"note": "door opened"}
    with pytest.raises(BadValue, match="longer than 1024"):
        m.apply(Reading("s", 0, {"note": "x" * 1025}))


def test_garbage_from_the_mock_driver_is_refused_or_finite():
    driver = create("mock", "greenhouse", {"metrics": ["temperature"], "garbage_every": 1, "seed": 3})
    m = mapping(metrics=["temperature"])
    refused = 0
    driver.open()
    try:
        for _ in range(30):
            try:
                out = m.apply(reading(**driver.read()))
            except BadValue:
                refused += 1
            else:
                # Absurd but finite magnitudes are the driver's to reject (ValueRejected), not the mapping's.
                assert math.isfinite(out.values["temperature"])
    finally:
        driver.close()
    assert refused > 0


numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70))
values = st.one_of(numbers, st.booleans(), st.text(max_size=5), st.none())


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from(ALL_MOCK), values, min_size=1),
    st.floats(-1e6, 1e6).filter(lambda v: v != 0),
    st.floats(-1e6, 1e6),
    st.one_of(st.none(), st.integers(-3, 6)),
)
def test_any_driver_output_maps_to_clean_values_or_a_bad_value(raw, scale, offset, digits):
    tables = "".join(
        f"[sensors.metric.{q}]\nscale = {scale!r}\noffset = {offset!r}\n" + (f"round = {digits}\n" if digits is not None else "")
        for q in ALL_MOCK if q != "contact"
    )
    m = mapping(tables)
    try:
        out = m.apply(reading(**raw))
    except BadValue:
        return
    assert set(out.values) == set(raw)
    for quantity, value in out.values.items():
        if quantity == "contact":
            assert isinstance(value, bool)
        elif quantity == "counter":
            assert type(value) is int
        else:
            assert type(value) is float and math.isfinite(value)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.1, 100), st.floats(-50, 50)), min_size=1, max_size=40),
    st.floats(0.01, 10),
    st.one_of(st.none(), st.floats(5, 500)),
)
def test_threshold_and_heartbeat_invariants(steps, threshold, heartbeat):
    """A value is pushed exactly when it moved by the threshold since the last push, or the heartbeat is due.

    Without a heartbeat in the config it is 90 s; "due" allows the readings' jitter (JITTER).
    """
    from pibridge.transforms.base import JITTER

    options = f"threshold = {threshold!r}\n" + (f"heartbeat = {heartbeat!r}\n" if heartbeat is not None else "")
    m = mapping("[sensors.metric.temperature]\n" + options, metrics=["temperature"], interval=0.1)
    now, last = 0.0, None
    for gap, value in steps:
        now += gap
        out = m.apply(reading(temperature=value), now=now)
        moved = last is None or abs(value - last[0]) >= threshold * (1 - 1e-9)
        due = last is not None and now - last[1] >= (90.0 if heartbeat is None else heartbeat) - JITTER
        assert (out is not None) == (moved or due)
        if out is not None:
            assert out.values == {"temperature": value}
            last = (value, now)
