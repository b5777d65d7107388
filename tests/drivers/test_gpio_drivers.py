"""GPIO drivers on gpiozero's MockFactory pins: the tests drive the pins, the drivers are untouched."""

import time
import warnings

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockTriggerPin

from pibridge.drivers import DeviceNotFound, DriverError, OptionError, ReadFailed, ValueRejected, create
from tests.support.notifications import Notifications


@pytest.fixture
def pins():
    previous = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    yield factory
    factory.reset()
    Device.pin_factory = previous


# --- digital input -----------------------------------------------------------------------------


def test_contact_with_pull_up_is_closed_when_pulled_low(pins, drivers):
    driver = drivers("contact", {"pin": 17})
    pin = pins.pin(17)
    assert pin.pull == "up"
    assert driver.read() == {"closed": False}
    pin.drive_low()
    assert driver.read() == {"closed": True}
    pin.drive_high()
    assert driver.read() == {"closed": False}
    assert pin.bounce == 0.05
    assert driver.resources() == ["gpio:17"]


def test_motion_uses_pull_down_and_is_active_high(pins, drivers):
    driver = drivers("motion", {"pin": 4})
    pin = pins.pin(4)
    assert pin.pull == "down"
    assert driver.read() == {"motion": False}
    pin.drive_high()
    assert driver.read() == {"motion": True}


def test_active_low_flips_the_meaning(pins, drivers):
    driver = drivers("digital_input", {"pin": 22, "pull_up": True, "active_low": False, "quantity": "door_open"})
    pin = pins.pin(22)
    assert driver.read() == {"door_open": True}  # pulled up, contact open
    pin.drive_low()
    assert driver.read() == {"door_open": False}


def test_floating_input_needs_and_uses_active_low(pins, drivers):
    with pytest.raises(OptionError) as info:
        create("digital_input", "x", {"pin": 5, "pull_up": "off"})
    assert info.value.key == "active_low"
    driver = drivers("digital_input", {"pin": 5, "pull_up": "off", "active_low": True})
    pin = pins.pin(5)
    assert pin.pull == "floating"
    pin.drive_high()
    assert driver.read() == {"active": False}
    pin.drive_low()
    assert driver.read() == {"active": True}


def test_every_edge_notifies_and_is_reported_in_order(pins, drivers):
    driver = drivers("contact", {"pin": 27})
    notifications = Notifications()
    driver.watch(notifications)
    pin = pins.pin(27)
    pin.drive_low()  # closed
    pin.drive_high()  # open again before the bridge got to read
    assert notifications.wait_for(2, timeout=2.0)
    # The short closure is not lost: the first read reports it, the second the current state.
    assert driver.read() == {"closed": True}
    assert notifications.wait_for(3, timeout=2.0)  # asks for another read: one more edge is waiting
    assert driver.read() == {"closed": False}
    assert driver.read() == {"closed": False}


def test_pin_in_use_is_a_clear_error(pins, drivers):
    drivers("contact", {"pin": 17})
    with pytest.raises(DeviceNotFound, match="GPIO17"):
        create("motion", "second", {"pin": 17}).open()


def test_bad_pin_numbers_are_option_errors():
    with pytest.raises(OptionError, match="BCM"):
        create("contact", "x", {"pin": 40})
    with pytest.raises(OptionError) as info:
        create("contact", "x", {})
    assert info.value.key == "pin"


def test_read_after_close_is_a_driver_error(pins):
    driver = create("contact", "x", {"pin": 6})
    driver.open()
    driver.close()
    driver.close()
    with pytest.raises(DriverError, match="GPIO6"):
        driver.read()


# --- pulse counter -----------------------------------------------------------------------------


def pulse(pin, n):
    for _ in range(n):
        pin.drive_low()
        pin.drive_high()


def test_rain_gauge_counts_total_and_rate(pins, drivers):
    before_open = time.monotonic()
    driver = drivers("pulse_counter", {"pin": 23, "factor": 0.2794, "unit": "mm", "rate_per": "h"})
    after_open = time.monotonic()
    assert [(q.name, q.unit) for q in driver.quantities()] == [("count", "count"), ("total", "mm"), ("rate", "mm/h")]
    pin = pins.pin(23)
    pulse(pin, 10)
    before_read = time.monotonic()
    values = driver.read()
    after_read = time.monotonic()
    assert values["count"] == 10
    assert values["total"] == pytest.approx(2.794)
    # The rate covers open -> read; bracket it with the times measured around both.
    assert 2.794 * 3600 / (after_read - before_open) <= values["rate"] <= 2.794 * 3600 / (before_read - after_open)
    pulse(pin, 5)
    values = driver.read()
    assert values["count"] == 15 and values["total"] == pytest.approx(15 * 0.2794)


