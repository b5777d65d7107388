"""Each filter on its own, then chains of them through a sensor's mapping.

Hypothesis tests run derandomized under CI=true (its built-in "ci" profile).
"""

from __future__ import annotations

import logging
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pibridge.bridge.config import parse_config
from pibridge.bridge.mapping import BadValue, SensorMapping
from pibridge.readings import Reading
from pibridge.transforms import Chain, Dropped, Held, Passed
from pibridge.transforms.push import DEFAULT_HEARTBEAT, Debounce, Threshold, Throttle
from pibridge.transforms.values import Calibrate, Clamp, FilterOut, Invert, Polynomial, Round, Valid, fit_line
from pibridge.transforms.windows import Ema, Max, Mean, Median, Min, SendEvery

T0 = 1_700_000_040.0  # a whole minute: 2023-11-14 22:14:00 UTC


def run(chain: Chain, values, start=T0, step=1.0):
    """What comes out of *chain* for *values* read every *step* seconds (None: nothing)."""
    return [chain.run(v, start + i * step).value for i, v in enumerate(values)]


def mapping(metric: str, metrics=("temperature",), interval=1.0, extra="") -> SensorMapping:
    config = parse_config(
        f'[[sensors]]\nname = "greenhouse"\ndriver = "mock"\ninterval = {interval}\nmetrics = {list(metrics)!r}\n'
        f"{extra}[sensors.metric.{metrics[0]}]\n{metric}\n"
    )
    sensor = config.sensors[0]
    return SensorMapping(sensor, list(sensor.quantities))


def reading(at: float, **values) -> Reading:
    return Reading("greenhouse", int(round(at * 1000)), values)


# --- one value at a time ---------------------------------------------------------------------


def test_valid_drops_what_no_device_can_read_and_counts_it(caplog):
    chain = Chain([Valid(-40, 85)], "sensor 'greenhouse', metric 'temperature'")
    with caplog.at_level(logging.WARNING, "pibridge.transforms"):
        assert run(chain, [21.5, 1e12, -40.0, 85.0, 85.1, -273.0]) == [21.5, None, -40.0, 85.0, None, None]
    assert chain.dropped == {"out_of_range": 3}
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1  # logged the first time only
    assert "metric 'temperature'" in lines[0] and "1e+12 is outside valid = [-40, 85]" in lines[0]


def test_clamp_and_filter_out():
    assert run(Chain([Clamp(0, 100)]), [-3.0, 50.0, 100.4]) == [0, 50.0, 100]
    chain = Chain([FilterOut((85.0, -127.0))])  # a DS18B20's power-on value and its "no probe" value
    assert run(chain, [21.0, 85.0, 85.0000001, -127.0]) == [21.0, None, 85.0000001, None]
    assert chain.dropped == {"filtered_out": 2}


def test_calibrate_goes_exactly_through_two_points():
    # The example: the sensor reads 0.0 in ice water (really 0.3) and 100.0 in boiling water (99.1).
    c = Calibrate(((0.0, 0.3), (100.0, 99.1)))
    assert run(Chain([c]), [0.0, 100.0, 50.0]) == pytest.approx([0.3, 99.1, 49.7])


def test_calibrate_fits_more_points_by_least_squares():
    # Worked by hand: mean x = 3, mean y = 4, sum (x-3)(y-4) = 6, sum (x-3)^2 = 10 -> slope 0.6, intercept 2.2.
    assert fit_line(((1, 2), (2, 4), (3, 5), (4, 4), (5, 5))) == pytest.approx((0.6, 2.2))


@given(st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)), min_size=2, max_size=2,
                unique_by=lambda p: round(p[0], 3)),
       st.floats(-1e3, 1e3))
def test_two_point_calibration_is_the_line_through_them(points, x):
    (x1, y1), (x2, y2) = points
    slope, intercept = fit_line(tuple(points))
    assert slope * x1 + intercept == pytest.approx(y1, abs=1e-6)
    assert slope * x2 + intercept == pytest.approx(y2, abs=1e-6)


