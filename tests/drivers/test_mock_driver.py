"""The mock driver: believable values, reproducible by seed, and faults on demand."""

import math
import threading
import time

import pytest

from pibridge.drivers import DeviceNotFound, DriverError, OptionError, ReadFailed, create, driver_class
from pibridge.readings import UNITS

NOON = 1_700_000_000.0 - (1_700_000_000.0 % 86400) + 12 * 3600  # 12:00 UTC on some day


def make(**options):
    options.setdefault("day_seconds", 1000.0)  # UTC-independent phase for the tests
    driver = create("mock", "test-mock", options)
    driver.clock = lambda: NOON
    return driver


def read_n(driver, n):
    out = []
    for _ in range(n):
        out.append(driver.read())
    return out


def test_registered_under_its_config_name():
    assert driver_class("mock").name == "mock"


def test_every_known_quantity_has_a_canonical_unit_and_a_plausible_value():
    names = [q.name for q in driver_class("mock").provides]
    driver = make(metrics=names, seed=1)
    driver.open()
    try:
        for q in driver.quantities():
            assert q.unit in UNITS
        values = driver.read()
    finally:
        driver.close()
    assert set(values) == set(names)
    assert -40 <= values["temperature"] <= 85
    assert 0 <= values["humidity"] <= 100
    assert 950 <= values["pressure"] <= 1060
    assert isinstance(values["contact"], bool) and isinstance(values["motion"], bool)
    assert isinstance(values["counter"], int) and not isinstance(values["counter"], bool)
    for name, value in values.items():
        if not isinstance(value, bool):
            assert math.isfinite(value), name


def test_same_seed_gives_same_values_and_other_seed_differs():
    def run(seed):
        driver = make(metrics=["temperature", "humidity", "counter", "contact"], seed=seed)
        driver.open()
        try:
            return read_n(driver, 20)
        finally:
            driver.close()

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_reopen_starts_the_sequence_again():
    driver = make(seed=3)
    driver.open()
    first = read_n(driver, 5)
    driver.close()
    driver.open()
    assert read_n(driver, 5) == first
    driver.close()


def test_temperature_follows_a_daily_cycle_warm_afternoon_cool_night():
    driver = create("mock", "cycle", {"metrics": ["temperature", "illuminance"], "seed": 1, "day_seconds": 86400.0})
    offset = time.localtime(NOON).tm_gmtoff
    local_midnight = NOON - 12 * 3600 - offset
    driver.open()
    try:
        driver.clock = lambda: local_midnight + 15 * 3600
        afternoon = driver.read()
        driver.clock = lambda: local_midnight + 3 * 3600
        night = driver.read()
    finally:
        driver.close()
    assert afternoon["temperature"] > night["temperature"] + 5
    assert night["illuminance"] == 0
    assert afternoon["illuminance"] > 5000


def test_values_drift_and_carry_noise_but_stay_in_range():
    driver = make(metrics=["humidity", "pressure"], seed=11)
    driver.open()
    values = read_n(driver, 500)
    driver.close()
    pressures = [v["pressure"] for v in values]
    assert len(set(pressures)) > 100
    assert all(0 <= v["humidity"] <= 100 for v in values)
    assert max(pressures) - min(pressures) > 0.2


def test_counter_never_goes_down():
    driver = make(metrics=["counter"], seed=5)
    driver.open()
    counts = [v["counter"] for v in read_n(driver, 50)]
    driver.close()
    assert counts == sorted(counts)
    assert counts[-1] > counts[0]


def test_fail_every_nth_read_raises_read_failed_naming_the_sensor():
    driver = make(fail_every=3, seed=1)
    driver.open()
    outcomes = []
    for _ in range(9):
        try:
            driver.read()
            outcomes.append("ok")
        except ReadFailed as exc:
            assert "test-mock" in str(exc) and "fail_every" in str(exc)
            outcomes.append("fail")
    driver.close()
    assert outcomes == ["ok", "ok", "fail"] * 3


def test_garbage_every_nth_read_returns_impossible_values():
    driver = make(metrics=["temperature", "humidity"], garbage_every=2, seed=2)
    driver.open()
    reads = read_n(driver, 40)
    driver.close()
    good, bad = reads[0::2], reads[1::2]

    def sane(v):
        return isinstance(v, float) and math.isfinite(v) and abs(v) < 1e6

    assert all(sane(v) for r in good for v in r.values())
    assert all(not sane(v) for r in bad for v in r.values())


def test_hang_blocks_until_close_and_then_fails():
    driver = make(hang_every=1, hang_seconds=60.0)
    driver.open()
    result = {}

    def reader():
        try:
            driver.read()
            result["outcome"] = "value"
        except ReadFailed as exc:
            result["outcome"] = str(exc)

    thread = threading.Thread(target=reader)
    started = time.monotonic()
    thread.start()
    thread.join(0.2)
    assert thread.is_alive(), "the read should hang"
    driver.close()
    thread.join(5)
    assert not thread.is_alive()
    assert "hang" in result["outcome"]
    assert time.monotonic() - started < 10


def test_hang_ends_after_hang_seconds():
    driver = make(hang_every=2, hang_seconds=0.05)
    driver.open()
    driver.read()
    started = time.monotonic()
    assert "temperature" in driver.read()
    assert time.monotonic() - started >= 0.05
    driver.close()


def test_absent_device_fails_to_open():
    driver = make(absent=True)
    with pytest.raises(DeviceNotFound, match="test-mock"):
        driver.open()
    driver.close()


def test_read_without_open_is_a_clear_error():
    with pytest.raises(DriverError, match="before open"):
        make().read()


@pytest.mark.parametrize(
    "options, key",
    [
        ({"metrics": ["temprature"]}, "metrics"),
        ({"metrics": []}, "metrics"),
        ({"metrics": ["humidity", "humidity"]}, "metrics"),
        ({"fail_every": -1}, "fail_every"),
        ({"fail_every": "3"}, "fail_every"),
        ({"hang_seconds": 0}, "hang_seconds"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_options_name_the_key(options, key):
    with pytest.raises(OptionError) as info:
        create("mock", "bad", options)
    assert info.value.key == key


def test_unknown_quantity_error_lists_the_known_ones():
    with pytest.raises(OptionError, match="humidity"):
        create("mock", "bad", {"metrics": ["temprature"]})


def test_event_interval_flips_flags_and_notifies():
    driver = make(metrics=["contact"], event_interval=0.01, seed=1)
    driver.open()
    notified = threading.Event()
    driver.watch(notified.set)
    assert notified.wait(5)
    driver.close()


def test_without_flags_watch_starts_nothing():
    driver = make(metrics=["temperature"], event_interval=0.01)
    driver.open()
    before = threading.active_count()
    driver.watch(lambda: None)
    assert threading.active_count() == before
    driver.close()


def test_min_interval_option():
    assert make(min_interval=2.5).min_interval() == 2.5
    assert make().min_interval() == 0.0
