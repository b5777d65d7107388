"""Our Prometheus text format, read back by prometheus_client's own parser."""

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pibridge.web.prometheus import Exposition
from pibridge.web.units import prometheus_suffix


def parse(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_counters_gauges_and_labels_read_back_as_written():
    out = Exposition()
    out.family("pibridge_readings_pushed_total", "counter", "Readings the agent acknowledged.")
    out.sample("pibridge_readings_pushed_total", 42)
    out.family("pibridge_sensor_celsius", "gauge", "Last value.")
    out.sample("pibridge_sensor_celsius", 21.25, {"sensor": 'green "house"\\1\nb', "metric": "temperature"})
    out.sample("pibridge_sensor_celsius", float("nan"), {"sensor": "broken", "metric": "temperature"})
    families = parse(out.text())
    pushed = families["pibridge_readings_pushed"]
    assert pushed.type == "counter" and pushed.samples[0].value == 42
    celsius = families["pibridge_sensor_celsius"]
    assert celsius.type == "gauge" and celsius.documentation == "Last value."
    first, second = celsius.samples
    assert first.labels == {"sensor": 'green "house"\\1\nb', "metric": "temperature"}
    assert first.value == 21.25
    assert math.isnan(second.value)


def test_names_and_labels_are_checked():
    out = Exposition()
    with pytest.raises(ValueError):
        out.family("2bad", "gauge", "x")
    with pytest.raises(ValueError):
        out.family("pibridge_x", "histogram", "x")
    out.family("pibridge_x", "gauge", "x")
    with pytest.raises(ValueError):
        out.sample("pibridge_x", 1, {"bad-label": "v"})
    with pytest.raises(KeyError):
        out.sample("pibridge_undeclared", 1)


@pytest.mark.parametrize("unit, annotation, suffix, factor", [
    ("SI.Temperature.CELSIUS", None, "celsius", 1.0),
    ("NoSI.Dimensionless.PERCENT", None, "ratio", 0.01),    # the naming guide: ratios, not percent
    ("SI.Mass.KILOGRAM", None, "grams", 1000.0),            # base unit grams
    (None, "lx", "lux", 1.0),
    (None, "µg/m³", "micrograms_per_cubic_meter", 1.0),
    (None, "odd unit!", "odd_unit", 1.0),
])
def test_unit_suffixes(unit, annotation, suffix, factor):
    assert prometheus_suffix(unit, annotation) == (suffix, factor)
