"""VEML7700 against a register emulator of the chip (datasheet doc. 84286, application note doc. 84323)."""

import pytest

from pibridge import cli
from pibridge.drivers import DeviceNotFound, OptionError, ValueRejected, create
from pibridge.drivers.i2c import veml7700
from tests.support.chips.veml7700 import VEML7700Chip
from tests.support.i2c_faults import check_absent_io_error_and_unplugged
from tests.support.virtual_time import VirtualClock

#: Application note "Designing the VEML7700 Into an Application", table "Resolution and maximum
#: detection range": lx per count for each (gain, integration time in ms).
RESOLUTION = {
    (2, 800): 0.0036, (1, 800): 0.0072, (0.25, 800): 0.0288, (0.125, 800): 0.0576,
    (2, 400): 0.0072, (1, 400): 0.0144, (0.25, 400): 0.0576, (0.125, 400): 0.1152,
    (2, 200): 0.0144, (1, 200): 0.0288, (0.25, 200): 0.1152, (0.125, 200): 0.2304,
    (2, 100): 0.0288, (1, 100): 0.0576, (0.25, 100): 0.2304, (0.125, 100): 0.4608,
    (2, 50): 0.0576, (1, 50): 0.1152, (0.25, 50): 0.4608, (0.125, 50): 0.9216,
    (2, 25): 0.1152, (1, 25): 0.2304, (0.25, 25): 0.9216, (0.125, 25): 1.8432,
}
#: ALS_CONF_0 fields (datasheet, command register format): ALS_GAIN bits 12:11, ALS_IT bits 9:6.
GAIN_BITS = {1: 0b00, 2: 0b01, 0.125: 0b10, 0.25: 0b11}
IT_BITS = {25: 0b1100, 50: 0b1000, 100: 0b0000, 200: 0b0001, 400: 0b0010, 800: 0b0011}


def app_note_correction(lux):
    """Application note page 5: a x lux^4 + b x lux^3 + c x lux^2 + d x lux."""
    a, b, c, d = 6.0135e-13, -9.3924e-9, 8.1488e-5, 1.0023
    return a * lux**4 + b * lux**3 + c * lux**2 + d * lux


@pytest.fixture
def clock(monkeypatch):
    return VirtualClock().install(monkeypatch, veml7700)


@pytest.fixture
def chip(bus, clock):
    return bus.add(VEML7700Chip(clock=clock.monotonic))


def opened(options=None):
    driver = create("veml7700", "window", options or {})
    driver.open()
    return driver


def test_correction_polynomial_worked_example():
    # Application note page 5: "a x (1500 lux)^4 + b x (1500 lux)^3 + c x (1500 lux)^2 + d x (1500 lux) = 1658 lux".
    assert veml7700.corrected(1500.0) == pytest.approx(1658, abs=0.5)
    assert app_note_correction(1500.0) == pytest.approx(1658, abs=0.5)


@pytest.mark.parametrize("gain, ms", sorted(RESOLUTION))
def test_resolution_table_and_config_bits(chip, gain, ms):
    chip.linear_lux = 500.5 * RESOLUTION[gain, ms]  # 500 counts
    driver = opened({"gain": gain, "integration_time": ms})
    assert driver.read() == {"illuminance": pytest.approx(500 * RESOLUTION[gain, ms], abs=1e-4)}
    # Programmed in shutdown (ALS_SD = 1), then started with the same settings.
    word = GAIN_BITS[gain] << 11 | IT_BITS[ms] << 6
    assert chip.written[-2:] == [(0, word | 1), (0, word)]
    assert chip.results == [(gain, ms, 500)]
    driver.close()


@pytest.mark.parametrize("gain", ["1/4", "0.25", 0.25])
def test_gain_written_as_a_fraction_or_a_number(chip, gain):
    chip.linear_lux = 800.5 * 0.2304
    driver = opened({"gain": gain})
    assert driver.read() == {"illuminance": pytest.approx(800 * 0.2304, abs=1e-4)}
    driver.close()


def test_correction_above_1000_lx_in_fixed_mode(chip):
    chip.linear_lux = 3255.5 * 0.4608  # 3255 counts at gain 1/8, 100 ms: 1499.9 lx before correction
    driver = opened({"gain": 0.125})
    assert driver.read()["illuminance"] == pytest.approx(app_note_correction(3255 * 0.4608), abs=1e-3)
    assert driver.read()["illuminance"] == pytest.approx(1658, abs=0.5)
    driver.close()
    uncorrected = opened({"gain": 0.125, "correction": False})
    assert uncorrected.read()["illuminance"] == pytest.approx(3255 * 0.4608, abs=1e-3)
    uncorrected.close()


