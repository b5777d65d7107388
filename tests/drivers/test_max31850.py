"""MAX31850 thermocouple interfaces (1-Wire family 3B) against a fake sysfs tree.

Raw values are the MAX31850 datasheet's data-format tables: the thermocouple temperature in
bits 15-2 of bytes 0-1 (0.25 °C), the cold junction in bits 15-4 of bytes 2-3 (0.0625 °C),
fault flag in bit 0 of byte 0 and the fault causes in bits 0-2 of byte 2.
"""

import pytest

from pibridge.drivers import DeviceNotFound, OptionError, ValueRejected, create
from tests.support.hardware_w1 import W1Tree, max31850_scratchpad, scratchpad, w1_slave_text


@pytest.fixture
def w1(tmp_path):
    return W1Tree(tmp_path / "devices")


def opened(w1, device_id=""):
    driver = create("max31850", "kiln", {"device_id": device_id, "sysfs_root": str(w1.root)})
    driver.open()
    return driver


@pytest.mark.parametrize(
    "thermocouple, cold_junction, expected",
    [
        # thermocouple 3E80h = +1000 °C, 064Ch = +100.75 °C, F060h = -250 °C;
        # cold junction 1900h = +25 °C, 6490h = +100.5625 °C, FF00h = -1 °C, EC00h = -20 °C.
        (0x3E80, 0x1900, {"temperature": 1000.0, "cold_junction": 25.0}),
        (0x064C, 0x6490, {"temperature": 100.75, "cold_junction": 100.5625}),
        (0xF060, 0xFF00, {"temperature": -250.0, "cold_junction": -1.0}),
        (0x0000, 0xEC00, {"temperature": 0.0, "cold_junction": -20.0}),
    ],
)
def test_thermocouple_and_cold_junction_from_the_datasheet_formats(w1, thermocouple, cold_junction, expected):
    w1.add("3b-0000001a2b3c", w1_slave_text(max31850_scratchpad(thermocouple >> 2, cold_junction >> 4)))
    assert opened(w1).read() == expected


def test_an_open_thermocouple_is_refused_by_name(w1):
    w1.add("3b-0000001a2b3c", w1_slave_text(max31850_scratchpad(0x0190 >> 2, 0x1900 >> 4, fault=0x01)))
    with pytest.raises(ValueRejected, match="thermocouple is open"):
        opened(w1, "3b-0000001a2b3c").read()


def test_a_ds1825_on_family_3b_is_pointed_to_the_ds18b20_driver(w1):
    w1.add("3b-000000112233", w1_slave_text(scratchpad(raw=0x0191, config=0x73)))
    with pytest.raises(ValueRejected, match='DS1825.*driver = "ds18b20"'):
        opened(w1).read()


def test_only_family_3b_ids_are_accepted_and_found(w1):
    with pytest.raises(OptionError, match="not a MAX31850 id; they look like 3b-"):
        create("max31850", "x", {"device_id": "28-0316a2790d2e"})
    w1.add("28-0316a2790d2e", w1_slave_text(scratchpad(raw=0x0191)))
    with pytest.raises(DeviceNotFound, match="no thermometer is listed"):
        opened(w1)  # the DS18B20 on the same bus is not taken for a MAX31850
    w1.add("3b-0000001a2b3c", w1_slave_text(max31850_scratchpad(0x0190 >> 2, 0x1900 >> 4)))
    assert opened(w1).read() == {"temperature": 25.0, "cold_junction": 25.0}
