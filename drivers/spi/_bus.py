"""What every SPI chip driver shares: opening ``/dev/spidevB.C``, setting the
mode and clock, and turning the kernel's errors into advice.

All bus access goes through :func:`open_device`, so a test can put a
stand-in for ``spidev.SpiDev`` in its place.  SPI has no acknowledge: a chip
that is not wired answers with whatever the MISO line floats to (all ones or
all zeros), so each driver checks its chip's fixed bits to tell.
"""

from __future__ import annotations

import errno
from typing import Any, ClassVar

from .. import DeviceNotFound, Driver, DriverError, Option, OptionError, ReadFailed

#: chip select -> (GPIO, header pin) on SPI0
CHIP_SELECTS = {0: ("GPIO8", 24), 1: ("GPIO7", 26)}


def open_device(bus: int, device: int) -> Any:
    """Open ``/dev/spidev<bus>.<device>`` and return a ``spidev.SpiDev``.

    This is the one place hardware is touched; replace it to run without a Pi.
    """
    from spidev import SpiDev

    spi = SpiDev()
    try:
        spi.open(bus, device)
    except BaseException:
        spi.close()
        raise
    return spi


def device_path(bus: int, device: int) -> str:
    return f"/dev/spidev{bus}.{device}"


def enable_hint(bus: int, device: int) -> str:
    if bus == 0:
        how = "enable SPI with `sudo raspi-config nonint do_spi 0` (or dtparam=spi=on in /boot/firmware/config.txt)"
    else:
        how = f"SPI{bus} needs its overlay: add dtoverlay=spi{bus}-1cs (or -2cs, -3cs) to /boot/firmware/config.txt"
    return f"{device_path(bus, device)} is missing: {how} and reboot"


def open_device_for(bus: int, device: int, who: str) -> Any:
    """:func:`open_device` with the usual failures turned into :class:`DeviceNotFound`."""
    path = device_path(bus, device)
    try:
        return open_device(bus, device)
    except ImportError:
        raise DeviceNotFound(
            f"{who}: the spidev package is missing: install pibridge with its dependencies (pip install spidev)"
        ) from None
    except FileNotFoundError:
        raise DeviceNotFound(f"{who}: {enable_hint(bus, device)}") from None
    except PermissionError:
        raise DeviceNotFound(
            f"{who}: no permission to open {path}: add the user running pibridge to the 'spi' group "
            "(sudo usermod -aG spi USER) or install udev/60-pibridge.rules (install.sh does)"
        ) from None
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise DeviceNotFound(f"{who}: {enable_hint(bus, device)}") from None
        raise DeviceNotFound(f"{who}: cannot open {path}: {exc.strerror or exc}") from None


def spi_options(mode: int, max_speed_hz: int) -> dict[str, Option]:
    """The ``bus``, ``device``, ``mode`` and ``max_speed_hz`` options, with a chip's own defaults."""
    return {
        "bus": Option(int, 0, "SPI bus number (0: the header's SPI0 pins)"),
        "device": Option(int, 0, "chip select: 0 = CE0 (GPIO8, pin 24), 1 = CE1 (GPIO7, pin 26)"),
        "mode": Option(int, mode, f"SPI mode 0..3 (clock polarity and phase; this chip: {mode})"),
        "max_speed_hz": Option(int, max_speed_hz, f"SPI clock in Hz (this chip: at most {max_speed_hz})"),
    }


