"""Fixtures for driver tests: a fake I2C bus in place of /dev/i2c-N, drivers closed after each test."""

import pytest

from pibridge.drivers import create
from pibridge.drivers.i2c import _bus as _i2c
from pibridge.drivers.uart import _port
from tests.support.smbus_fake import BusFactory


@pytest.fixture
def buses(monkeypatch):
    """Every driver's and ``pibridge scan``'s bus comes from here; bus 1 exists, empty."""
    factory = BusFactory()
    factory.bus(1)
    monkeypatch.setattr(_i2c, "open_bus", factory)
    return factory


@pytest.fixture
def bus(buses):
    return buses.bus(1)


@pytest.fixture
def no_console(tmp_path, monkeypatch):
    """A kernel command line with no serial console, in place of /proc/cmdline; tests may rewrite it."""
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("console=tty1 root=PARTUUID=1234-02 rootwait\n")
    monkeypatch.setattr(_port, "CMDLINE", str(cmdline))
    return cmdline


@pytest.fixture
def drivers():
    """``drivers(name, options)`` creates and opens a driver; each one is closed after the test, whatever happens."""
    opened = []

    def make(name, options, sensor="inputs"):
        driver = create(name, sensor, options)
        driver.open()
        opened.append(driver)
        return driver

    yield make
    for driver in opened:
        driver.close()
