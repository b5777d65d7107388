"""TMP102 against a register emulator of the chip (datasheet SBOS397)."""

import pytest

from pibridge.drivers import DeviceNotFound, ReadFailed, ValueRejected, create
from pibridge.drivers.i2c import tmp102
from tests.support.chips.lm75 import LM75Chip
from tests.support.chips.tmp102 import TMP102Chip
from tests.support.i2c_faults import check_absent_io_error_and_unplugged
from tests.support.virtual_time import VirtualClock


@pytest.fixture
def clock(monkeypatch):
    return VirtualClock().install(monkeypatch, tmp102)


def opened(options=None):
    driver = create("tmp102", "pipe", options or {})
    driver.open()
    return driver


# SBOS397C, "Temperature Register": table 5 "12-Bit Temperature Data Format" and table 6 "13-Bit
# Temperature Data Format" (tables 7-2 and 7-3 in later revisions).
TWELVE_BIT = [(127.9375, 0x7FF), (100.0, 0x640), (80.0, 0x500), (75.0, 0x4B0), (50.0, 0x320), (25.0, 0x190),
              (0.25, 0x004), (0.0, 0x000), (-0.25, 0xFFC), (-25.0, 0xE70), (-55.0, 0xC90)]
THIRTEEN_BIT = [(150.0, 0x0960), (128.0, 0x0800), (127.9375, 0x07FF), (100.0, 0x0640), (25.0, 0x0190),
                (0.25, 0x0004), (0.0, 0x0000), (-0.25, 0x1FFC), (-25.0, 0x1E70), (-55.0, 0x1C90)]


@pytest.mark.parametrize("celsius, code", TWELVE_BIT)
def test_twelve_bit_table(bus, clock, celsius, code):
    chip = bus.add(TMP102Chip(0x48, celsius=celsius, clock=clock.monotonic))
    driver = opened()
    assert driver.read() == {"temperature": celsius}
    assert chip.temperature == code << 4  # left-justified, D15..D4
    driver.close()


@pytest.mark.parametrize("celsius, code", THIRTEEN_BIT)
def test_extended_mode_table(bus, clock, celsius, code):
    chip = bus.add(TMP102Chip(0x4B, celsius=celsius, clock=clock.monotonic))
    driver = opened({"address": 0x4B, "extended_range": True})
    assert driver.read() == {"temperature": celsius}
    assert chip.temperature == (code << 3) | 0x01  # D15..D3, bit 0 = 1 marks the 13-bit format
    driver.close()


def test_one_shot_from_shutdown(bus, clock):
    chip = bus.add(TMP102Chip(0x48, celsius=21.0, clock=clock.monotonic))
    driver = opened()
    # SD = 1, CR = 10 (4 Hz), EM = 0; then OS = 1 starts each conversion (SBOS397C "Configuration Register").
    assert chip.written[0] == (1, 0x0180)
    driver.read()
    chip.celsius = 22.5
    assert driver.read() == {"temperature": 22.5}
    assert chip.written[1:] == [(1, 0x8180), (1, 0x8180)]
    assert chip.conversions == 2
    driver.close()


def test_normal_format_ends_below_128_degrees(bus, clock):
    # 128 °C and above do not fit 12 bits: the register stays at 7FFh, the top of the normal range.
    bus.add(TMP102Chip(0x48, celsius=140.0, clock=clock.monotonic))
    driver = opened()
    assert driver.read() == {"temperature": 127.9375}
    driver.close()


def test_below_the_range_is_rejected(bus, clock):
    bus.add(TMP102Chip(0x48, celsius=-60.0, clock=clock.monotonic))
    driver = opened()
    with pytest.raises(ValueRejected, match="outside the chip's range"):
        driver.read()
    driver.close()


def test_an_lm75_is_not_a_tmp102(bus, clock):
    # No id register; an LM75's 8-bit configuration register does not read 11 in R1 R0.
    bus.add(LM75Chip(0x48, clock=clock.monotonic))
    with pytest.raises(DeviceNotFound, match="not a TMP102 .*no id register"):
        opened()


def test_a_conversion_that_never_ends_is_read_failed(bus, clock):
    chip = bus.add(TMP102Chip(0x48, clock=clock.monotonic))
    driver = opened()
    chip.conversion_s = 1.0
    with pytest.raises(ReadFailed, match="one-shot conversion did not finish within 35 ms"):
        driver.read()
    driver.close()


def test_absent_io_error_and_unplugged(bus, clock):
    check_absent_io_error_and_unplugged(
        bus,
        opened,
        lambda: bus.add(TMP102Chip(0x48, celsius=36.6, clock=clock.monotonic)),
        absent="0x48 on I2C bus 1.*i2cdetect",
        expected={"temperature": 36.5625},
    )


def test_address_choice():
    assert create("tmp102", "pipe", {"address": 0x4A}).address == 0x4A
    with pytest.raises(Exception, match="0x48 or 0x49 or 0x4a or 0x4b"):
        create("tmp102", "pipe", {"address": 0x4C})
