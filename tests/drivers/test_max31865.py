"""MAX31865 against an emulator of its registers (Maxim datasheet 19-6478), and the RTD conversion."""

import pytest

from pibridge.drivers import DeviceNotFound, OptionError, ReadFailed, ValueRejected, create
from pibridge.drivers.spi.max31865 import resistance_at, temperature_of
from tests.support.chips.max31865 import MAX31865Chip
from tests.support.spidev_fake import spi_factory


@pytest.fixture
def spi(monkeypatch):
    return spi_factory(monkeypatch)


def opened(options=None, sensor="boiler"):
    driver = create("max31865", sensor, options or {})
    driver.open()
    return driver


#: Table 9, "Temperature Example for PT100 with 400Ω RREF": temperature, RTD resistance,
#: RTD data registers 01h-02h (hex), ADC code (dec).
TABLE_9 = [
    (-200, 18.52, 0x0BDA, 1517),
    (-150, 39.72, 0x196C, 3254),
    (-100, 60.26, 0x2690, 4936),
    (-50, 80.31, 0x3366, 6579),
    (-10, 96.09, 0x3D7E, 7871),
    (0, 100.00, 0x4000, 8192),
    (20, 107.79, 0x44FC, 8830),
    (50, 119.40, 0x4C6A, 9781),
    (100, 138.51, 0x58A4, 11346),
    (150, 157.33, 0x64B0, 12888),
    (200, 175.86, 0x708C, 14406),
    (250, 194.10, 0x7C3A, 15901),
    (300, 212.05, 0x87B6, 17371),
    (400, 247.09, 0x9E24, 20242),
    (550, 297.49, 0xBE64, 24370),
]


@pytest.mark.parametrize("celsius, ohms, register, code", TABLE_9)
def test_table_9_codes_through_the_driver(spi, celsius, ohms, register, code):
    assert register >> 1 == code  # the ADC code sits in D15..D1, D0 is the fault bit (Table 4)
    chip = spi.add(MAX31865Chip(reference=400.0))
    chip.adc_code = code
    driver = opened({"reference_resistor": 400.0})
    values = driver.read()
    driver.close()
    # One ADC step is 400 / 2^15 = 0.0122 Ω (0.03 °C); the table rounds to 0.01 Ω.
    assert values["resistance"] == pytest.approx(ohms, abs=0.0122)
    assert values["temperature"] == pytest.approx(celsius, abs=0.04)


@pytest.mark.parametrize("celsius, ohms, register, code", TABLE_9)
def test_callendar_van_dusen_both_ways_against_table_9(celsius, ohms, register, code):
    assert resistance_at(celsius, 100.0) == pytest.approx(ohms, abs=0.006)
    assert temperature_of(ohms, 100.0) == pytest.approx(celsius, abs=0.015)


def test_below_zero_solution_satisfies_the_full_equation():
    for ohms in (18.52, 40.0, 71.3, 99.99):
        t = temperature_of(ohms, 100.0)
        assert resistance_at(t, 100.0) == pytest.approx(ohms, abs=1e-9)


def test_pt1000_with_4300_ohm_reference(spi):
    # IEC 60751: a PT1000 is 1385.1 Ω at 100 °C (ten times the PT100's 138.51 Ω in Table 9).
    spi.add(MAX31865Chip(resistance=1385.1, reference=4300.0))
    driver = opened({"rtd_nominal": 1000.0, "reference_resistor": 4300.0})
    assert driver.read()["temperature"] == pytest.approx(100.0, abs=0.05)
    driver.close()


def test_configuration_for_wires_and_filter(spi):
    chip = spi.add(MAX31865Chip(resistance=110.0))
    driver = opened({"wires": 3, "filter_hz": 60})
    driver.read()
    # 3-wire: D4; 60 Hz: D0 = 0.  The bias is off again between conversions.
    assert chip.registers[0] == 0x10
    driver.close()
    chip = spi.add(MAX31865Chip(resistance=110.0), device=1)
    driver = opened({"wires": 4, "device": 1})
    driver.read()
    assert chip.registers[0] == 0x01  # 4-wire (D4 = 0), 50 Hz filter (D0 = 1)
    assert chip.stale_reads == 0 and chip.conversions == 1
    driver.close()