@given(st.floats(-100, 100), st.floats(-100, 100), st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=20,
                                                               unique_by=lambda v: round(v, 3)))
def test_least_squares_recovers_a_line_the_points_lie_on(slope, intercept, xs):
    fitted = fit_line(tuple((x, slope * x + intercept) for x in xs))
    assert fitted == pytest.approx((slope, intercept), abs=1e-6)


def test_polynomial_round_and_invert():
    assert run(Chain([Polynomial((1.0, 2.0, 3.0))]), [2.0, -1.0]) == [17.0, 2.0]  # 1 + 2x + 3x²
    assert run(Chain([Round(1)]), [21.349, 21.351]) == [21.3, 21.4]
    assert run(Chain([Invert()]), [True, False]) == [False, True]


# --- windows ---------------------------------------------------------------------------------


def test_median_waits_for_a_full_window_then_ignores_a_spike():
    chain = Chain([Median(readings=3)])
    assert run(chain, [20.0, 20.2, 95.0, 20.1, 20.3]) == [None, None, 20.2, 20.2, 20.3]
    first = Chain([Median(readings=3)]).run(20.0, T0)
    assert isinstance(first.stopped, Held) and first.stopped.reason == "window not full: 1 of 3 readings"


def test_mean_min_max_over_a_count_window():
    values = [1.0, 2.0, 3.0, 10.0]
    assert run(Chain([Mean(readings=2)]), values) == [None, 1.5, 2.5, 6.5]
    assert run(Chain([Min(readings=3)]), values) == [None, None, 1.0, 2.0]
    assert run(Chain([Max(readings=3)]), values) == [None, None, 3.0, 10.0]


def test_a_one_minute_average_of_one_second_reads_is_pushed_once_a_minute():
    chain = Chain([Mean(seconds=60.0, send_every=SendEvery(seconds=60.0))])
    out = {}
    for i in range(181):
        trace = chain.run(float(i), T0 + i)  # the value is the second it was read at
        if trace.value is not None:
            out[i] = trace.value
    # Full after 60 s; then with the first reading of each new minute: the mean of the 60 s before.
    assert out == {60: pytest.approx(30.5), 120: pytest.approx(90.5), 180: pytest.approx(150.5)}
    assert chain.held["window_filling"] == 60 and chain.held["between_sends"] == 118


def test_send_every_n_readings():
    assert run(Chain([Median(readings=2, send_every=SendEvery(readings=3))]), [1.0] * 9) == [
        None, 1.0, None, None, 1.0, None, None, 1.0, None]


def test_ema():
    assert run(Chain([Ema(alpha=0.5)]), [10.0, 20.0, 30.0]) == [10.0, 15.0, 22.5]


def test_a_pushed_average_carries_the_timestamp_of_the_window_s_last_reading():
    m = mapping('filters = [{ mean = 3, send_every = 3 }]')
    out = [m.apply(reading(T0 + i, temperature=20.0 + i)) for i in range(6)]
    assert [o.timestamp_ms if o else None for o in out] == [None, None, int((T0 + 2) * 1000), None, None,
                                                             int((T0 + 5) * 1000)]
    assert out[2].values == {"temperature": 21.0} and out[5].values == {"temperature": 24.0}


# --- push policy -----------------------------------------------------------------------------


def test_throttle_allows_one_push_per_period():
    chain = Chain([Throttle(30.0)])
    assert run(chain, [1.0] * 7, step=10.0) == [1.0, None, None, 1.0, None, None, 1.0]
    assert chain.held == {"throttled": 4}


def test_debounce_lets_a_new_state_out_only_once_it_has_held():
    chain = Chain([Debounce(2.0)])
    states = [True, False, True, False, False, False, True]  # a chattering contact, then it settles
    assert run(chain, states, step=1.0) == [True, None, True, None, None, False, None]