def test_counter_rate_in_hertz_and_zero_when_idle(pins, drivers):
    driver = drivers("pulse_counter", {"pin": 24})
    assert [(q.name, q.unit) for q in driver.quantities()] == [("count", "count"), ("rate", "Hz")]
    pulse(pins.pin(24), 3)
    assert driver.read()["count"] == 3
    assert driver.read() == {"count": 3, "rate": 0.0}


def test_counter_rejects_units_without_a_rate():
    with pytest.raises(OptionError, match="not a known unit"):
        create("pulse_counter", "x", {"pin": 2, "unit": "°C"})
    with pytest.raises(OptionError):
        create("pulse_counter", "x", {"pin": 2, "rate_per": "day"})


def test_flow_meter_litres_per_minute(pins, drivers):
    driver = drivers("pulse_counter", {"pin": 25, "factor": 1 / 450, "unit": "L", "rate_per": "min"})
    assert [q.unit for q in driver.quantities()] == ["count", "L", "L/min"]
    pulse(pins.pin(25), 450)
    assert driver.read()["total"] == pytest.approx(1.0)


# --- HC-SR04 -----------------------------------------------------------------------------------


def hcsr04(pins, drivers, echo_time, **options):
    echo = pins.pin(21)
    pins.pin(20, pin_class=MockTriggerPin, echo_pin=echo, echo_time=echo_time)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return drivers("hcsr04", {"trigger": 20, "echo": 21, **options})


def test_hcsr04_distance_from_echo_time(pins, drivers):
    driver = hcsr04(pins, drivers, echo_time=0.01, samples=3)
    distance = driver.read()["distance"]
    # 10 ms there and back at 343.42 m/s (20 °C) is 171.7 cm; the mock pin's thread sleeps add a little.
    assert 165 <= distance <= 220
    assert driver.resources() == ["gpio:20", "gpio:21"]


def test_hcsr04_nothing_in_range_is_rejected(pins, drivers):
    driver = hcsr04(pins, drivers, echo_time=0.03, samples=1, max_distance=2.0)
    with pytest.raises(ValueRejected, match="nothing within"):
        driver.read()


def test_hcsr04_no_echo_is_read_failed(pins, drivers):
    pins.pin(21)
    driver = drivers("hcsr04", {"trigger": 20, "echo": 21, "samples": 1})  # plain pin: no echo ever
    with pytest.raises(ReadFailed, match="no echo"):
        driver.read()


# --- CPU temperature ---------------------------------------------------------------------------


def test_cpu_temperature_reads_millidegrees(tmp_path):
    zone = tmp_path / "temp"
    zone.write_text("48312\n")
    driver = create("cpu_temperature", "pi", {"path": str(zone)})
    driver.open()
    assert driver.read() == {"temperature": 48.31}
    zone.write_text("garbage\n")
    with pytest.raises(ReadFailed, match="millidegrees"):
        driver.read()
    zone.write_text("250000\n")
    with pytest.raises(ValueRejected):
        driver.read()
    zone.unlink()
    with pytest.raises(ReadFailed, match="does not exist"):
        driver.read()


def test_cpu_temperature_missing_zone(tmp_path):
    driver = create("cpu_temperature", "pi", {"path": str(tmp_path / "nothing")})
    with pytest.raises(DeviceNotFound, match="thermal"):
        driver.open()


def _has_gpio():
    import importlib.util
    import os

    # gpiozero's own "native" factory works on any Raspberry Pi, even without a pin library.
    return os.path.exists("/proc/device-tree/model") or any(
        importlib.util.find_spec(m) for m in ("lgpio", "RPi", "pigpio")
    )


@pytest.mark.skipif(_has_gpio(), reason="this machine has GPIO access")
def test_no_pin_library_names_the_pin_and_suggests_mock(monkeypatch):
    previous = Device.pin_factory
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    Device.pin_factory = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(DeviceNotFound, match=r"'door' \(GPIO17\): no GPIO access.*mock"):
                create("contact", "door", {"pin": 17}).open()
    finally:
        Device.pin_factory = previous
