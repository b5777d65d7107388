"""What every I2C chip driver shares: opening the bus, talking to one address,
and turning the kernel's terse errno into advice.

All bus access goes through :func:`open_bus`, so a test (or ``pibridge
scan``) can put a stand-in for ``smbus2.SMBus`` in its place.
"""

from __future__ import annotations

import errno
import time
from pathlib import Path
from typing import Any, Callable, ClassVar

from .. import DeviceNotFound, Driver, DriverError, Option, OptionError, ReadFailed

#: Lowest and highest 7-bit addresses a normal chip may use (the rest are reserved).
FIRST_ADDRESS, LAST_ADDRESS = 0x03, 0x77

#: errnos that mean "nothing acknowledged this address".
NO_ACK = {errno.EREMOTEIO, errno.ENXIO}

#: Where the kernel lists the I2C devices its drivers have bound (``<bus>-<address:04x>``).
SYSFS_DEVICES = Path("/sys/bus/i2c/devices")


def open_bus(bus: int) -> Any:
    """Open ``/dev/i2c-<bus>`` and return an ``smbus2.SMBus``.

    This is the one place hardware is touched; replace it to run without a Pi.
    """
    from smbus2 import SMBus

    return SMBus(bus)


def enable_hint(bus: int) -> str:
    """How to make ``/dev/i2c-<bus>`` appear: each bus of a Pi is switched on its own way."""
    if bus == 1:
        how = ("enable I2C with `sudo raspi-config nonint do_i2c 0` "
               "(or dtparam=i2c_arm=on in /boot/firmware/config.txt) and reboot")
    elif bus == 0:
        how = ("bus 0 is the HAT EEPROM bus on GPIO0/GPIO1 (pins 27/28), off by default: add "
               "dtparam=i2c_vc=on to /boot/firmware/config.txt and reboot, or wire the sensor to "
               "GPIO2/GPIO3 (pins 3/5) and use bus 1")
    else:
        how = (f"bus {bus} exists only when an overlay makes it, e.g. "
               f"dtoverlay=i2c-gpio,bus={bus},i2c_gpio_sda=23,i2c_gpio_scl=24 in /boot/firmware/config.txt "
               "(then reboot); `ls /dev/i2c-*` lists the buses there are")
    return f"/dev/i2c-{bus} is missing: {how}"


def open_bus_for(bus: int, who: str) -> Any:
    """:func:`open_bus` with the usual failures turned into :class:`DeviceNotFound`."""
    try:
        return open_bus(bus)
    except FileNotFoundError:
        raise DeviceNotFound(f"{who}: {enable_hint(bus)}") from None
    except PermissionError:
        raise DeviceNotFound(
            f"{who}: no permission to open /dev/i2c-{bus}: add the user running pibridge "
            "to the 'i2c' group (sudo usermod -aG i2c USER) or install udev/60-pibridge.rules (install.sh does)"
        ) from None
    except OSError as exc:
        raise DeviceNotFound(f"{who}: cannot open /dev/i2c-{bus}: {exc.strerror or exc}") from None


