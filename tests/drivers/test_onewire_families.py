"""The 1-Wire thermometer families from their scratchpad bytes, against a fake sysfs tree.

Raw values and temperatures are the datasheets' own tables; the kernel's ``t=`` figure in each
file is what w1_therm would print, so a driver that used it instead would fail these tests.
"""

import pytest

from pibridge.drivers import ReadFailed, ValueRejected, create
from tests.support.hardware_w1 import (
    DS18B20_POWER_ON,
    W1Tree,
    ds18s20_scratchpad,
    max31850_scratchpad,
    scratchpad,
    w1_slave_text,
)


@pytest.fixture
def w1(tmp_path):
    return W1Tree(tmp_path / "devices")


def read(w1, device_id, text):
    w1.add(device_id, text)
    driver = create("ds18b20", "probe", {"device_id": device_id, "sysfs_root": str(w1.root)})
    driver.open()
    try:
        return driver.read()["temperature"]
    finally:
        driver.close()


@pytest.mark.parametrize(
    "raw, celsius",
    [
        # DS18B20 datasheet, Table 1 "Temperature/Data Relationship".
        (0x07D0, 125.0),
        (0x0191, 25.0625),
        (0x00A2, 10.125),
        (0x0008, 0.5),
        (0x0000, 0.0),
        (0xFFF8, -0.5),
        (0xFF5E, -10.125),
        (0xFE6F, -25.0625),
        (0xFC90, -55.0),
    ],
)
def test_ds18b20_datasheet_table_at_full_resolution(w1, raw, celsius):
    pad = scratchpad(raw=raw)
    text = w1_slave_text(pad)
    assert read(w1, "28-0316a2790d2e", text) == celsius


def test_the_kernels_truncated_figure_is_not_used(w1):
    # 0x0191 is 25.0625 °C; w1_therm prints t=25062.
    text = w1_slave_text(scratchpad(raw=0x0191))
    assert "t=25062" in text
    assert read(w1, "28-0316a2790d2e", text) == 25.0625


@pytest.mark.parametrize("config, expected", [(0x1F, 25.0), (0x3F, 25.0), (0x5F, 25.125), (0x7F, 25.1875)])
def test_undefined_low_bits_of_lower_resolutions_are_cleared(w1, config, expected):
    # DS18B20 datasheet, "Operation - Measuring Temperature": at 11, 10 and 9 bits, bit 0, bits 1-0
    # and bits 2-0 are undefined.  0x0193 is 25.1875 °C at 12 bits.
    assert read(w1, "28-0316a2790d2e", w1_slave_text(scratchpad(raw=0x0193, config=config))) == expected


def test_a_real_85_degrees_after_a_conversion_is_reported(w1):
    # 0550h is +85 °C (DS18B20 datasheet, Table 1); after a real conversion byte 6 is no longer the 0Ch of power-up.
    pad = scratchpad(raw=0x0550)
    assert pad[6] != 0x0C
    assert read(w1, "28-0316a2790d2e", w1_slave_text(pad)) == 85.0


def test_85_degrees_with_the_power_on_byte_6_is_refused(w1):
    with pytest.raises(ValueRejected, match="power-on value.*byte 6"):
        read(w1, "28-0316a2790d2e", w1_slave_text(DS18B20_POWER_ON))


def test_an_empty_w1_slave_is_read_failed(w1):
    # w1_therm returns nothing when its own conversion check fails.
    with pytest.raises(ReadFailed, match="kernel returned no reading"):
        read(w1, "28-0316a2790d2e", "")


@pytest.mark.parametrize(
    "raw, count_remain, celsius",
    [
        # DS18S20 datasheet, "Temperature/Data Relationship" table: 0032h = +25.0 °C, FFCEh = -25.0 °C,
        # 00AAh = +85.0 °C at 0.5 °C steps; "Operation - Measuring Temperature":
        # T = TEMP_READ - 0.25 + (16 - COUNT_REMAIN) / 16.
        (0x0032, 0x0C, 25.0),
        (0x0032, 0x0A, 25.125),
        (0x0033, 0x0F, 24.8125),  # the 0.5 °C bit truncated: 25 - 0.25 + 1/16
        (0xFFCE, 0x0C, -25.0),
        (0x00AA, 0x08, 85.25),
    ],
)
def test_ds18s20_extended_resolution(w1, raw, count_remain, celsius):
    pad = ds18s20_scratchpad(raw, count_remain)
    assert read(w1, "10-000802b4b5a1", w1_slave_text(pad, millidegrees=0)) == celsius


def test_ds18s20_power_on_value_is_refused(w1):
    # DS18S20 datasheet, memory map: power-up 00AAh (+85 °C), COUNT_REMAIN 0Ch, COUNT_PER_C 10h.
    with pytest.raises(ValueRejected, match="DS18S20's power-on value"):
        read(w1, "10-000802b4b5a1", w1_slave_text(ds18s20_scratchpad(0x00AA, 0x0C)))


@pytest.mark.parametrize(
    "raw, celsius",
    [
        # MAX31850 datasheet, thermocouple temperature data format table (14 bits, 0.25 °C):
        # 6400h = +1600 °C, 3E80h = +1000 °C, 064Ch = +100.75 °C, FFFCh = -0.25 °C, F060h = -250 °C.
        (0x6400 >> 2, 1600.0),
        (0x3E80 >> 2, 1000.0),
        (0x064C >> 2, 100.75),
        (0xFFFC >> 2, -0.25),
        (0xF060 >> 2, -250.0),
    ],
)
def test_max31850_thermocouple_range_is_its_own(w1, raw, celsius):
    # Cold junction 1900h = +25 °C (the datasheet's cold-junction data format table), bits 15-4.
    pad = max31850_scratchpad(raw, 0x1900 >> 4)
    assert read(w1, "3b-0000001a2b3c", w1_slave_text(pad)) == celsius


@pytest.mark.parametrize(
    "fault, cause", [(0x01, "open"), (0x02, "shorted to GND"), (0x04, "shorted to VDD")]
)
def test_max31850_faults_are_named(w1, fault, cause):
    pad = max31850_scratchpad(0x0190 >> 2, 0x1900 >> 4, fault=fault)
    with pytest.raises(ValueRejected, match=f"MAX31850 reports a fault: the thermocouple is {cause}"):
        read(w1, "3b-0000001a2b3c", w1_slave_text(pad))


def test_ds1825_shares_family_3b_but_reads_like_a_ds18b20(w1):
    # DS1825: configuration byte 0 R1 R0 1 AD3-AD0 (bit 7 clear), unlike the MAX31850's 1111 AD3-AD0.
    pad = scratchpad(raw=0x0191, config=0x7F & 0xF3)
    assert read(w1, "3b-000000112233", w1_slave_text(pad)) == 25.0625
    with pytest.raises(ValueRejected, match="outside the DS1825's range"):
        read(w1, "3b-000000445566", w1_slave_text(scratchpad(raw=0x0A00)))  # 160 °C


def test_ds28ea00_range_is_minus_40_to_85(w1):
    with pytest.raises(ValueRejected, match=r"DS28EA00's range \(-40 to 85 °C\)"):
        read(w1, "42-000000a1b2c3", w1_slave_text(scratchpad(raw=0x0640)))  # 100 °C
