"""The ``filters`` list and the ``derived`` keys in the config: every mistake named precisely."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pibridge.bridge.config import ConfigError, parse_config
from pibridge.transforms.push import DEFAULT_HEARTBEAT, Threshold
from pibridge.transforms.values import Offset, Round, Scale
from pibridge.transforms.windows import Median, SendEvery

FILE = Path("/etc/pibridge/config.toml")
SENSOR = '[[sensors]]\nname = "greenhouse"\ndriver = "mock"\ninterval = 10.0\nmetrics = ["temperature", "humidity", "pressure", "contact"]\n'


def errors(text: str) -> list[tuple[str | None, str, str]]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, FILE)
    for e in info.value.errors:
        assert re.match(rf"{re.escape(str(FILE))}:\d+: sensor 'greenhouse': ", e.describe())  # file, line, sensor
        assert e.fix
    return [(e.key, e.message, e.fix) for e in info.value.errors]


def metric(body: str, quantity: str = "temperature") -> str:
    return SENSOR + f"[sensors.metric.{quantity}]\n{body}\n"


@pytest.mark.parametrize("body, key, words, fix", [
    ("filters = [{ median = 0 }]", "filters[1].median", "1 to 10000 readings", 'median = "60s"'),
    ("filters = [{ mediam = 3 }]", "filters[1]", "names no filter", "did you mean 'median'?"),
    ("filters = [{ median = 3, mean = 2 }]", "filters[1]", "names 2 filters", "split it"),
    ("filters = { median = 3 }", "filters", "must be a list of filter tables", "filters = [{ median = 5 }"),
    ("filters = [3]", "filters[1]", "not an integer", "{ <name> = <setting> }"),
    ("filters = [{}]", "filters[1]", "not an empty table", "{ <name> = <setting> }"),
    ("filters = [{ calibrate = [[1, 2]] }]", "filters[1].calibrate", "at least two", "[raw, true]"),
    ("filters = [{ calibrate = [[1, 2], [1, 3]] }]", "filters[1].calibrate", "all the same", "[raw, true]"),
    ("filters = [{ valid = [5, 1] }]", "filters[1].valid", "must be below", "valid = [-40, 85]"),
    ("filters = [{ clamp = [1] }]", "filters[1].clamp", "two numbers", "clamp = [0, 100]"),
    ("filters = [{ invert = true }]", "filters[1].invert", "only to on/off values", "remove the 1st filter"),
    ("filters = [{ median = 3, send_every = \"x\" }]", "filters[1].send_every", "not a duration", "send_every"),
    ("filters = [{ median = 3 }, { ema = 2 }]", "filters[2].ema", "at most 1", "ema = 0.2"),
    ("filters = [{ median = 3, foo = 1 }]", "filters[1].foo", "unknown key in the median filter", "send_every"),
    ("filters = [{ threshold = 1, heartbeat = 5 }]", "filters[1].heartbeat", "shorter than the sensor's interval",
     "at least 10 s"),
    ('filters = [{ mean = "2d" }]', "filters[1].mean", "would hold 17280 readings", "shorten the window"),
    ("filters = [{ throttle = -1 }]", "filters[1].throttle", "at least 1 ms", 'throttle = "30s"'),
    ("filters = [{ polynomial = [] }]", "filters[1].polynomial", "at least one coefficient", "c0 + c1 x"),
    ("round = 1\nfilters = [{ round = 2 }]", "round", "both as a key and as the 1st entry", "keep one"),
    ('heartbeat = "5m"\nfilters = [{ threshold = 1 }]', "heartbeat", "only applies together with a threshold",
     "inside the threshold entry"),
    ("heartbeat = false", "heartbeat", "only applies together with a threshold", "add threshold"),
])
def test_a_filter_mistake_names_metric_filter_index_and_fix(body, key, words, fix):
    found = errors(metric(body))
    assert len(found) == 1, found
    (got_key, message, got_fix), = found
    assert got_key == f"metric.temperature.{key}" and words in message and fix in got_fix


def test_on_off_filters_on_a_boolean_and_numbers_only_filters_refused_there():
    (key, message, _), = errors(metric("filters = [{ median = 3 }]", "contact"))
    assert key == "metric.contact.filters[1].median" and "'contact' is on/off" in message
    config = parse_config(metric('filters = [{ invert = true }, { debounce = "2s" }]', "contact"), FILE)
    assert [f.key for f in config.sensors[0].metrics["contact"].chain()] == ["invert", "debounce"]


def test_the_older_keys_wrap_the_list_in_a_fixed_order():
    config = parse_config(metric('scale = 1.02\noffset = -0.4\nround = 1\nthreshold = 0.2\n'
                                 'filters = [{ median = 5, send_every = "1m" }]'), FILE)
    assert config.sensors[0].metrics["temperature"].chain() == (
        Scale(1.02), Offset(-0.4), Median(readings=5, send_every=SendEvery(seconds=60.0)), Round(1),
        Threshold(0.2, DEFAULT_HEARTBEAT))


def test_every_problem_of_a_file_is_listed_at_once():
    text = metric('filters = [{ median = 0 }, { valid = [2, 1] }, { bogus = 1 }]')
    assert [k for k, _, _ in errors(text)] == [
        "metric.temperature.filters[1].median", "metric.temperature.filters[2].valid", "metric.temperature.filters[3]"]


@pytest.mark.parametrize("keys, key, words, fix", [
    ('derived = ["dew_pint"]', "derived", "no derived value called 'dew_pint'", "did you mean 'dew_point'?"),
    ('derived = "dew_point"', "derived", "must be a list of names", 'derived = ["dew_point"'),
    ('derived = ["dew_point", "dew_point"]', "derived", "listed twice", "once"),
    ('derived = ["sea_level_pressure"]', "altitude", "needs the altitude", "altitude = 250"),
    ("altitude = 100", "altitude", "only applies to derived values", 'derived = ["sea_level_pressure"]'),
    ('derived = ["dew_point"]\naltitude = 100', "altitude", "only applies to the derived value sea_level_pressure",
     "sea_level_pressure"),
    ('derived = ["altitude"]\nreference_pressure = 2000', "reference_pressure", "between 800 and 1100",
     "reference_pressure = 1013.25"),
])
def test_derived_value_mistakes(keys, key, words, fix):
    found = errors(SENSOR + keys + "\n")
    assert any(k == key and words in m and fix in f for k, m, f in found), found


def test_a_derived_value_needs_its_inputs_from_the_driver():
    text = '[[sensors]]\nname = "greenhouse"\ndriver = "mock"\ninterval = 10.0\nmetrics = ["pressure"]\nderived = ["vpd"]\n'
    (key, message, fix), = errors(text)
    assert key == "derived" and "'vpd' needs the quantity 'temperature'" in message and "it reports: pressure" in message


def test_derived_values_are_metrics_with_their_own_tables():
    config = parse_config(SENSOR + 'derived = ["dew_point", "sea_level_pressure"]\naltitude = 250\n'
                          '[sensors.metric.dew_point]\nname = "dew point"\nfilters = [{ round = 1 }]\n', FILE)
    sensor = config.sensors[0]
    assert [d.name for d in sensor.derived] == ["dew_point", "sea_level_pressure"]
    assert sensor.metrics["dew_point"].name == "dew point" and sensor.metrics["sea_level_pressure"].name == "sea_level_pressure"
    assert sensor.derived[1].altitude == 250.0


ODD = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
              st.text(max_size=6), st.sampled_from(["60s", "1h", "x", "", "-5s"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(
        ["median", "mean", "ema", "valid", "clamp", "calibrate", "polynomial", "threshold", "heartbeat", "throttle",
         "debounce", "invert", "send_every", "filter_out", "round", "bogus"]), inner, max_size=3)),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(ODD, max_size=4), st.sampled_from(["temperature", "counter", "contact"]))
def test_any_filters_list_gives_a_config_or_a_config_error(entries, quantity):
    """Hypothesis (derandomized under CI=true): never a traceback, whatever the list holds."""
    import tomllib

    text = (SENSOR.replace('"contact"]', '"contact", "counter"]') + f"[sensors.metric.{quantity}]\n"
            + "filters = " + _toml(entries) + "\n")
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return
    try:
        config = parse_config(text, FILE)
    except ConfigError as e:
        assert all(err.fix for err in e.errors)
        return
    config.sensors[0].metrics[quantity].chain()


def _toml(value) -> str:
    import json
    import math

    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"


def test_a_metric_table_for_an_undeclared_derived_value_says_how_to_declare_it():
    (key, message, fix), = errors(SENSOR + "[sensors.metric.dew_point]\nround = 1\n")
    assert key == "metric.dew_point" and "does not declare" in message and 'derived = ["dew_point"]' in fix


def test_every_filter_and_derived_value_is_documented_with_its_settings():
    from pibridge.transforms.derived import FORMULAS
    from pibridge.transforms.parse import FILTERS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text(encoding="utf-8")
    filters = doc.split("## Filters", 1)[1].split("## Derived values", 1)[0]
    for name, cls in FILTERS.items():
        assert f"| `{name}` |" in filters or f"| `min`, `max` |" in filters and name in ("min", "max"), name
        for extra in cls.extra_keys:
            assert f"`{extra}`" in filters, (name, extra)
    derived = doc.split("## Derived values", 1)[1].split("\n## ", 1)[0]
    for name, formula in FORMULAS.items():
        assert f"| `{name}` |" in derived, name
        for key in formula.keys:
            assert f"`{key}`" in derived, (name, key)


@pytest.mark.parametrize("body, key, words", [
    ("scale = 1e300", "metric.temperature.scale", "between -1e+09 and 1e+09"),
    ("offset = -1e300", "metric.temperature.offset", "between -1e+12 and 1e+12"),
    ("threshold = 1e300", "metric.temperature.threshold", "at most 1e+12"),
    ('threshold = 1\nheartbeat = "2d"', "metric.temperature.heartbeat", "at most 1 d"),
    ("filters = [{ throttle = 1e300 }]", "metric.temperature.filters[1].throttle", "at most 1 d"),
    ("filters = [{ scale = 1e300 }]", "metric.temperature.filters[1].scale", "between -1e+09 and 1e+09"),
    ('filters = [{ debounce = "2h" }]', "metric.contact.filters[1].debounce", "at most 1 h"),
])
def test_every_number_and_duration_of_a_metric_has_an_upper_bound(body, key, words):
    quantity = "contact" if "debounce" in body else "temperature"
    found = [(k, message) for k, message, _ in errors(metric(body, quantity)) if k == key]
    assert found and words in found[0][1], found
