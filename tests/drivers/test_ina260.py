"""INA260 against a register-level stand-in built from its datasheet (TI SBOS656)."""

import errno

import pytest

from pibridge import cli
from pibridge.drivers import DeviceNotFound, OptionError, ValueRejected, create
from tests.support.chips.ina260 import INA260Chip
from tests.support.hardware_chips import INA219Chip
from tests.support.i2c_faults import check_absent_io_error_and_unplugged
from tests.support.smbus_fake import CommandChip, io_error


def opened(options=None, sensor="supply"):
    driver = create("ina260", sensor, options or {})
    driver.open()
    return driver


def test_reset_value_of_the_configuration_is_what_the_defaults_of_the_chip_encode(bus):
    # Section 8.6.1: the configuration register resets to 6127h: 1 average, 1.1 ms bus and
    # current conversions, continuous mode.  The driver's word for those settings must be that.
    chip = bus.add(INA260Chip(0x40, current_raw=0, bus_raw=0))
    driver = opened({"averages": 1, "conversion_time": 1100})
    driver.close()
    assert chip.written[-1] == (0x00, 0x6127)
    # Writing bit 15 first resets the chip (section 8.6.1, RST).
    assert (0x00, 0x8000) in chip.written and chip.resets == 2


def test_averages_and_conversion_time_go_into_the_configuration(bus):
    # AVG 64 = 011b (bits 11-9), VBUSCT and ISHCT 332 µs = 010b (bits 8-6, 5-3), MODE 111b,
    # reserved bits 14-12 = 110b: 0110 0110 1001 0111 = 6697h.
    chip = bus.add(INA260Chip(0x40))
    driver = opened({"averages": 64, "conversion_time": 332})
    assert chip.config == 0x6697
    assert driver.min_interval() == pytest.approx(64 * 2 * 332e-6)
    driver.close()


@pytest.mark.parametrize(
    "current_raw, bus_raw, expected",
    [
        # Sections 8.6.2-8.6.4 give fixed steps (current 1.25 mA, bus voltage 1.25 mV, power 10 mW)
        # and no worked example; these raw values are chosen, the results follow from those steps:
        # 1F40h = 8000 x 1.25 mA = 10 A, 2580h = 9600 x 1.25 mV = 12 V, power 2EE0h = 12000 x 10 mW.
        (0x1F40, 0x2580, {"voltage": 12.0, "current": 10.0, "power": 120.0}),
        # FFF8h is -8 in two's complement: -10 mA (current flowing back from VIN- to VIN+).
        (-8, 0x0FA0, {"voltage": 5.0, "current": -0.01, "power": 0.05}),
        (0x0001, 0x0001, {"voltage": 0.00125, "current": 0.00125, "power": 0.0}),
    ],
)
def test_register_steps(bus, current_raw, bus_raw, expected):
    bus.add(INA260Chip(0x40, current_raw=current_raw, bus_raw=bus_raw))
    driver = opened()
    assert driver.read() == expected
    driver.close()


def test_other_addresses_and_their_range(bus):
    bus.add(INA260Chip(0x4F, current_raw=400, bus_raw=2640))
    driver = opened({"address": 0x4F})
    assert driver.read()["voltage"] == 3.3
    assert driver.resources() == ["i2c:1:0x4f"]
    driver.close()
    with pytest.raises(OptionError, match="0x40 or"):
        create("ina260", "x", {"address": 0x50})


def test_brown_out_is_noticed_and_the_configuration_written_again(bus):
    chip = bus.add(INA260Chip(0x40, current_raw=800, bus_raw=4000))
    driver = opened({"averages": 4})
    first = driver.read()
    chip.reset()  # the supply dipped: averaging back to 1
    assert chip.config == 0x6127
    assert driver.read() == first
    assert chip.config == 0x6327
    driver.close()


def test_math_overflow_is_rejected(bus):
    chip = bus.add(INA260Chip(0x40, current_raw=800, bus_raw=4000))
    driver = opened()
    chip.overflow = True
    with pytest.raises(ValueRejected, match="math overflow"):
        driver.read()
    driver.close()


@pytest.mark.parametrize("current_raw", [0x7FFF, -0x8000])
def test_current_at_the_end_of_the_register_is_saturation(bus, current_raw):
    bus.add(INA260Chip(0x40, current_raw=current_raw, bus_raw=4000))
    driver = opened()
    with pytest.raises(ValueRejected, match="beyond what the 2 mΩ shunt can measure"):
        driver.read()
    driver.close()


def test_bus_voltage_above_36_volts_is_out_of_range(bus):
    # Section 8.6.3: bus voltage full scale 7FFFh with 1.25 mV steps (40.95875 V); the inputs
    # must not see more than 36 V.
    bus.add(INA260Chip(0x40, current_raw=10, bus_raw=0x7FFF))
    driver = opened()
    with pytest.raises(ValueRejected, match="40.959 V is above the 36 V"):
        driver.read()
    driver.close()


def test_an_ina3221_at_the_address_is_named(bus):
    bus.add(INA260Chip(0x41, die_id=0x3220))  # same manufacturer id, the INA3221's die id
    with pytest.raises(DeviceNotFound, match='is a TI INA3221: use driver = "ina3221"'):
        opened({"address": 0x41})


def test_wrong_chip_id_is_not_an_ina260(bus):
    bus.add(INA260Chip(0x42, manufacturer=0x0000, die_id=0x1234))
    with pytest.raises(DeviceNotFound, match="manufacturer id 0x0000 and die id 0x1234.*not an INA260"):
        opened({"address": 0x42})


def test_an_ina219_has_no_id_registers(bus):
    bus.add(INA219Chip(0x40))
    with pytest.raises(DeviceNotFound, match="does not answer the id registers.*not an INA260"):
        opened()


def test_absent_chip_and_io_error_mid_read(bus):
    check_absent_io_error_and_unplugged(
        bus,
        opened,
        lambda: bus.add(INA260Chip(0x40, current_raw=800, bus_raw=4000)),
        absent="nothing answers at 0x40 on I2C bus 1",
        io_error="I/O error at 0x40",
        unplugged="nothing answers",
    )


def test_bad_options():
    with pytest.raises(OptionError) as info:
        create("ina260", "x", {"averages": 10})
    assert info.value.key == "averages"
    with pytest.raises(OptionError) as info:
        create("ina260", "x", {"conversion_time": 1000})
    assert info.value.key == "conversion_time"


def test_scan_names_the_ina260_by_its_id_registers(bus, capsys):
    bus.add(INA260Chip(0x40))
    bus.add(INA219Chip(0x41))
    cli.main(["scan"])
    out = capsys.readouterr().out
    assert '0x40  is: INA260 (driver = "ina260") (checked its id register)' in out
    line = next(line for line in out.splitlines() if line.startswith("0x41  "))
    assert "INA219" in line and "INA260" not in line


class ResettableCommandChip(CommandChip):
    """A command-driven chip at 0x40 (like the HTU21D): FEh is its soft reset, unknown commands are NACKed."""

    def __init__(self, address=0x40):
        super().__init__(address)
        self.resets = 0

    def on_command(self, data):
        if data == b"\xfe":
            self.resets += 1
        else:
            raise io_error(errno.EREMOTEIO)


def test_scan_never_sends_a_command_chip_the_id_register_address(bus, capsys):
    chip = bus.add(ResettableCommandChip(0x40))
    cli.main(["scan"])
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("0x40  "))
    assert line.startswith("0x40  could be:") and "INA260" not in line and "INA3221" not in line
    assert chip.resets == 0 and b"\xfe" not in chip.commands