def test_each_read_is_one_biased_one_shot_conversion(spi):
    chip = spi.add(MAX31865Chip(resistance=100.0))
    driver = opened()
    writes = lambda: [t for t in chip.transfers if t[0] == 0x80]  # noqa: E731
    before = len(writes())
    assert driver.read()["temperature"] == pytest.approx(0.0, abs=0.04)
    configs = [t[1] for t in writes()[before:]]
    assert configs == [0x81, 0xA1, 0x01]  # VBIAS on, then VBIAS + 1-shot, then VBIAS off
    assert chip.conversions == 1
    driver.close()


def test_open_rtd_sets_the_high_threshold_fault_which_is_decoded_and_cleared(spi):
    chip = spi.add(MAX31865Chip(resistance=100.0))
    driver = opened()
    chip.resistance = 1e9  # an open RTD reads full scale
    with pytest.raises(ReadFailed) as info:
        driver.read()
    assert "above the high threshold" in str(info.value) and "open" in str(info.value)
    assert chip.registers[7] == 0  # the driver wrote fault clear
    chip.resistance = 119.40
    assert driver.read()["temperature"] == pytest.approx(50.0, abs=0.05)
    driver.close()


def test_shorted_rtd_and_cable_faults(spi):
    chip = spi.add(MAX31865Chip(resistance=100.0))
    driver = opened()
    chip.resistance = 0.5
    with pytest.raises(ReadFailed, match="below the low threshold"):
        driver.read()
    assert chip.detection_cycles == 1  # the driver ran the fault-detection cycle to test the cable
    chip.resistance = 100.0
    chip.overvoltage = True
    with pytest.raises(ReadFailed, match="over- or undervoltage"):
        driver.read()
    chip.overvoltage = False
    assert driver.read()["temperature"] == pytest.approx(0.0, abs=0.04)


def test_an_open_force_lead_is_found_by_the_detection_cycle(spi):
    """An open FORCE- lead reads full scale (high threshold) and the cycle adds its cable bits."""
    chip = spi.add(MAX31865Chip(resistance=100.0))
    driver = opened({"wires": 4})
    chip.resistance = 1e9
    chip.cable_faults = 0x20 | 0x08
    with pytest.raises(ReadFailed) as info:
        driver.read()
    message = str(info.value)
    assert "above the high threshold" in message and "REFIN- > 0.85 x VBIAS" in message and "RTDIN-" in message
    assert chip.registers[7] == 0
    chip.resistance, chip.cable_faults = 107.79, 0
    assert driver.read()["temperature"] == pytest.approx(20.0, abs=0.04)  # Table 9: 107.79 Ω
    driver.close()


def test_thresholds_are_programmed_for_the_rtd_range(spi):
    chip = spi.add(MAX31865Chip(resistance=100.0))
    driver = opened()
    high = (chip.registers[3] << 8 | chip.registers[4]) >> 1
    low = (chip.registers[5] << 8 | chip.registers[6]) >> 1
    # Equation 2 (code = R / R_REF x 2^15) at 5 °C beyond each end of the equation's -200..850 °C.
    assert high == round(resistance_at(855, 100) / 430 * 32768)
    assert low == round(resistance_at(-205, 100) / 430 * 32768)
    driver.close()


def test_no_chip_answers(spi):
    with pytest.raises(DeviceNotFound) as info:
        opened()
    assert "read back 0xff" in str(info.value) and "no MAX31865 answers" in str(info.value)


def test_wrong_reference_resistor_gives_an_out_of_range_value(spi):
    # A PT1000 read as if it were a PT100 on a 4300 Ω board: 1000 Ω "is" 1800+ °C.
    spi.add(MAX31865Chip(resistance=1000.0, reference=4300.0))
    driver = opened({"reference_resistor": 4300.0, "rtd_nominal": 100.0})
    with pytest.raises((ValueRejected, ReadFailed)):
        driver.read()
    driver.close()


@pytest.mark.parametrize(
    "options, key",
    [({"wires": 5}, "wires"), ({"filter_hz": 55}, "filter_hz"), ({"reference_resistor": 90.0}, "reference_resistor"),
     ({"rtd_nominal": 0.0}, "rtd_nominal"), ({"mode": 0}, "mode")],
)
def test_bad_options(options, key):
    with pytest.raises(OptionError) as info:
        create("max31865", "boiler", options)
    assert info.value.key == key
