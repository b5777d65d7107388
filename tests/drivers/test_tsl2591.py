"""TSL2591 against a register emulator of the chip (datasheet DS000338)."""

import pytest

from pibridge import cli
from pibridge.drivers import DeviceNotFound, OptionError, ValueRejected, create
from pibridge.drivers.i2c import tsl2591
from tests.support.chips.tsl2591 import TSL2591Chip
from tests.support.i2c_faults import check_absent_io_error_and_unplugged
from tests.support.virtual_time import VirtualClock


@pytest.fixture
def clock(monkeypatch):
    return VirtualClock().install(monkeypatch, tsl2591)


def opened(options=None):
    driver = create("tsl2591", "sky", options or {})
    driver.open()
    return driver


# ams publishes no worked example for the TSL2591.  The expected values are its lux equation, as
# used in ams' reference code, evaluated by hand: CPL = ATIME x AGAIN / 408,
# lux = max((C0 - 1.64 x C1) / CPL, (0.59 x C0 - 0.86 x C1) / CPL, 0).
@pytest.mark.parametrize(
    "full, infrared, expected",
    [
        # medium gain (25x), 100 ms: CPL = 2500 / 408.  C0 = 3000, C1 = 500:
        # lux1 = (3000 - 820) x 408 / 2500 = 355.776; lux2 = (1770 - 430) x 0.1632 = 218.688.
        (120, 20, 355.776),
        # C0 = 1000, C1 = 600: lux1 = (1000 - 984) x 0.1632 = 2.6112; lux2 = (590 - 516) x 0.1632 = 12.0768.
        (40, 24, 12.0768),
        # C0 = 1000, C1 = 900: both negative (nearly all infrared): 0 lx.
        (40, 36, 0.0),
    ],
)
def test_lux_equation(bus, clock, full, infrared, expected):
    chip = bus.add(TSL2591Chip(full=full, infrared=infrared, clock=clock.monotonic))
    driver = opened()
    assert driver.read() == {"illuminance": pytest.approx(expected, abs=1e-4)}
    assert chip.registers[0x01] == 0b01_0_000  # AGAIN = 01 (medium), ATIME = 000 (100 ms)
    assert chip.registers[0x00] == 0  # powered down after the read
    driver.close()


@pytest.mark.parametrize(
    "gain, ms, again, atime",
    [("medium", 100, 0b01, 0b000), ("medium", 300, 0b01, 0b010), ("high", 200, 0b10, 0b001), ("max", 100, 0b11, 0b000)],
)
def test_same_light_same_lux_at_every_setting(bus, clock, gain, ms, again, atime):
    # The chip scales both channels by gain x time; CPL scales the same way, so the lux stay put:
    # (C0 - 1.64 C1) x 408 / (ms x gain) with C0 = 3 x gain x ms / 100, C1 = C0 / 5
    # = (3 - 0.984) x 4.08 = 8.22528 lx, up to the rounding of the counts.
    chip = bus.add(TSL2591Chip(full=3.0, infrared=0.6, clock=clock.monotonic))
    driver = opened({"gain": gain, "integration_time": ms})
    assert driver.read()["illuminance"] == pytest.approx(8.22528, rel=0.01)
    assert chip.registers[0x01] == again << 4 | atime
    driver.close()


def test_low_gain(bus, clock):
    # low gain (1x), 600 ms: CPL = 600 / 408; C0 = 3000, C1 = 600: (3000 - 984) x 408 / 600 = 1370.88 lx.
    bus.add(TSL2591Chip(full=500, infrared=100, clock=clock.monotonic))
    driver = opened({"gain": "low", "integration_time": 600})
    assert driver.read() == {"illuminance": pytest.approx(1370.88, abs=1e-4)}
    driver.close()


def test_waits_for_the_integration(bus, clock):
    chip = bus.add(TSL2591Chip(full=100, infrared=10, clock=clock.monotonic))
    driver = opened({"integration_time": 400})
    driver.read()
    assert chip.integrations == 1
    assert sum(clock.sleeps) >= 0.4
    driver.close()


@pytest.mark.parametrize("full, infrared, channel", [(1480, 100, "full-spectrum"), (2000, 1500, "full-spectrum")])
def test_saturation_is_rejected(bus, clock, full, infrared, channel):
    # medium gain, 100 ms: 1480 x 25 = 37000 counts, over the reference code's 36863 limit.
    bus.add(TSL2591Chip(full=full, infrared=infrared, clock=clock.monotonic))
    driver = opened()
    with pytest.raises(ValueRejected, match=f"the {channel} channel is saturated.*lower gain"):
        driver.read()
    driver.close()


def test_infrared_saturation_alone_is_rejected(bus, clock):
    # high gain, 200 ms: C0 = 10 x 428 x 2 = 8560 counts, C1 = 85600, clipped at 65535.
    bus.add(TSL2591Chip(full=10, infrared=100, clock=clock.monotonic))
    driver = opened({"gain": "high", "integration_time": 200})
    with pytest.raises(ValueRejected, match="the infrared channel is saturated"):
        driver.read()
    driver.close()


def test_wrong_chip_id(bus, clock):
    bus.add(TSL2591Chip(chip_id=0x00, clock=clock.monotonic))
    with pytest.raises(DeviceNotFound, match='reads 0x00, not 0x50.*not a TSL2591.*"tsl2561"'):
        opened()


def test_reprograms_after_a_brown_out(bus, clock):
    chip = bus.add(TSL2591Chip(full=40, infrared=8, clock=clock.monotonic))
    driver = opened()
    first = driver.read()
    assert first == {"illuminance": pytest.approx((1000 - 1.64 * 200) * 408 / 2500, abs=1e-4)}
    chip.write(bytes([0xA1, 0x80]))  # SRESET: control back to 00h (low gain, 100 ms)
    assert driver.read() == first
    assert chip.registers[0x01] == 0x10
    driver.close()


def test_options():
    with pytest.raises(OptionError, match="low, medium, high or max") as info:
        create("tsl2591", "sky", {"gain": "huge"})
    assert info.value.key == "gain"
    with pytest.raises(OptionError, match="100, 200, 300, 400, 500 or 600") as info:
        create("tsl2591", "sky", {"integration_time": 150})
    assert info.value.key == "integration_time"


def test_absent_io_error_and_unplugged(bus, clock):
    check_absent_io_error_and_unplugged(
        bus, opened, lambda: bus.add(TSL2591Chip(clock=clock.monotonic)), absent="0x29 on I2C bus 1.*i2cdetect"
    )


def test_scan_names_it_by_its_id(bus, capsys):
    bus.add(TSL2591Chip())
    cli.main(["scan"])
    assert '0x29  is: TSL2591 (driver = "tsl2591") (checked its id register)' in capsys.readouterr().out
