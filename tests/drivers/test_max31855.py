"""MAX31855 against an emulator of its 32-bit frame (Maxim datasheet 19-5793)."""

import pytest

from pibridge.drivers import DeviceNotFound, ReadFailed, ValueRejected, create
from pibridge.drivers.spi.max31855 import decode, signed
from tests.support.chips.max31855 import OC, SCG, SCV, MAX31855Chip
from tests.support.spidev_fake import spi_factory


@pytest.fixture
def spi(monkeypatch):
    return spi_factory(monkeypatch)


def opened(options=None):
    driver = create("max31855", "kiln", options or {})
    driver.open()
    return driver


@pytest.mark.parametrize(
    "bits, celsius",
    [
        # Table 4, "Thermocouple Temperature Data Format": D[31:18] for each temperature.
        ("0110 0100 0000 00", 1600.00),
        ("0011 1110 1000 00", 1000.00),
        ("0000 0110 0100 11", 100.75),
        ("0000 0001 1001 00", 25.00),
        ("0000 0000 0000 00", 0.00),
        ("1111 1111 1111 11", -0.25),
        ("1111 1111 1111 00", -1.00),
        ("1111 0000 0110 00", -250.00),
    ],
)
def test_table_4_thermocouple_codes(spi, bits, celsius):
    chip = spi.add(MAX31855Chip())
    chip.thermocouple_code = int(bits.replace(" ", ""), 2)
    driver = opened()
    assert driver.read()["temperature"] == celsius
    driver.close()


@pytest.mark.parametrize(
    "bits, celsius",
    [
        # Table 5, "Reference Junction Temperature Data Format": D[15:4] for each temperature.
        ("0110 0100 1001", 100.5625),
        ("0001 1001 0000", 25.0000),
        ("1111 1111 1111", -0.0625),
        ("1111 1111 0000", -1.0000),
        ("1110 1100 0000", -20.0000),
        ("1100 1001 0000", -55.0000),
    ],
)
def test_table_5_cold_junction_codes(spi, bits, celsius):
    chip = spi.add(MAX31855Chip())
    chip.internal_code = int(bits.replace(" ", ""), 2)
    driver = opened()
    assert driver.read()["cold_junction"] == celsius
    driver.close()


def test_table_5_top_code_is_beyond_the_operating_range(spi):
    """127 °C, Table 5's first row, is a valid code but above the chip's 125 °C rating: refused, not reported."""
    chip = spi.add(MAX31855Chip())
    driver = opened()
    chip.internal_code = 0b0111_1111_0000
    with pytest.raises(ValueRejected, match="127.0 °C is outside"):
        driver.read()
    driver.close()


def test_sign_extension_of_both_fields():
    assert signed(0x3FFF, 14) == -1 and signed(0x1FFF, 14) == 8191 and signed(0x800, 12) == -2048
    frame = 0b1111_0000_0110_00 << 18 | 0b1110_1100_0000 << 4
    assert decode(frame) == (-250.0, -20.0)


@pytest.mark.parametrize(
    "fault, words",
    [(OC, "open circuit"), (SCG, "shorted to GND"), (SCV, "shorted to VCC"), (OC | SCV, "open circuit.*VCC")],
)
def test_fault_bits_name_the_fault(spi, fault, words):
    """Table 3: D16 is set with any of SCV (D2), SCG (D1) or OC (D0)."""
    chip = spi.add(MAX31855Chip(thermocouple=200.0))
    driver = opened()
    chip.faults = fault
    with pytest.raises(ReadFailed, match=words):
        driver.read()
    chip.faults = 0
    assert driver.read()["temperature"] == 200.0
    driver.close()


def test_no_chip_reads_all_ones_with_the_reserved_bits_set(spi):
    with pytest.raises(DeviceNotFound) as info:
        opened()
    assert "D17/D3" in str(info.value) and "no MAX31855 answers" in str(info.value)


def test_no_chip_with_miso_pulled_low_reads_all_zeros(spi):
    spi.floating = 0x00
    with pytest.raises(DeviceNotFound, match="all zeros"):
        opened()


def test_chip_unplugged_mid_run(spi):
    chip = spi.add(MAX31855Chip())
    driver = opened()
    chip.present = False
    with pytest.raises(ReadFailed, match="stopped answering"):
        driver.read()
    driver.close()


def test_wrong_mode_is_an_option_error():
    with pytest.raises(Exception, match="SPI mode 0"):
        create("max31855", "kiln", {"mode": 1})
