"""The fault sequence every I2C driver test walks: no chip, an I/O error mid-run, the chip unplugged."""

from __future__ import annotations

import errno
from typing import Any, Callable

import pytest

from pibridge.drivers import DeviceNotFound, ReadFailed


def check_absent_io_error_and_unplugged(
    bus: Any,
    open_driver: Callable[[], Any],
    plug_in: Callable[[], Any],
    *,
    absent: str,
    expected: dict[str, Any] | None = None,
    io_error: str = "errno 5",
    unplugged: str = "errno 121",
) -> None:
    """Open with nothing on *bus* (DeviceNotFound matching *absent*), then with the chip *plug_in* adds.

    One EIO fails one read (ReadFailed matching *io_error*) and the next read
    gives *expected* again, or, without *expected*, what the first read gave;
    a chip that stops answering fails the read with *unplugged*.
    """
    with pytest.raises(DeviceNotFound, match=absent):
        open_driver()
    chip = plug_in()
    driver = open_driver()
    if expected is None:
        expected = driver.read()
    bus.fail(errno.EIO)
    with pytest.raises(ReadFailed, match=io_error):
        driver.read()
    assert driver.read() == expected
    chip.present = False
    with pytest.raises(ReadFailed, match=unplugged):
        driver.read()
    driver.close()