def test_threshold_measures_from_what_was_pushed_not_from_what_it_let_through():
    # A throttle behind the threshold holds 20.6 back; the threshold must still measure from 20.0.
    chain = Chain([Threshold(0.5, math.inf), Throttle(15.0)])
    assert run(chain, [20.0, 20.6, 20.7, 20.7], step=10.0) == [20.0, None, 20.7, None]


@pytest.mark.parametrize("interval", [1, 5, 10, 15, 20, 30])
def test_a_threshold_without_heartbeat_still_pushes_before_the_cloud_s_two_minute_offline_rule(interval):
    m = mapping("threshold = 1.0", interval=interval)
    pushed = [i * interval for i in range(int(600 / interval))
              if m.apply(reading(T0 + i * interval + 0.004, temperature=20.0))]  # jitter: read 4 ms late
    gaps = [b - a for a, b in zip(pushed, pushed[1:])]
    assert max(gaps) <= DEFAULT_HEARTBEAT + interval and max(gaps) < 120


def test_heartbeat_false_means_never():
    m = mapping("threshold = 1.0\nheartbeat = false")
    assert [bool(m.apply(reading(T0 + i * 60, temperature=20.0))) for i in range(4)] == [True, False, False, False]


# --- chains in a mapping -------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.5, 200), st.floats(-50, 50)), min_size=1, max_size=30),
    st.floats(0.5, 2).filter(lambda v: v != 1), st.floats(-5, 5), st.integers(0, 3), st.floats(0.05, 5),
)
def test_the_older_keys_are_the_same_chain_as_their_filters(steps, scale, offset, digits, threshold):
    keys = mapping(f"scale = {scale!r}\noffset = {offset!r}\nround = {digits}\nthreshold = {threshold!r}",
                   interval=0.5)
    listed = mapping(f"filters = [{{ scale = {scale!r} }}, {{ offset = {offset!r} }}, {{ round = {digits} }}, "
                     f"{{ threshold = {threshold!r} }}]", interval=0.5)
    now = T0
    for gap, value in steps:
        now += gap
        a, b = keys.apply(reading(now, temperature=value)), listed.apply(reading(now, temperature=value))
        assert (a and a.values) == (b and b.values)


def test_check_order_calibrate_then_bounds_then_smoothing():
    m = mapping('offset = -0.5\nfilters = [{ valid = [-40, 85] }, { median = 3 }, { round = 1 }]')
    outs = [m.trace(reading(T0 + i, temperature=v)) for i, v in enumerate([20.0, 1e12, 21.0, 22.0])]
    steps = [(f.describe(), o) for f, o in outs[-1].traces["temperature"].steps]
    assert steps == [("offset -0.5", Passed(21.5)), ("valid -40, 85", Passed(21.5)),
                     ("median of 3 readings", Passed(20.5)), ("round 1", Passed(20.5))]
    assert isinstance(outs[1].traces["temperature"].stopped, Dropped)
    # 1e12 never reached the median: the window filled with 19.5, 20.5 and 21.5.
    assert m.counts() == {"temperature": {"held": {"window_filling": 2}, "dropped": {"out_of_range": 1}}}


def test_an_overflowing_filter_refuses_the_reading_naming_sensor_and_quantity():
    m = mapping("filters = [{ polynomial = [0, 0, 1e300] }]")
    with pytest.raises(BadValue, match="sensor 'greenhouse': quantity 'temperature': polynomial overflows"):
        m.apply(reading(T0, temperature=1e10))


def test_counts_stay_whole_numbers_after_a_mean():
    m = mapping("filters = [{ mean = 2 }]", metrics=("counter",))
    assert m.apply(reading(T0, counter=1)) is None
    assert m.apply(reading(T0 + 1, counter=4)).values == {"counter": 2}  # 2.5 rounds to even, as round() does


