"""A stand-in for ``smbus2.SMBus`` with chips on it.

:class:`FakeSMBus` has the methods of ``smbus2.SMBus`` the drivers use and
hands each transfer to the chip emulator at that address; an address with no
chip raises ``OSError(121, "Remote I/O error")`` exactly as the kernel does
when nothing acknowledges.  ``i2c_rdwr`` takes real ``smbus2.i2c_msg``
objects.

Chip emulators (see :mod:`tests.support.hardware_chips`) come in two kinds,
as on real silicon:

* :class:`RegisterChip`: a write sets the register pointer and stores the
  following bytes, incrementing; a read starts at the pointer (the
  ``*_data`` calls write the pointer first).
* :class:`CommandChip`: a write is a command (Sensirion, BH1750); a plain
  read returns whatever the last command prepared.

Faults: ``bus.fail(errno, times)`` makes the next transfers fail with that
errno (121 remote I/O, 5 I/O error...), ``chip.present = False`` unplugs a
chip.
"""

from __future__ import annotations

import ctypes
import errno
import os

from smbus2.smbus2 import I2C_M_RD


def io_error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


class Chip:
    """Base of all chip emulators: one 7-bit address, present or not."""

    def __init__(self, address: int):
        self.address = address
        self.present = True

    # Raw transfers (what the bus sees).
    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def read(self, length: int) -> bytes:
        raise NotImplementedError


class RegisterChip(Chip):
    """A chip with a register file and an auto-incrementing register pointer."""

    def __init__(self, address: int, size: int = 256):
        super().__init__(address)
        self.registers = bytearray(size)
        self.pointer = 0
        self.writes: list[tuple[int, int]] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.pointer = data[0]
        for value in data[1:]:
            self.writes.append((self.pointer, value))
            self.on_write(self.pointer, value)
            self.pointer = (self.pointer + 1) % len(self.registers)

    def read(self, length: int) -> bytes:
        out = bytearray()
        for _ in range(length):
            out.append(self.on_read(self.pointer))
            self.pointer = (self.pointer + 1) % len(self.registers)
        return bytes(out)

    def on_write(self, register: int, value: int) -> None:
        self.registers[register] = value

    def on_read(self, register: int) -> int:
        return self.registers[register]


class CommandChip(Chip):
    """A chip driven by command words; a read returns the prepared response."""

    def __init__(self, address: int):
        super().__init__(address)
        self.commands: list[bytes] = []
        self.response = b""

    def write(self, data: bytes) -> None:
        self.commands.append(bytes(data))
        self.on_command(bytes(data))

    def read(self, length: int) -> bytes:
        data = self.on_read(length)
        return data[:length].ljust(length, b"\xff")

    def on_command(self, data: bytes) -> None:
        raise NotImplementedError

    def on_read(self, length: int) -> bytes:
        return self.response


class FakeSMBus:
    """Stands in for ``smbus2.SMBus(bus)``; built by a test's ``open_bus`` replacement."""

    def __init__(self, bus: int = 1, chips: list[Chip] | None = None):
        self.bus = bus
        self.chips = {chip.address: chip for chip in chips or []}
        self.closed = False
        self._faults: list[int] = []

    def add(self, chip: Chip) -> Chip:
        self.chips[chip.address] = chip
        return chip

    def fail(self, code: int = errno.EREMOTEIO, times: int = 1) -> None:
        """Make the next *times* transfers fail with OSError(*code*)."""
        self._faults.extend([code] * times)

    def _chip(self, address: int) -> Chip:
        if self.closed:
            raise ValueError("I/O operation on closed bus")
        if self._faults:
            raise io_error(self._faults.pop(0))
        chip = self.chips.get(address)
        if chip is None or not chip.present:
            raise io_error(errno.EREMOTEIO)
        return chip

    # smbus2.SMBus API

    def close(self) -> None:
        self.closed = True

    def write_quick(self, i2c_addr: int, force=None) -> None:
        self._chip(i2c_addr)

    def read_byte(self, i2c_addr: int, force=None) -> int:
        return self._chip(i2c_addr).read(1)[0]

    def read_byte_data(self, i2c_addr: int, register: int, force=None) -> int:
        chip = self._chip(i2c_addr)
        chip.write(bytes([register]))
        return chip.read(1)[0]

    def write_byte_data(self, i2c_addr: int, register: int, value: int, force=None) -> None:
        self._chip(i2c_addr).write(bytes([register, value]))

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int, force=None) -> list[int]:
        if length > 32:
            raise ValueError("Desired block length over 32 bytes")
        chip = self._chip(i2c_addr)
        chip.write(bytes([register]))
        return list(chip.read(length))

    def write_i2c_block_data(self, i2c_addr: int, register: int, data, force=None) -> None:
        if len(data) > 32:
            raise ValueError("Data length cannot exceed 32 bytes")
        self._chip(i2c_addr).write(bytes([register, *data]))

    def i2c_rdwr(self, *i2c_msgs) -> None:
        for msg in i2c_msgs:
            chip = self._chip(msg.addr)
            if msg.flags & I2C_M_RD:
                data = chip.read(msg.len)
                ctypes.memmove(msg.buf, data, msg.len)
            else:
                chip.write(bytes(msg))


class BusFactory:
    """Replacement for ``drivers.i2c._bus.open_bus``: one :class:`FakeSMBus` per bus number."""

    def __init__(self):
        self.buses: dict[int, FakeSMBus] = {}

    def bus(self, number: int = 1) -> FakeSMBus:
        return self.buses.setdefault(number, FakeSMBus(number))

    def __call__(self, number: int) -> FakeSMBus:
        if number not in self.buses:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", f"/dev/i2c-{number}")
        bus = self.buses[number]
        bus.closed = False
        return bus
