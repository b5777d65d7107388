"""ADS1015 (and the ADS1x15 family it shares with the ADS1115) against a register emulator."""

import pytest

from pibridge.drivers import DeviceNotFound, OptionError, ValueRejected, create, driver_class
from tests.support.chips.ads1015 import ADS1015Chip
from tests.support.hardware_chips import ADS1115Chip
from tests.support.i2c_faults import check_absent_io_error_and_unplugged


def opened(options=None, name="ads1015"):
    driver = create(name, "adc", options or {})
    driver.open()
    return driver


@pytest.mark.parametrize(
    "gain, lsb",
    # ADS1015 datasheet SBAS473, section 8.3.3, table "Full-Scale Range and Corresponding LSB Size":
    # ±6.144 V 3 mV, ±4.096 V 2 mV, ±2.048 V 1 mV, ±1.024 V 0.5 mV, ±0.512 V 0.25 mV, ±0.256 V 0.125 mV.
    [(2 / 3, 3e-3), (1, 2e-3), (2, 1e-3), (4, 0.5e-3), (8, 0.25e-3), (16, 0.125e-3)],
)
def test_full_scale_table(bus, gain, lsb):
    chip = bus.add(ADS1015Chip(0x48, inputs=(1000 * lsb, -250 * lsb, 0.0, 0.0)))
    driver = opened({"gain": gain, "channels": ["A0", "A1"], "data_rate": 3300})
    values = driver.read()
    driver.close()
    assert values["a0"] == pytest.approx(1000 * lsb, rel=1e-9)
    assert values["a1"] == pytest.approx(-250 * lsb, rel=1e-9)
    assert chip.conversions == 2


@pytest.mark.parametrize(
    "word, volts",
    # SBAS473 section 8.5.3 (data format), table "Output Codes Versus Input Signals" at ±4.096 V:
    # +FS/2^11 -> 0010h, 0 -> 0000h, -FS/2^11 -> FFF0h (12 bits, left-justified).
    [(0x0010, 0.002), (0x0000, 0.0), (0xFFF0, -0.002)],
)
def test_left_justified_output_codes(bus, word, volts):
    chip = bus.add(ADS1015Chip(0x48))
    chip.code = lambda config: word
    driver = opened({"channels": ["A0"]})
    assert driver.read() == {"a0": volts}
    driver.close()


@pytest.mark.parametrize("word", [0x7FF0, 0x8000])  # +FS (2^11 - 1)/2^11 and -FS: the clipped ends
def test_end_of_range_is_rejected(bus, word):
    chip = bus.add(ADS1015Chip(0x48))
    chip.code = lambda config: word
    driver = opened({"channels": ["A0"], "gain": 2})
    with pytest.raises(ValueRejected, match="end of the ±2.048 V range.*smaller gain"):
        driver.read()
    driver.close()


def test_data_rate_bits_and_default(bus):
    chip = bus.add(ADS1015Chip(0x49, inputs=(1.0, 0.0, 2.0, 0.5)))
    driver = opened({"address": 0x49, "channels": {"level": "A0", "bridge": "A2-A3"}, "data_rate": 3300})
    values = driver.read()
    driver.close()
    assert values == {"level": pytest.approx(1.0, abs=2e-3), "bridge": pytest.approx(1.5, abs=2e-3)}
    # OS=1, MUX=100, PGA=001, MODE=1, DR=110 (3300 SPS, SBAS473 section 8.6.3), COMP_QUE=11
    assert chip.written[0] == (0x01, 0b1_100_001_1_110_00011)
    assert chip.written[1] == (0x01, 0b1_011_001_1_110_00011)
    default = create("ads1015", "adc")
    # DR=100 is the chip's reset value (1600 SPS), so the default config word equals the ADS1115's at 128 SPS.
    assert default.config["data_rate"] == 1600 and default.config_word(0b100) == 0xC383


def test_rates_of_the_other_chip_are_refused():
    with pytest.raises(OptionError, match="128, 250, 490, 920, 1600, 2400, 3300") as info:
        create("ads1015", "adc", {"data_rate": 860})
    assert info.value.key == "data_rate"
    with pytest.raises(OptionError, match="8, 16, 32"):
        create("ads1115", "adc", {"data_rate": 1600})


def test_both_drivers_take_the_same_keys():
    ads1015, ads1115 = driver_class("ads1015"), driver_class("ads1115")
    assert set(ads1015.options) == set(ads1115.options) == {"bus", "address", "channels", "gain", "data_rate"}
    assert ads1115.options["data_rate"].default == 128
    assert ads1015.addresses == ads1115.addresses == (0x48, 0x49, 0x4A, 0x4B)


def test_an_ads1115_on_the_board_is_named(bus):
    # A 16-bit result has bits 3:0 set, which an ADS1015 never returns
    # (SBAS473, conversion register, section 8.6.2).
    bus.add(ADS1115Chip(0x48, inputs=(1.2345, 0, 0, 0)))
    driver = opened({"channels": ["A0"]})
    with pytest.raises(DeviceNotFound, match='ADS1115, not an ADS1015; use driver = "ads1115"'):
        driver.read()
    driver.close()


def test_absent_io_error_and_unplugged(bus):
    check_absent_io_error_and_unplugged(
        bus,
        lambda: opened({"address": 0x4B, "channels": ["A0"]}),
        lambda: bus.add(ADS1015Chip(0x4B, inputs=(0.5, 0, 0, 0))),
        absent="0x4b on I2C bus 1.*i2cdetect",
        expected={"a0": 0.5},
    )
