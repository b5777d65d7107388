"""TSL2561 against a register emulator of the chip (datasheet TAOS059, "Calculating Lux")."""

import pytest

from pibridge import cli
from pibridge.drivers import DeviceNotFound, OptionError, ValueRejected, create
from pibridge.drivers.i2c import tsl2561
from tests.support.chips.tsl2561 import TSL2561Chip
from tests.support.i2c_faults import check_absent_io_error_and_unplugged
from tests.support.virtual_time import VirtualClock


@pytest.fixture
def clock(monkeypatch):
    return VirtualClock().install(monkeypatch, tsl2561)


def opened(options=None):
    driver = create("tsl2561", "hall", options or {})
    driver.open()
    return driver


def empirical(ch0, ch1, package):
    """The datasheet's empirical formula ("Calculating Lux"), for 16x gain and 402 ms."""
    ratio = ch1 / ch0
    if package == "T":
        rows = [(0.50, lambda: 0.0304 * ch0 - 0.062 * ch0 * ratio**1.4), (0.61, lambda: 0.0224 * ch0 - 0.031 * ch1),
                (0.80, lambda: 0.0128 * ch0 - 0.0153 * ch1), (1.30, lambda: 0.00146 * ch0 - 0.00112 * ch1)]
    else:
        rows = [(0.52, lambda: 0.0315 * ch0 - 0.0593 * ch0 * ratio**1.4), (0.65, lambda: 0.0229 * ch0 - 0.0291 * ch1),
                (0.80, lambda: 0.0157 * ch0 - 0.0180 * ch1), (1.30, lambda: 0.00338 * ch0 - 0.00260 * ch1)]
    return next((f() for upper, f in rows if ratio <= upper), 0.0)


@pytest.mark.parametrize(
    "ident, infrared, expected",
    [
        # T/FN/CL package, 16x gain, 402 ms, CH0 = 1000 counts; the "Simplified Lux Calculation"
        # coefficient table gives lux = B x CH0 - M x CH1 for the CH1/CH0 range:
        (0x50, 200, 0.0325 * 1000 - 0.0440 * 200),  # 0.125 < 0.2 <= 0.250: 23.7 lx
        (0x50, 550, 0.0224 * 1000 - 0.0310 * 550),  # 0.50 < 0.55 <= 0.61: 5.35 lx
        (0x50, 700, 0.0128 * 1000 - 0.0153 * 700),  # 0.61 < 0.7 <= 0.80: 2.09 lx
        (0x50, 1000, 0.00146 * 1000 - 0.00112 * 1000),  # 0.80 < 1.0 <= 1.30: 0.34 lx
        (0x50, 1500, 0.0),  # above 1.30: infrared only
        # CS package (id 1xh):
        (0x10, 200, 0.0337 * 1000 - 0.0430 * 200),  # 0.130 < 0.2 <= 0.260: 25.1 lx
        (0x10, 600, 0.0229 * 1000 - 0.0291 * 600),  # 0.52 < 0.6 <= 0.65: 5.44 lx
    ],
)
def test_coefficient_table_known_answers(bus, clock, ident, infrared, expected):
    bus.add(TSL2561Chip(0x39, full=1000, infrared=infrared, ident=ident, clock=clock.monotonic))
    driver = opened({"gain": 16})
    assert driver.read() == {"illuminance": pytest.approx(expected, abs=1e-4)}
    assert driver.package == ("T" if ident == 0x50 else "CS")
    driver.close()


@pytest.mark.parametrize("package", ["T", "CS"])
@pytest.mark.parametrize("ratio", [0.02, 0.1, 0.2, 0.3, 0.45, 0.55, 0.7, 0.9, 1.2])
def test_the_table_follows_the_empirical_formula(package, ratio):
    # Below CH1/CH0 = 0.5 the table approximates the power law piecewise; above it the two agree exactly.
    got = tsl2561.lux(10000, 10000 * ratio, package)
    assert got == pytest.approx(empirical(10000, 10000 * ratio, package), rel=0.02)