class SPIDriver(Driver):
    """Base of drivers for chips on the SPI bus.

    Wiring is the same for all of them: the chip's clock (SCK/CLK) to
    GPIO11 (pin 23), its data out (SDO/DOUT/MISO) to GPIO9 (pin 21), its data
    in (SDI/DIN/MOSI) to GPIO10 (pin 19), its chip select (CS) to CE0
    (GPIO8, pin 24) or CE1 (GPIO7, pin 26), VCC to 3.3 V (pin 17) and GND to
    ground.  The ``device`` option is the chip select it is on.

    A subclass sets :attr:`chip` and :attr:`modes` (the SPI modes the chip
    accepts) and implements :meth:`setup` (check the chip answers, configure
    it) and :meth:`measure`.  An ``OSError`` from a transfer becomes a
    :class:`DeviceNotFound` in ``open`` and a :class:`ReadFailed` in
    ``read``, naming the chip, the device file and what to check.
    """

    chip: ClassVar[str] = ""
    #: SPI modes the chip works in (clock polarity, phase): its datasheet's timing diagram.
    modes: ClassVar[tuple[int, ...]] = (0,)

    retries = 1

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        bus, device, mode, speed = (self.config[k] for k in ("bus", "device", "mode", "max_speed_hz"))
        if bus < 0:
            raise OptionError("bus", f"sensor {sensor!r}: SPI bus must be 0 or more, not {bus}")
        if device < 0:
            raise OptionError("device", f"sensor {sensor!r}: the chip select must be 0 or more, not {device}")
        if mode not in self.modes:
            allowed = " or ".join(map(str, self.modes))
            raise OptionError("mode", f"sensor {sensor!r}: a {self.chip} works in SPI mode {allowed}, not {mode}")
        if speed <= 0:
            raise OptionError("max_speed_hz", f"sensor {sensor!r}: max_speed_hz must be positive, not {speed}")
        self._spi: Any = None

    @property
    def bus_number(self) -> int:
        return self.config["bus"]

    @property
    def device(self) -> int:
        return self.config["device"]

    def where(self) -> str:
        return f"sensor {self.sensor!r} ({self.chip} on {device_path(self.bus_number, self.device)})"

    def wiring_hint(self) -> str:
        gpio, pin = CHIP_SELECTS.get(self.device, ("its chip select", "?"))
        return (
            f"check the wiring: MISO to GPIO9 (pin 21), MOSI to GPIO10 (pin 19), SCLK to GPIO11 (pin 23), "
            f"CS to {gpio} (pin {pin}), 3.3 V and GND"
        )

    def resources(self) -> list[str]:
        return [f"spi:{self.bus_number}.{self.device}"]

    def bus(self) -> str:
        # The chips behind the chip selects of one controller share its clock and data lines.
        return f"spi:{self.bus_number}"

    def open(self) -> None:
        self.close()
        self._spi = open_device_for(self.bus_number, self.device, self.where())
        try:
            self._spi.mode = self.config["mode"]
            self._spi.max_speed_hz = self.config["max_speed_hz"]
            self.setup()
        except OSError as exc:
            self.close()
            raise DeviceNotFound(f"{self.where()}: {self.describe_oserror(exc)}") from None
        except BaseException:
            self.close()
            raise

    def read(self):
        if self._spi is None:
            raise DriverError(f"{self.where()}: read before open() or after close()")
        try:
            return self.measure()
        except OSError as exc:
            raise ReadFailed(f"{self.where()}: {self.describe_oserror(exc)}") from None

    def close(self) -> None:
        spi, self._spi = self._spi, None
        if spi is not None:
            try:
                spi.close()
            except OSError:
                pass

    def describe_oserror(self, exc: OSError) -> str:
        text = exc.strerror or str(exc)
        if exc.errno == errno.EINVAL:
            return (
                f"the SPI controller refused the transfer ({text}, errno {exc.errno}): "
                f"check mode = {self.config['mode']} and max_speed_hz = {self.config['max_speed_hz']}"
            )
        return f"SPI transfer failed: {text} (errno {exc.errno})"

    def setup(self) -> None:
        """Check the chip answers and configure it; OSErrors are turned into DeviceNotFound."""

    def measure(self) -> dict:
        raise NotImplementedError

    def transfer(self, data: list[int]) -> list[int]:
        """Send *data* with chip select held low for the whole transfer; return what came back."""
        return list(self._spi.xfer2(list(data)))
