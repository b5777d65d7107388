"""MCP3008 and MCP3004 against a bit-level emulator of the chip (Microchip datasheet DS21295)."""

import pytest

from pibridge.drivers import DeviceNotFound, OptionError, ReadFailed, ValueRejected, create
from tests.support.chips.mcp3008 import MCP3008Chip
from tests.support.spidev_fake import spi_factory


@pytest.fixture
def spi(monkeypatch):
    return spi_factory(monkeypatch)


def opened(name="mcp3008", options=None):
    driver = create(name, "adc", options or {})
    driver.open()
    return driver


def test_figure_6_1_bytes_on_the_wire(spi):
    """Figure 6-1 (8-bit segments): the MCU sends 0000 0001 (start bit), SGL/DIFF D2 D1 D0 X X X X,
    then a don't-care byte; the chip answers ? ? ? ? ? 0 B9 B8 in the second byte and B7..B0 in the third."""
    chip = spi.add(MCP3008Chip(volts=[0.0, 0.0, 0.0, 0.0, 0.0, 3.3 * (0x2A5 + 0.5) / 1024, 0.0, 0.0]))
    driver = opened(options={"channels": ["CH5"]})
    values = driver.read()
    assert chip.transfers[-1] == [0b0000_0001, 0b1101_0000, 0x00]  # SGL = 1, D2 D1 D0 = 101
    assert values["ch5"] == pytest.approx(0x2A5 * 3.3 / 1024, abs=1e-6)
    driver.close()


def test_reply_bits_as_in_figure_6_1(spi):
    """The stand-in's reply for code 0x2A5 = 10 1010 0101 has figure 6-1's layout: the first byte and the
    start of the second are high impedance (floating high), then the null bit 0, B9 = 1, B8 = 0; B7..B0."""
    chip = MCP3008Chip(volts=[3.3 * (0x2A5 + 0.5) / 1024] * 8)
    assert chip.exchange([0x01, 0x80, 0x00]) == [0xFF, 0b1111_1010, 0b1010_0101]


@pytest.mark.parametrize(
    "vin, code",
    [
        # Section 4.0, Equation 4-1: digital output code = 1024 x VIN / VREF (VREF = 3.3 V here)
        (0.0, 0),
        (3.3 / 1024, 1),
        (1.65, 512),
        (3.3 * 1022 / 1024, 1022),
    ],
)
def test_equation_4_1(spi, vin, code):
    spi.add(MCP3008Chip(volts=[vin] * 8))
    driver = opened(options={"channels": ["CH0"]})
    assert driver.read()["ch0"] == pytest.approx(code * 3.3 / 1024, abs=1e-6)
    driver.close()


def test_differential_pairs_use_table_5_2(spi):
    """Table 5-2: SGL/DIFF = 0 with D2 D1 D0 = 000 is CH0 = IN+ / CH1 = IN-, 001 is CH0 = IN- / CH1 = IN+,
    011 is CH2 = IN- / CH3 = IN+ ... 110 is CH6 = IN+ / CH7 = IN-."""
    chip = spi.add(MCP3008Chip(volts=[2.0, 0.5, 1.0, 3.0, 0, 0, 1.2, 0.2], vref=3.3))
    driver = opened(options={"channels": {"bridge": "CH0-CH1", "reverse": "CH1-CH0", "up": "CH3-CH2", "six": "CH6-CH7"}})
    values = driver.read()
    assert [bits for bits in (t[1] for t in chip.transfers[-4:])] == [0x00, 0x10, 0x30, 0x60]
    assert values["bridge"] == pytest.approx(1.5, abs=3.3 / 1024)
    assert values["reverse"] == 0.0  # IN+ below IN-: the chip reads 0
    assert values["up"] == pytest.approx(2.0, abs=3.3 / 1024)
    assert values["six"] == pytest.approx(1.0, abs=3.3 / 1024)
    assert [q.name for q in driver.quantities()] == ["bridge", "reverse", "up", "six"]
    driver.close()


def test_vref_option_scales_the_volts(spi):
    spi.add(MCP3008Chip(volts=[1.25] * 8, vref=2.5))
    driver = opened(options={"vref": 2.5, "channels": ["CH2"]})
    assert driver.read() == {"ch2": pytest.approx(1.25, abs=1e-9)}
    driver.close()


def test_default_channels_are_all_eight_and_four(spi):
    spi.add(MCP3008Chip(volts=[0.1 * n for n in range(8)]))
    spi.add(MCP3008Chip(volts=[0.2 * n for n in range(4)], channels=4), device=1)
    eight = opened()
    four = opened("mcp3004", {"device": 1})
    assert list(eight.read()) == [f"ch{n}" for n in range(8)]
    assert four.read()["ch3"] == pytest.approx(0.6, abs=3.3 / 1024)
    eight.close()
    four.close()


def test_full_scale_is_refused(spi):
    spi.add(MCP3008Chip(volts=[3.4] * 8))
    driver = opened(options={"channels": ["CH7"]})
    with pytest.raises(ValueRejected, match="full scale.*CH7|CH7.*full scale"):
        driver.read()
    driver.close()


def test_no_chip_is_found_by_the_missing_null_bit(spi):
    """Nothing on CE0: MISO floats high, so the null bit before B9 reads 1."""
    with pytest.raises(DeviceNotFound) as info:
        opened()
    message = str(info.value)
    assert "/dev/spidev0.0" in message and "no MCP3008 answers" in message and "GPIO9 (pin 21)" in message


def test_chip_unplugged_mid_run(spi):
    chip = spi.add(MCP3008Chip(volts=[1.0] * 8))
    driver = opened(options={"channels": ["CH0"]})
    chip.present = False
    with pytest.raises(ReadFailed, match="null bit"):
        driver.read()
    chip.present = True
    assert driver.read()["ch0"] == pytest.approx(1.0, abs=3.3 / 1024)
    driver.close()


@pytest.mark.parametrize(
    "name, options, key",
    [
        ("mcp3008", {"channels": ["CH8"]}, "channels"),
        ("mcp3008", {"channels": ["CH1-CH2"]}, "channels"),  # not a pair the chip has
        ("mcp3004", {"channels": ["CH4"]}, "channels"),
        ("mcp3008", {"channels": []}, "channels"),
        ("mcp3008", {"vref": 0}, "vref"),
        ("mcp3008", {"vref": 6.0}, "vref"),
    ],
)
def test_bad_options(name, options, key):
    with pytest.raises(OptionError) as info:
        create(name, "adc", options)
    assert info.value.key == key