@pytest.mark.parametrize(
    "gain, ms, timing",
    # TIMING register: GAIN bit 4 (1 = 16x), INTEG bits 1:0 = 00 13.7 ms, 01 101 ms, 10 402 ms.
    [(1, 402.0, 0x02), (1, 101.0, 0x01), (16, 101.0, 0x11), (16, 13.7, 0x10)],
)
def test_counts_are_scaled_to_the_table_basis(bus, clock, gain, ms, timing):
    # The chip collects 11/322 or 81/322 of the 402 ms counts, and 1/16 of them at 1x gain; the
    # driver scales back (datasheet lux code: CHSCALE_TINT0 = 322/11, CHSCALE_TINT1 = 322/81, x16).
    chip = bus.add(TSL2561Chip(0x29, full=50000, infrared=10000, clock=clock.monotonic))
    driver = opened({"address": 0x29, "gain": gain, "integration_time": ms})
    value = driver.read()["illuminance"]
    assert chip.registers[0x1] == timing
    assert value == pytest.approx(0.0325 * 50000 - 0.0440 * 10000, rel=0.01 if gain == 16 or ms == 402 else 0.02)
    driver.close()


def test_powers_up_for_one_integration_only(bus, clock):
    chip = bus.add(TSL2561Chip(0x39, clock=clock.monotonic))
    driver = opened({"gain": 16})
    driver.read()
    assert chip.integrations == 1
    assert chip.registers[0x0] == 0x00  # powered down after the read
    driver.close()


@pytest.mark.parametrize(
    "ms, counts",
    # Full-scale counts (datasheet notes to the electrical characteristics): 5047, 37177, 65535.
    [(13.7, 5047), (101.0, 37177), (402.0, 65535)],
)
def test_saturation_is_rejected(bus, clock, ms, counts):
    bus.add(TSL2561Chip(0x39, full=10_000_000, infrared=100, clock=clock.monotonic))
    driver = opened({"gain": 16, "integration_time": ms})
    with pytest.raises(ValueRejected, match=f"saturated \\({counts} counts, full scale {counts}.*use gain = 1"):
        driver.read()
    driver.close()


def test_dark_is_zero(bus, clock):
    bus.add(TSL2561Chip(0x39, full=0, infrared=0, clock=clock.monotonic))
    driver = opened()
    assert driver.read() == {"illuminance": 0.0}
    driver.close()


def test_wrong_chip_id(bus, clock):
    bus.add(TSL2561Chip(0x39, ident=0x92, clock=clock.monotonic))
    with pytest.raises(DeviceNotFound, match="reads 0x92.*not a TSL2561"):
        opened()


def test_timing_written_again_after_a_brown_out(bus, clock):
    chip = bus.add(TSL2561Chip(0x39, clock=clock.monotonic))
    driver = opened({"gain": 16, "integration_time": 101})
    first = driver.read()
    chip.registers[0x1] = 0x02  # power-on default: 1x, 402 ms
    assert driver.read() == first
    assert chip.registers[0x1] == 0x11
    driver.close()


def test_options():
    with pytest.raises(OptionError, match="1 or 16") as info:
        create("tsl2561", "hall", {"gain": 4})
    assert info.value.key == "gain"
    with pytest.raises(OptionError, match="13.7, 101 or 402") as info:
        create("tsl2561", "hall", {"integration_time": 200})
    assert info.value.key == "integration_time"
    assert create("tsl2561", "hall", {"integration_time": 13.7}).integration_ms == 13.7


def test_absent_io_error_and_unplugged(bus, clock):
    check_absent_io_error_and_unplugged(
        bus, opened, lambda: bus.add(TSL2561Chip(0x39, clock=clock.monotonic)), absent="0x39 on I2C bus 1.*i2cdetect"
    )


def test_scan_tells_it_from_a_tsl2591(bus, capsys):
    from tests.support.chips.tsl2591 import TSL2591Chip

    bus.add(TSL2561Chip(0x39))
    bus.add(TSL2591Chip(0x29))
    cli.main(["scan"])
    out = capsys.readouterr().out
    assert '0x39  is: TSL2561 (driver = "tsl2561") (checked its id register)' in out
    assert '0x29  is: TSL2591 (driver = "tsl2591") (checked its id register)' in out
