"""LM75 / LM75B against a register emulator of the chip."""

import pytest

from pibridge.drivers import DeviceNotFound, OptionError, ValueRejected, create
from pibridge.drivers.i2c import lm75
from tests.support.chips.lm75 import LM75Chip
from tests.support.hardware_chips import ADS1115Chip
from tests.support.i2c_faults import check_absent_io_error_and_unplugged
from tests.support.virtual_time import VirtualClock


@pytest.fixture
def clock(monkeypatch):
    return VirtualClock().install(monkeypatch, lm75)


def opened(options=None):
    driver = create("lm75", "boiler", options or {})
    driver.open()
    return driver


@pytest.mark.parametrize(
    "celsius, word",
    # LM75 datasheet (National/TI SNIS153), table "Temperature-to-Digital Output": 9 bits, D15..D7:
    # +125 °C 0FAh, +25 °C 032h, +0.5 °C 001h, 0 °C 000h, -0.5 °C 1FFh, -25 °C 1CEh, -55 °C 192h.
    [(125.0, 0x0FA << 7), (25.0, 0x032 << 7), (0.5, 0x001 << 7), (0.0, 0x000), (-0.5, 0x1FF << 7),
     (-25.0, 0x1CE << 7), (-55.0, 0x192 << 7)],
)
def test_nine_bit_table(bus, clock, celsius, word):
    chip = bus.add(LM75Chip(0x48, celsius=celsius, bits=9, clock=clock.monotonic))
    driver = opened()
    assert driver.read() == {"temperature": celsius}
    assert chip.temperature_word() == word
    driver.close()


@pytest.mark.parametrize(
    "celsius, word",
    # NXP LM75B datasheet, "Temperature register", table "Temp register value": 11 bits, D15..D5:
    # +125 °C 3E8h, +25 °C 0C8h, +0.125 °C 001h, 0 °C 000h, -0.125 °C 7FFh, -25 °C 738h,
    # -54.875 °C 649h, -55 °C 648h.
    [(125.0, 0x3E8 << 5), (25.0, 0x0C8 << 5), (0.125, 0x001 << 5), (0.0, 0), (-0.125, 0x7FF << 5),
     (-25.0, 0x738 << 5), (-54.875, 0x649 << 5), (-55.0, 0x648 << 5)],
)
def test_eleven_bit_table(bus, clock, celsius, word):
    chip = bus.add(LM75Chip(0x4F, celsius=celsius, bits=11, clock=clock.monotonic))
    driver = opened({"address": 0x4F, "bits": 11})
    assert driver.read() == {"temperature": celsius}
    assert chip.temperature_word() == word
    driver.close()


def test_nine_bits_ignore_the_undefined_low_bits(bus, clock):
    # D6..D0 are undefined on a 9-bit LM75; they must not move the value.
    bus.add(LM75Chip(0x48, celsius=23.5, bits=9, filler=0x7F, clock=clock.monotonic))
    driver = opened()
    assert driver.read() == {"temperature": 23.5}
    driver.close()


def test_waits_for_the_first_conversion_and_writes_normal_mode(bus, clock):
    chip = bus.add(LM75Chip(0x48, celsius=31.0, clock=clock.monotonic))
    chip.config = 0x01  # left in shutdown: reads 0 °C until a conversion after wake-up has run
    driver = opened()
    assert driver.read() == {"temperature": 31.0}
    assert chip.written == [(1, 0x00)]
    assert sum(clock.sleeps) == pytest.approx(0.3)
    driver.close()


def test_out_of_range_is_rejected(bus, clock):
    chip = bus.add(LM75Chip(0x48, celsius=126.0, clock=clock.monotonic))
    driver = opened()
    with pytest.raises(ValueRejected, match=r"126 °C is outside the chip's range \(-55 to 125 °C\)"):
        driver.read()
    chip.celsius = 20.0
    assert driver.read() == {"temperature": 20.0}
    driver.close()


class ReadOnlyConfig(LM75Chip):
    """A chip whose register 1 does not keep what is written to it."""

    def read(self, length):
        return bytes([0x18] * length) if self.pointer == 1 else super().read(length)


def test_another_chip_at_the_address_is_refused(bus, clock):
    # No id register.  An ADS1115's config register (8583h at reset) has bit 7 set, reserved on an
    # LM75: refused before anything is written to it.
    ads = bus.add(ADS1115Chip(0x49))
    with pytest.raises(DeviceNotFound, match="reads 0x85; .*not an LM75 .*no id register"):
        opened({"address": 0x49})
    assert ads.written == []
    bus.add(ReadOnlyConfig(0x4A, clock=clock.monotonic))
    with pytest.raises(DeviceNotFound, match="reads 0x18 after writing 0x00; .*not an LM75"):
        opened({"address": 0x4A})


def test_bits_option():
    with pytest.raises(OptionError, match="9 .* or 11") as info:
        create("lm75", "boiler", {"bits": 12})
    assert info.value.key == "bits"


def test_absent_io_error_and_unplugged(bus, clock):
    check_absent_io_error_and_unplugged(
        bus,
        opened,
        lambda: bus.add(LM75Chip(0x48, celsius=-3.5, clock=clock.monotonic)),
        absent="0x48 on I2C bus 1.*i2cdetect",
        expected={"temperature": -3.5},
    )
