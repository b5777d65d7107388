"""The SPI bus layer: opening /dev/spidevB.C, the options, and the kernel's errors turned into advice."""

import errno

import pytest

from pibridge.drivers import DeviceNotFound, OptionError, ReadFailed, create
from pibridge.drivers.spi import _bus
from tests.support.chips.mcp3008 import MCP3008Chip
from tests.support.spidev_fake import spi_factory


@pytest.fixture
def spi(monkeypatch):
    return spi_factory(monkeypatch)


def test_missing_device_file_says_how_to_enable_spi(spi):
    driver = create("mcp3008", "pot", {"bus": 3})
    with pytest.raises(DeviceNotFound) as info:
        driver.open()
    assert "/dev/spidev3.0 is missing" in str(info.value) and "dtoverlay=spi3" in str(info.value)
    spi.buses.discard(0)
    with pytest.raises(DeviceNotFound) as info:
        create("mcp3008", "pot").open()
    message = str(info.value)
    assert "'pot'" in message and "raspi-config nonint do_spi 0" in message and "dtparam=spi=on" in message


def test_permission_denied_names_the_spi_group_and_the_udev_rule(spi):
    spi.add(MCP3008Chip(), device=1)
    spi.deny(0, 1)
    with pytest.raises(DeviceNotFound) as info:
        create("mcp3008", "pot", {"device": 1}).open()
    assert "/dev/spidev0.1" in str(info.value) and "'spi' group" in str(info.value)
    assert "60-pibridge.rules" in str(info.value)


def test_mode_and_speed_are_set_on_the_device(spi):
    spi.add(MCP3008Chip(volts=[1.0] * 8))
    driver = create("mcp3008", "adc", {"mode": 3, "max_speed_hz": 500_000, "channels": ["CH0"]})
    driver.open()
    device = spi.opened[-1]
    assert (device.mode, device.max_speed_hz) == (3, 500_000)
    driver.close()
    assert device.closed
    driver.close()  # twice is fine


@pytest.mark.parametrize(
    "options, key",
    [({"mode": 1}, "mode"), ({"mode": 4}, "mode"), ({"bus": -1}, "bus"), ({"device": -2}, "device"),
     ({"max_speed_hz": 0}, "max_speed_hz")],
)
def test_bad_bus_options(options, key):
    with pytest.raises(OptionError) as info:
        create("mcp3008", "adc", options)
    assert info.value.key == key


def test_io_error_mid_read_is_read_failed_then_recovers(spi):
    spi.add(MCP3008Chip(volts=[1.65] * 8))
    driver = create("mcp3008", "adc", {"channels": ["CH0"]})
    driver.open()
    spi.opened[-1].fail_next.append(errno.EIO)
    with pytest.raises(ReadFailed, match="errno 5"):
        driver.read()
    assert driver.read() == {"ch0": pytest.approx(1.65, abs=3.3 / 1024)}
    driver.close()


def test_two_sensors_on_one_chip_select_share_a_resource():
    first = create("mcp3008", "a")
    second = create("max31855", "b", {"device": 0})
    assert first.resources() == second.resources() == ["spi:0.0"]
    assert create("max31865", "c", {"device": 1}).resources() == ["spi:0.1"]


def test_open_device_imports_spidev_lazily_and_reports_a_missing_node():
    # The real spidev against a chip select this machine does not have.
    pytest.importorskip("spidev")
    with pytest.raises(OSError) as info:
        _bus.open_device(99, 0)
    assert info.value.errno == errno.ENOENT


def test_missing_spidev_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "spidev", None)  # import spidev now raises ImportError
    with pytest.raises(DeviceNotFound, match="spidev package is missing"):
        create("max31855", "kiln").open()
