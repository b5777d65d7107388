"""INA3221 against a register-level stand-in built from its datasheet (TI SBOS576)."""

import errno
import re

import pytest

from pibridge import cli
from pibridge.drivers import DeviceNotFound, OptionError, ReadFailed, ValueRejected, create
from tests.support.chips.ina260 import INA260Chip
from tests.support.chips.ina3221 import INA3221Chip


def opened(options=None, sensor="rails"):
    driver = create("ina3221", sensor, options or {})
    driver.open()
    return driver


def test_all_channels_with_the_chips_own_settings_give_its_reset_value(bus):
    # SBOS576C section 8.1 (summary of the register set): the configuration register resets to
    # 7127h: channels 1-3 enabled
    # (bits 14-12), 1 average, 1.1 ms bus and shunt conversions, continuous shunt and bus.
    chip = bus.add(INA3221Chip(0x40))
    opened({"averages": 1, "conversion_time": 1100}).close()
    assert chip.written[0] == (0x00, 0x8000)  # reset first (bit 15, RST)
    assert chip.written[-1] == (0x00, 0x7127)


def test_unused_channels_are_switched_off(bus):
    # CH1en and CH3en set, CH2en clear; AVG 16 = 010b; 1.1 ms = 100b; mode 111b: 0101 0101 0010 0111.
    chip = bus.add(INA3221Chip(0x40))
    driver = opened({"channels": {"battery": 1, "solar": 3}})
    assert chip.config == 0x5527
    assert driver.min_interval() == pytest.approx(16 * 2 * 2 * 1100e-6)
    assert [q.name for q in driver.quantities()] == [
        "battery_voltage", "battery_current", "battery_power", "battery_shunt_voltage",
        "solar_voltage", "solar_current", "solar_power", "solar_shunt_voltage",
    ]
    driver.close()


def test_three_channels_with_their_own_shunts(bus):
    # SBOS576C section 8.2 (register descriptions): shunt voltage in bits 15-3 with 40 µV steps,
    # bus voltage in bits 15-3 with 8 mV steps, both two's complement.  The datasheet gives the steps, not a worked example;
    # the raw counts here are chosen and the results follow from the steps:
    # 400 x 40 µV = 16 mV (0C80h), 1500 x 8 mV = 12 V (2EE0h); -1 (FFF8h) = -40 µV.
    bus.add(INA3221Chip(0x41, shunt_raw=(400, 400, -1), bus_raw=(1500, 625, 413)))
    driver = opened({"address": 0x41, "shunt_ohms": [0.1, 0.05, 0.01]})
    assert driver.read() == {
        "ch1_voltage": 12.0, "ch1_current": 0.16, "ch1_power": 1.92, "ch1_shunt_voltage": 16.0,
        "ch2_voltage": 5.0, "ch2_current": 0.32, "ch2_power": 1.6, "ch2_shunt_voltage": 16.0,
        "ch3_voltage": 3.304, "ch3_current": -0.004, "ch3_power": -0.013216, "ch3_shunt_voltage": -0.04,
    }
    driver.close()


def test_register_words_are_the_datasheet_formats(bus):
    chip = bus.add(INA3221Chip(0x40, shunt_raw=(400, 0, 0), bus_raw=(1500, 0, 0)))
    assert chip.read_register(0x01) == 0x0C80 and chip.read_register(0x02) == 0x2EE0
    chip.shunt_raw[0] = -1
    assert chip.read_register(0x01) == 0xFFF8


@pytest.mark.parametrize("shunt_raw, millivolts", [(4095, "+163.80"), (-4096, "-163.84")])
def test_shunt_at_full_scale_is_saturation(bus, shunt_raw, millivolts):
    # SBOS576C section 8.2, shunt-voltage registers: "Full-scale range = 163.8 mV (decimal = 7FF8);
    # LSB: 40 µV"; 8000h is the negative end.
    bus.add(INA3221Chip(0x40, shunt_raw=(10, shunt_raw, 10), bus_raw=(600, 600, 600)))
    driver = opened()
    expected = rf"channel 2 \(ch2\).*end of the range \({re.escape(millivolts)} mV\).*beyond 1.638 A"
    with pytest.raises(ValueRejected, match=expected):
        driver.read()
    driver.close()


@pytest.mark.parametrize("bus_raw, volts", [(3500, "28.000"), (4095, "32.760")])
def test_bus_voltage_above_26_volts_is_out_of_range(bus, bus_raw, volts):
    # SBOS576C section 8.2, bus-voltage registers: "Full-scale range = 32.76 V (decimal = 7FF8);
    # LSB = 8 mV ... Do not apply more than 26 V."
    bus.add(INA3221Chip(0x40, shunt_raw=(10, 10, 10), bus_raw=(600, 600, bus_raw)))
    driver = opened()
    with pytest.raises(ValueRejected, match=f"channel 3.*{volts} V, above the 26 V"):
        driver.read()
    driver.close()


def test_brown_out_reset_is_noticed(bus):
    chip = bus.add(INA3221Chip(0x40, shunt_raw=(250, 0, 0), bus_raw=(625, 0, 0)))
    driver = opened({"channels": [1]})
    first = driver.read()
    chip.reset()  # every channel on again, 1 average
    assert driver.read() == first == {
        "ch1_voltage": 5.0, "ch1_current": 0.1, "ch1_power": 0.5, "ch1_shunt_voltage": 10.0,
    }
    assert chip.config == 0x4527
    driver.close()


def test_an_ina260_at_the_address_is_named(bus):
    bus.add(INA260Chip(0x40))
    with pytest.raises(DeviceNotFound, match='is a TI INA260: use driver = "ina260"'):
        opened()


def test_wrong_die_id_is_not_an_ina3221(bus):
    bus.add(INA3221Chip(0x40, die_id=0x2260))
    with pytest.raises(DeviceNotFound, match="die id 0x2260.*not an INA3221"):
        opened()


def test_absent_chip_and_io_error_mid_read(bus):
    with pytest.raises(DeviceNotFound, match="nothing answers at 0x40"):
        opened()
    bus.add(INA3221Chip(0x40, shunt_raw=(250, 0, 0), bus_raw=(625, 0, 0)))
    driver = opened({"channels": [1]})
    good = driver.read()
    bus.fail(errno.EREMOTEIO)
    with pytest.raises(ReadFailed, match="errno 121"):
        driver.read()
    assert driver.read() == good
    driver.close()


@pytest.mark.parametrize(
    "options, key",
    [
        ({"channels": [4]}, "channels"),
        ({"channels": [1, 1]}, "channels"),
        ({"channels": []}, "channels"),
        ({"channels": {"x": True}}, "channels"),
        ({"shunt_ohms": [0.1, 0.1]}, "shunt_ohms"),
        ({"shunt_ohms": -0.1}, "shunt_ohms"),
        ({"address": 0x44}, "address"),
    ],
)
def test_bad_options(options, key):
    with pytest.raises(OptionError) as info:
        create("ina3221", "x", options)
    assert info.value.key == key


def test_scan_names_it(bus, capsys):
    bus.add(INA3221Chip(0x42))
    cli.main(["scan"])
    assert '0x42  is: INA3221 (driver = "ina3221") (checked its id register)' in capsys.readouterr().out
