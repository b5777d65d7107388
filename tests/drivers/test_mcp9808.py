"""MCP9808 against a register emulator of the chip (datasheet DS25095)."""

import pytest

from pibridge import cli
from pibridge.drivers import DeviceNotFound, OptionError, ValueRejected, create
from pibridge.drivers.i2c import mcp9808
from tests.support.chips.mcp9808 import MCP9808Chip
from tests.support.i2c_faults import check_absent_io_error_and_unplugged
from tests.support.virtual_time import VirtualClock


@pytest.fixture
def clock(monkeypatch):
    return VirtualClock().install(monkeypatch, mcp9808)


def opened(options=None):
    driver = create("mcp9808", "fridge", options or {})
    driver.open()
    return driver


@pytest.mark.parametrize(
    "word, celsius",
    # DS25095 section 5.1.3, register 5-4 (TA): bits 11:0 weigh 2^7 .. 2^-4 °C, bit 12 is the sign
    # of a 13-bit two's complement value, bits 15:13 are the TCRIT / TUPPER / TLOWER flags.
    [
        (0x0195, 25.3125),  # 2^8 + 2^7 + 2^4 + 2^2 + 2^0 sixteenths
        (0xC190, 25.0),  # TA >= TCRIT and TA > TUPPER flagged: the flags are not temperature
        (0x1FFC, -0.25),
        (0x3E70, -25.0),  # TA < TLOWER flagged
        (0x07D0, 125.0),
        (0x1D80, -40.0),
    ],
)
def test_ambient_register_known_answers(bus, clock, word, celsius):
    chip = bus.add(MCP9808Chip(0x18, clock=clock.monotonic))
    chip.raw = word
    driver = opened()
    assert driver.read() == {"temperature": celsius}
    driver.close()


@pytest.mark.parametrize("word", [0x07D1, 0x1D7F])  # 125.0625 °C and -40.0625 °C: beyond the chip's range
def test_out_of_range_is_rejected(bus, clock, word):
    chip = bus.add(MCP9808Chip(0x18, clock=clock.monotonic))
    chip.raw = word
    driver = opened()
    with pytest.raises(ValueRejected, match="outside the chip's range"):
        driver.read()
    driver.close()


@pytest.mark.parametrize(
    "resolution, bits, celsius, expected",
    # DS25095 section 5.1.6: resolution register 00 = 0.5 °C, 01 = 0.25, 10 = 0.125, 11 = 0.0625.
    [(0.5, 0b00, 23.8, 23.5), (0.25, 0b01, 23.8, 23.75), (0.125, 0b10, 23.8, 23.75), (0.0625, 0b11, 23.8, 23.75),
     (0.0625, 0b11, -5.03, -5.0625), (0.5, 0b00, -5.03, -5.5)],
)
def test_resolution_register_and_steps(bus, clock, resolution, bits, celsius, expected):
    chip = bus.add(MCP9808Chip(0x1A, celsius=celsius, clock=clock.monotonic))
    driver = opened({"address": 0x1A, "resolution": resolution})
    assert driver.read() == {"temperature": expected}
    assert (8, bits) in chip.written and (1, 0x0000) in chip.written
    assert driver.min_interval() == {0.5: 0.030, 0.25: 0.065, 0.125: 0.130, 0.0625: 0.250}[resolution]
    driver.close()


def test_first_reading_waits_for_a_conversion(bus, clock):
    # After a resolution change TA keeps its old content until tCONV has passed (250 ms typical at
    # 0.0625 °C); the driver waits a quarter more.
    bus.add(MCP9808Chip(0x18, celsius=19.5, clock=clock.monotonic))
    driver = opened()
    assert driver.read() == {"temperature": 19.5}
    assert sum(clock.sleeps) == pytest.approx(0.3125)
    driver.close()


def test_wrong_device_id_is_not_an_mcp9808(bus, clock):
    bus.add(MCP9808Chip(0x18, device=0x0200, clock=clock.monotonic))  # another JEDEC sensor of the family
    with pytest.raises(DeviceNotFound, match="device id 0x02 .*not an MCP9808"):
        opened()
    bus.chips.clear()
    bus.add(MCP9808Chip(0x18, manufacturer=0x104A, clock=clock.monotonic))
    with pytest.raises(DeviceNotFound, match="manufacturer id 0x104a"):
        opened()


def test_bad_resolution_option():
    with pytest.raises(OptionError, match="0.0625, 0.125, 0.25 or 0.5") as info:
        create("mcp9808", "fridge", {"resolution": 0.1})
    assert info.value.key == "resolution"
    with pytest.raises(OptionError, match="0x18 or 0x19"):
        create("mcp9808", "fridge", {"address": 0x20})


def test_absent_io_error_and_unplugged(bus, clock):
    check_absent_io_error_and_unplugged(
        bus,
        opened,
        lambda: bus.add(MCP9808Chip(0x18, celsius=4.25, clock=clock.monotonic)),
        absent="0x18 on I2C bus 1.*i2cdetect",
        expected={"temperature": 4.25},
    )


def test_scan_names_it_by_its_ids(bus, capsys):
    bus.add(MCP9808Chip(0x1F))
    bus.add(MCP9808Chip(0x18, device=0x0200))
    cli.main(["scan"])
    out = capsys.readouterr().out
    assert '0x1f  is: MCP9808 (driver = "mcp9808") (checked its id register)' in out
    assert '0x18  a chip whose id matches none of: MCP9808' in out