def test_derived_values_use_the_inputs_after_their_calibration_only():
    m = mapping('offset = 10.0\nfilters = [{ median = 3 }]', metrics=("temperature", "humidity"),
                extra='derived = ["dew_point"]\n')
    out = m.apply(reading(T0, temperature=20.0, humidity=50.0))
    from pibridge.transforms.derived.formulas import dew_point
    # The median is still filling, but the dew point is computed from the calibrated 30 °C at once.
    assert out.values["dew_point"] == pytest.approx(dew_point(30.0, 50.0))
    assert "temperature" not in out.values


def test_a_derived_value_outside_its_formula_is_dropped_counted_and_logged_once(caplog):
    m = mapping("", metrics=("temperature", "humidity"), extra='derived = ["dew_point"]\n')
    with caplog.at_level(logging.WARNING, "pibridge.mapping"):
        for i in range(3):
            out = m.apply(reading(T0 + i, temperature=70.0, humidity=50.0))
            assert "dew_point" not in out.values and out.values["temperature"] == 70.0
    assert m.counts() == {"dew_point": {"held": {}, "dropped": {"outside_formula_range": 3}}}
    assert sum("dew_point not computed" in r.getMessage() for r in caplog.records) == 1


def test_the_chain_example_in_the_configuration_docs_prints_what_it_says(capsys):
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text(encoding="utf-8")
    block = doc.split("runs\nvalues through them on their own:\n\n```python\n", 1)[1].split("```", 1)[0]
    exec(compile(block, "configuration.md", "exec"), {})
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == block.strip().splitlines()[-1].split("# ", 1)[1]


def test_a_dropped_input_still_feeds_its_derived_value_and_its_garbage_costs_nothing_else():
    m = mapping("drop = true", metrics=("humidity", "temperature"), extra='derived = ["dew_point"]\n')
    out = m.apply(reading(T0, temperature=20.0, humidity=50.0))
    assert set(out.values) == {"temperature", "dew_point"}
    out = m.apply(reading(T0 + 1, temperature=20.0, humidity=math.nan))
    assert out.values == {"temperature": 20.0}


def test_the_mock_s_absurd_readings_never_reach_the_agent_with_a_valid_range():
    """The mock's garbage_every mixes 1e12 and -1e12 (finite, so the kind check lets them by) with NaN,
    infinities and text (refused as the wrong kind): `valid` keeps the finite ones from the agent."""
    from pibridge.drivers import create

    driver = create("mock", "greenhouse", {"metrics": ["temperature"], "garbage_every": 2, "seed": 7})
    m = mapping("filters = [{ valid = [-40, 85] }]")
    pushed, refused = [], 0
    driver.open()
    try:
        for i in range(60):
            try:
                out = m.apply(reading(T0 + i, **driver.read()))
            except BadValue:
                refused += 1
                continue
            if out is not None:
                pushed.append(out.values["temperature"])
    finally:
        driver.close()
    dropped = m.counts()["temperature"]["dropped"]["out_of_range"]
    assert dropped > 0 and refused > 0
    assert len(pushed) == 30 and all(-40 <= v <= 85 for v in pushed)  # every good reading, nothing absurd
    assert dropped + refused == 30


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=40), st.integers(1, 8), st.integers(1, 4))
def test_count_windows_summarise_exactly_the_last_n_readings(values, n, every):
    """Each window's result is min/median/mean/max (stdlib) of the n readings before it, every *every*-th time."""
    import statistics

    kinds = {Median: statistics.median, Mean: statistics.fmean, Min: min, Max: max}
    for cls, expected in kinds.items():
        chain = Chain([cls(readings=n, send_every=SendEvery(readings=every))])
        sent = 0
        for i, value in enumerate(values):
            out = chain.run(value, T0 + i).value
            if i + 1 < n:
                assert out is None
                continue
            due = (i + 1 - n) % every == 0
            assert (out is not None) == due, (cls.key, i)
            if due:
                sent += 1
                assert out == pytest.approx(expected(values[i + 1 - n:i + 1]), rel=1e-12, abs=1e-9)
        assert sent == (max(0, len(values) - n + every) // every if len(values) >= n else 0)
