"""A stand-in for ``spidev.SpiDev`` with a chip on each chip select.

:class:`FakeSpiDev` has the attributes and methods of ``spidev.SpiDev`` the
drivers use (``mode``, ``max_speed_hz``, ``xfer2``, ``xfer``, ``close``) and
hands every transfer to the chip emulator on its chip select (see
:mod:`tests.support.chips`).  SPI is full duplex: the emulator sees every
byte clocked out and returns one byte for each.  A chip select with no chip
answers what an unconnected MISO line reads: all ones (``floating = 0xFF``)
or all zeros.

:class:`SpiFactory` replaces ``drivers.spi._bus.open_device``: a missing
``/dev/spidevB.C`` raises FileNotFoundError as spidev does, and
``factory.deny(bus, device)`` a PermissionError.
"""

from __future__ import annotations

import errno
import os


class SpiChip:
    """Base of chip emulators: a chip select goes low, bytes are exchanged, it goes high."""

    #: SPI modes the chip works in (its datasheet's timing diagram); a transfer in another fails the test.
    modes: tuple[int, ...] = (0,)

    def __init__(self):
        self.present = True
        self.transfers: list[list[int]] = []

    def exchange(self, data: list[int]) -> list[int]:
        raise NotImplementedError


class FakeSpiDev:
    """Stands in for an opened ``spidev.SpiDev``."""

    def __init__(self, bus: int, device: int, chip: SpiChip | None, floating: int = 0xFF):
        self.bus, self.device, self.chip = bus, device, chip
        self.floating = floating
        self.mode = 0
        self.max_speed_hz = 125_000_000
        self.bits_per_word = 8
        self.closed = False
        self.fail_next: list[int] = []

    def xfer2(self, data):
        if self.closed:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        if self.fail_next:
            code = self.fail_next.pop(0)
            raise OSError(code, os.strerror(code))
        data = [int(b) & 0xFF for b in data]
        chip = self.chip
        if chip is None or not chip.present:
            return [self.floating] * len(data)
        assert self.mode in chip.modes, f"SPI mode {self.mode} set, but the chip works only in {chip.modes}"
        chip.transfers.append(data)
        reply = chip.exchange(data)
        assert len(reply) == len(data)
        return reply

    xfer = xfer2

    def close(self):
        self.closed = True


class SpiFactory:
    """Replacement for ``drivers.spi._bus.open_device``: chips by (bus, chip select)."""

    def __init__(self):
        self.buses: set[int] = set()
        self.chips: dict[tuple[int, int], SpiChip] = {}
        self.opened: list[FakeSpiDev] = []
        self.denied: set[tuple[int, int]] = set()
        self.floating = 0xFF

    def enable(self, bus: int = 0) -> None:
        self.buses.add(bus)

    def add(self, chip: SpiChip, bus: int = 0, device: int = 0) -> SpiChip:
        self.enable(bus)
        self.chips[(bus, device)] = chip
        return chip

    def deny(self, bus: int, device: int) -> None:
        self.denied.add((bus, device))

    def __call__(self, bus: int, device: int) -> FakeSpiDev:
        path = f"/dev/spidev{bus}.{device}"
        if bus not in self.buses or device not in (0, 1):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        if (bus, device) in self.denied:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        spi = FakeSpiDev(bus, device, self.chips.get((bus, device)), self.floating)
        self.opened.append(spi)
        return spi


def spi_factory(monkeypatch) -> SpiFactory:
    """Put a :class:`SpiFactory` in place of every driver's ``open_device``; SPI0 is enabled, empty."""
    from pibridge.drivers.spi import _bus

    factory = SpiFactory()
    factory.enable(0)
    monkeypatch.setattr(_bus, "open_device", factory)
    return factory