def test_fixed_mode_reads_the_running_chip(chip, clock):
    chip.linear_lux = 40.0
    driver = opened({"gain": 2, "integration_time": 200})
    assert driver.read() == {"illuminance": pytest.approx(2777 * 0.0144, abs=1e-4)}
    assert driver.min_interval() == pytest.approx(0.25)
    chip.linear_lux = 20.0
    clock.sleep(driver.min_interval())
    assert driver.read() == {"illuminance": pytest.approx(1388 * 0.0144, abs=1e-4)}
    driver.close()


def test_auto_range_in_the_dark_raises_gain_then_integration_time(chip, clock):
    # Application note, flow chart: start at gain 1/8, 100 ms; while counts <= 100 raise the gain
    # (1/4, 1, 2), then the integration time (200, 400, 800 ms); no correction below 1000 lx.
    chip.linear_lux = 0.5
    driver = opened()
    assert driver.read() == {"illuminance": pytest.approx(138 * 0.0036, abs=1e-4)}
    assert chip.results == [(0.125, 100, 1), (0.25, 100, 2), (1, 100, 8), (2, 100, 17), (2, 200, 34),
                            (2, 400, 69), (2, 800, 138)]
    assert chip.words[0] & 1  # shut down between reads
    # Each step: 2.5 ms start-up and 1.25 integration times: 4 x 127.5 ms + 252.5 + 502.5 + 1002.5 ms.
    assert sum(clock.sleeps) == pytest.approx(2.2675)
    driver.close()


def test_auto_range_in_bright_light_shortens_the_integration_and_corrects(chip):
    # Above 10000 counts the flow chart shortens the integration time (50, then 25 ms).
    chip.linear_lux = 5000.0
    driver = opened()
    assert driver.read() == {"illuminance": pytest.approx(app_note_correction(5425 * 0.9216), abs=1e-3)}
    assert chip.results == [(0.125, 100, 10850), (0.125, 50, 5425)]
    driver.close()


def test_auto_range_in_total_darkness_is_zero(chip):
    chip.linear_lux = 0.0
    driver = opened()
    assert driver.read() == {"illuminance": 0.0}
    assert chip.results[-1] == (2, 800, 0)
    driver.close()


def test_saturation_is_rejected(chip):
    # 65535 counts x 0.0036 lx = 236 lx, the application note's maximum at gain 2, 800 ms.
    chip.linear_lux = 300.0
    driver = opened({"gain": 2, "integration_time": 800})
    with pytest.raises(ValueRejected, match=r"saturated \(above 236 lx\): use gain = \"auto\""):
        driver.read()
    driver.close()
    # 65535 x 1.8432 lx = 120796 lx at gain 1/8, 25 ms: beyond even the auto-range.
    chip.linear_lux = 200000.0
    chip.results.clear()
    driver = opened()
    with pytest.raises(ValueRejected, match=r"above 120796 lx\) even at gain 1/8 and 25 ms"):
        driver.read()
    assert [r[:2] for r in chip.results] == [(0.125, 100), (0.125, 50), (0.125, 25)]
    driver.close()


def test_wrong_chip_id(bus, clock):
    bus.add(VEML7700Chip(ident=0x0000, clock=clock.monotonic))
    with pytest.raises(DeviceNotFound, match="id register reads 0x0000.*not a VEML7700"):
        opened()


def test_options():
    with pytest.raises(OptionError, match='"auto", 1/8, 1/4, 1 or 2') as info:
        create("veml7700", "window", {"gain": 4})
    assert info.value.key == "gain"
    with pytest.raises(OptionError, match="25, 50, 100, 200, 400 or 800") as info:
        create("veml7700", "window", {"gain": 1, "integration_time": 300})
    assert info.value.key == "integration_time"
    with pytest.raises(OptionError, match="picks the integration time") as info:
        create("veml7700", "window", {"integration_time": 200})
    assert info.value.key == "integration_time"


def test_absent_io_error_and_unplugged(bus, clock):
    check_absent_io_error_and_unplugged(
        bus,
        opened,
        lambda: bus.add(VEML7700Chip(linear_lux=10.0, clock=clock.monotonic)),
        absent="0x10 on I2C bus 1.*i2cdetect",
    )


def test_scan_names_it_by_its_id(bus, capsys):
    bus.add(VEML7700Chip())
    cli.main(["scan"])
    assert '0x10  is: VEML7700 (driver = "veml7700") (checked its id register)' in capsys.readouterr().out