def kernel_client(bus: int, address: int) -> str | None:
    """The name of the kernel driver's device holding *address*, from sysfs, or None."""
    try:
        return (SYSFS_DEVICES / f"{bus}-{address:04x}" / "name").read_text(encoding="ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def kernel_driver_advice(bus: int, address: int) -> str:
    """What to do about an address a kernel driver has claimed (``UU`` in ``i2cdetect``, errno EBUSY).

    Raspberry Pi OS binds a kernel driver to an address when config.txt loads an overlay for
    it, typically ``dtoverlay=i2c-rtc,ds3231`` or ``dtoverlay=i2c-sensor,bme280``; while it
    holds the address, nobody else may talk to it.
    """
    device = SYSFS_DEVICES / f"{bus}-{address:04x}"
    name = kernel_client(bus, address)
    shows = f"`i2cdetect -y {bus}` shows UU there"
    if name:
        held = f"the kernel's {name!r} driver has claimed the address ({shows}; {device}/name says {name})"
        line = (
            f"the dtoverlay line that loads it (`grep -n {name} /boot/firmware/config.txt` finds it, "
            f"e.g. dtoverlay=i2c-rtc,{name} or dtoverlay=i2c-sensor,{name})"
        )
    else:
        held = f"a kernel driver has claimed the address ({shows}; `ls {SYSFS_DEVICES}/` lists {device.name})"
        line = "the dtoverlay line that loads it (such as dtoverlay=i2c-rtc,ds3231 or dtoverlay=i2c-sensor,bme280)"
    return (
        f"{held}: remove {line} from /boot/firmware/config.txt and reboot, "
        "or read the chip through that kernel driver instead"
    )


def describe_oserror(exc: OSError, bus: int, address: int) -> str:
    """One sentence saying what an errno from an I2C transfer means and what to check."""
    code = exc.errno
    text = exc.strerror or str(exc)
    where = f"0x{address:02x} on I2C bus {bus}"
    if code in NO_ACK:
        return (
            f"nothing answers at {where} ({text}, errno {code}): check the wiring "
            f"(SDA to GPIO2, SCL to GPIO3, 3.3 V and GND), the pull-up resistors and the address; "
            f"`i2cdetect -y {bus}` lists the addresses that answer"
        )
    if code == errno.EIO:
        return (
            f"I/O error at {where} (errno {code}): the transfer broke off; check for loose wires, "
            "long cables or missing pull-ups"
        )
    if code == errno.ETIMEDOUT:
        return f"timeout at {where} (errno {code}): a chip is holding the clock line low; power-cycle it"
    if code == errno.EBUSY:
        return f"{where} is busy (errno {code}): {kernel_driver_advice(bus, address)}"
    return f"error at {where}: {text} (errno {code})"


def bus_options(addresses: tuple[int, ...]) -> dict[str, Option]:
    """The ``bus`` and ``address`` options of a chip that can sit at *addresses* (first = default)."""
    choices = ", ".join(f"0x{a:02x}" for a in addresses)
    return {
        "bus": Option(int, 1, "I2C bus number (1 on every Pi since the Model B+)"),
        "address": Option(int, addresses[0], f"I2C address: {choices} (write it as 0x{addresses[0]:02x})"),
    }


class I2CDriver(Driver):
    """Base of drivers for chips on the I2C bus.

    Wiring is the same for all of them: the chip's SDA to GPIO2 (pin 3), SCL
    to GPIO3 (pin 5), VCC to 3.3 V (pin 1) and GND to ground.  Breakout
    boards carry the pull-up resistors the bus needs.

    A subclass sets :attr:`chip` and :attr:`addresses` (the first is the
    default) and implements :meth:`setup` (check the chip is the right one,
    configure it) and :meth:`measure` (one reading).  Any ``OSError`` from
    the bus becomes a :class:`DeviceNotFound` in ``open`` and a
    :class:`ReadFailed` in ``read``, with a message naming the chip, the
    address and what to check.
    """

    #: The chip's name as printed on the board, e.g. ``"BME280"``.
    chip: ClassVar[str] = ""
    #: Addresses this chip can have; ``pibridge scan`` lists chips by these.
    addresses: ClassVar[tuple[int, ...]] = ()

    retries = 1

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        address, bus = self.config["address"], self.config["bus"]
        if bus < 0:
            raise OptionError("bus", f"sensor {sensor!r}: I2C bus must be 0 or more, not {bus}")
        if self.addresses and address not in self.addresses:
            choices = " or ".join(f"0x{a:02x}" for a in self.addresses)
            raise OptionError(
                "address",
                f"sensor {sensor!r}: a {self.chip} can only be at {choices}, not 0x{address:02x}",
            )
        self._bus: Any = None

    @property
    def bus_number(self) -> int:
        return self.config["bus"]

    @property
    def address(self) -> int:
        return self.config["address"]

    def where(self) -> str:
        return f"sensor {self.sensor!r} ({self.chip} at 0x{self.address:02x} on I2C bus {self.bus_number})"

    def resources(self) -> list[str]:
        return [f"i2c:{self.bus_number}:0x{self.address:02x}"]

    def bus(self) -> str:
        return f"i2c:{self.bus_number}"

    def open(self) -> None:
        self.close()
        self._bus = open_bus_for(self.bus_number, self.where())
        try:
            self.setup()
        except OSError as exc:
            self.close()
            raise DeviceNotFound(f"{self.where()}: {describe_oserror(exc, self.bus_number, self.address)}") from None
        except BaseException:
            self.close()
            raise

    def read(self):
        if self._bus is None:
            raise DriverError(f"{self.where()}: read before open() or after close()")
        try:
            return self.measure()
        except OSError as exc:
            raise ReadFailed(f"{self.where()}: {describe_oserror(exc, self.bus_number, self.address)}") from None

    def close(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            try:
                bus.close()
            except OSError:
                pass

    @classmethod
    def identify(cls, bus: Any, address: int) -> bool | None:
        """Whether the chip at *address* on the open *bus* is this driver's chip: True or False
        when the chip can tell (an id register), None when it cannot.  ``pibridge scan`` asks;
        only reads that change nothing on the chip are allowed here."""
        return None

    def setup(self) -> None:
        """Check the chip and configure it; bus errors are turned into DeviceNotFound."""

    def measure(self) -> dict:
        raise NotImplementedError

    # Register-level helpers; all raise OSError on a bus error.

    def read_byte(self, register: int) -> int:
        return self._bus.read_byte_data(self.address, register)

    def write_byte(self, register: int, value: int) -> None:
        self._bus.write_byte_data(self.address, register, value)

    def read_block(self, register: int, length: int) -> list[int]:
        return list(self._bus.read_i2c_block_data(self.address, register, length))

    def write_block(self, register: int, data: list[int]) -> None:
        self._bus.write_i2c_block_data(self.address, register, data)

    def read_word_be(self, register: int) -> int:
        """A 16-bit register sent most significant byte first (smbus's word reads are LSB first)."""
        high, low = self.read_block(register, 2)
        return high << 8 | low

    def write_word_be(self, register: int, value: int) -> None:
        self.write_block(register, [(value >> 8) & 0xFF, value & 0xFF])

    def send(self, *data: int) -> None:
        """A plain write of command bytes, without a register address (Sensirion, BH1750)."""
        from smbus2 import i2c_msg

        self._bus.i2c_rdwr(i2c_msg.write(self.address, list(data)))

    def receive(self, length: int) -> bytes:
        """A plain read of *length* bytes, without writing a register address first."""
        from smbus2 import i2c_msg

        msg = i2c_msg.read(self.address, length)
        self._bus.i2c_rdwr(msg)
        return bytes(msg)

    def poll(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait until ``done()`` is true, checking every millisecond; ReadFailed after *timeout* s."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise ReadFailed(f"{self.where()}: {what} did not finish within {timeout * 1000:.0f} ms")
            time.sleep(0.001)
