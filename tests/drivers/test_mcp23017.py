"""MCP23017 inputs against a register-level stand-in (Microchip DS20001952D).

The edge and debounce rules are the GPIO ``contact`` driver's, as for the PCF8574
(tests/drivers/test_pcf8574.py); here: pull-ups (GPPU), register setup, banks, brown-out.
"""

import errno

import pytest

from pibridge.drivers import DeviceNotFound, OptionError, ReadFailed, create
from tests.support.chips.mcp23017 import MCP23017Chip
from tests.support.chips.pcf8574 import PCF8574Chip
from tests.support.notifications import FakeClock, Notifications, polls_after
from tests.support.waiting import wait_until


@pytest.fixture
def expanders(drivers):
    return lambda options, sensor="inputs": drivers("mcp23017", {"poll_interval": 0.005, **options}, sensor)


def test_pins_become_inputs_with_pull_ups_on_the_configured_pins(bus, expanders):
    chip = bus.add(MCP23017Chip(0x20))
    driver = expanders({"pins": {"door": "A0", "window": "GPA3", "tank": "B2", "gate": 14}})
    # Section 3.5.1 IODIR: 1 = input; 3.5.7 GPPU: 1 = 100 kΩ pull-up on.
    assert chip.reg("IODIR", "A") == 0xFF and chip.reg("IODIR", "B") == 0xFF
    assert chip.reg("GPPU", "A") == 0b0000_1001 and chip.reg("GPPU", "B") == 0b0100_0100
    assert chip.reg("IPOL", "A") == 0 and chip.reg("GPINTEN", "B") == 0
    assert driver.read() == {"door": False, "window": False, "tank": False, "gate": False}
    chip.switch(3, closed=True)
    chip.switch(8 + 6, closed=True)
    polls_after(chip)
    assert driver.read() == {"door": False, "window": True, "tank": False, "gate": True}


def test_default_pins_are_the_fourteen_inputs(bus, expanders):
    bus.add(MCP23017Chip(0x27))
    driver = expanders({"address": 0x27})
    names = [q.name for q in driver.quantities()]
    assert names == [f"a{n}" for n in range(7)] + [f"b{n}" for n in range(7)]
    assert set(driver.read().values()) == {False}


@pytest.mark.parametrize("pin", ["A7", "GPB7", 7, 15])
def test_gpa7_and_gpb7_are_outputs_only(pin):
    with pytest.raises(OptionError, match="outputs only"):
        create("mcp23017", "x", {"pins": {"door": pin}})


def test_a_chip_left_in_bank_1_is_put_back_to_bank_0(bus, expanders):
    # Section 3.5.6: with IOCON.BANK = 1 the registers of each port are grouped; address 05h is
    # then IOCON (GPINTENB in bank 0), so writing 00h there puts either mapping back to bank 0.
    chip = bus.add(MCP23017Chip(0x20, bank=1))
    driver = expanders({"pins": {"door": "B0"}})
    assert chip.regs["IOCON"] == 0x00
    assert chip.reg("GPPU", "B") == 0x01
    chip.switch(8, closed=True)
    polls_after(chip)
    assert driver.read() == {"door": True}


def test_pin_without_pull_up_needs_and_uses_active_low(bus, expanders):
    with pytest.raises(OptionError) as info:
        create("mcp23017", "x", {"pins": {"pir": {"pin": "A1", "pull_up": "off"}}})
    assert info.value.key == "active_low"
    with pytest.raises(OptionError, match="no pull-downs"):
        create("mcp23017", "x", {"pins": {"pir": {"pin": "A1", "pull_up": False}}})
    chip = bus.add(MCP23017Chip(0x20))
    driver = expanders({"pins": {"pir": {"pin": "A1", "pull_up": "off", "active_low": False}, "door": "A2"}})
    assert chip.reg("GPPU", "A") == 0b0000_0100
    chip.drive(1, 1)
    polls_after(chip)
    assert driver.read() == {"pir": True, "door": False}


def test_brown_out_loses_the_pull_ups_and_the_driver_sets_them_again(bus, expanders):
    chip = bus.add(MCP23017Chip(0x20))
    driver = expanders({"pins": {"door": "A0", "window": "B1"}})
    notifications = Notifications()
    driver.watch(notifications)
    chip.power_on()  # GPPU back to 00h: the open contacts would float low and read "closed"
    wait_until(lambda: chip.reg("GPPU", "A") == 0x01 and chip.reg("GPPU", "B") == 0x02, timeout=5,
               what="the pull-ups set again")
    polls_after(chip)
    assert driver.read() == {"door": False, "window": False}
    assert notifications.count == 0  # the floating levels of the reset chip were never reported


def test_edges_and_debounce_follow_the_contact_driver(bus):
    chip = bus.add(MCP23017Chip(0x20))
    clock = FakeClock()
    driver = create("mcp23017", "door", {"pins": {"door": "A0"}, "bounce_time": 0.1, "poll_interval": 0.005})
    driver.clock = clock
    driver.open()
    try:
        notifications = Notifications()
        driver.watch(notifications)
        chip.switch(0, closed=True)
        assert notifications.wait_for(1)
        chip.switch(0, closed=False)
        polls_after(chip)
        assert notifications.count == 1 and driver.read() == {"door": True}
        clock.now += 0.1
        assert notifications.wait_for(2)
        assert driver.read() == {"door": False}
    finally:
        driver.close()


def test_a_pcf8574_at_the_address_is_not_an_mcp23017(bus):
    bus.add(PCF8574Chip(0x20))
    with pytest.raises(DeviceNotFound, match="not an MCP23017"):
        create("mcp23017", "x", {"pins": {"door": "A0"}}).open()


def test_absent_chip_and_io_errors(bus, expanders):
    with pytest.raises(DeviceNotFound, match="nothing answers at 0x20"):
        create("mcp23017", "x", {}).open()
    chip = bus.add(MCP23017Chip(0x20))
    driver = expanders({"pins": {"door": "A0"}})
    chip.present = False
    wait_until(lambda: _read_error(driver), timeout=5, what="the poller to see the chip gone")
    chip.present = True
    wait_until(lambda: _read_error(driver) is None, timeout=5, what="the chip answering again")
    bus.fail(errno.EIO, times=1)
    polls_after(chip)
    assert driver.read() == {"door": False}


def _read_error(driver):
    try:
        driver.read()
    except ReadFailed as exc:
        return str(exc)
    return None
