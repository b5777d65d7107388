"""What every serial-port driver shares: opening the port with pyserial, the
``port`` and ``baud`` options, and turning the kernel's errors into advice.

All port access goes through :func:`open_serial`, so a test can hand the
driver another port (a pseudo-terminal) or a stand-in.
"""

from __future__ import annotations

import errno
import os
from typing import Any, ClassVar

from .. import DeviceNotFound, Driver, DriverError, Option, OptionError

#: Where the kernel's command line says which port carries the serial console.
CMDLINE = "/proc/cmdline"
#: How long one read of the port waits for the first byte; bounds how fast a read of it ends.
READ_TIMEOUT = 0.1
BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
DEFAULT_PORT = "/dev/serial0"
#: The Pi 5's debug header, where /dev/serial0 points on that model.
PI5_DEBUG_UART = "/dev/ttyAMA10"

PORT_ADVICE = (
    "the UART on GPIO14/15 (pins 8 and 10) is /dev/serial0 on a Pi 1 to 4 and /dev/ttyAMA0 on a Pi 5 "
    "(where /dev/serial0 is the debug header); a USB adapter is /dev/ttyUSB0"
)


def open_serial(port: str, baudrate: int) -> Any:
    """Open *port* at *baudrate*, 8N1, with a short read timeout, and return a ``serial.Serial``.

    ``exclusive`` locks the port so a second program cannot read half the
    bytes.  This is the one place hardware is touched.
    """
    import serial

    return serial.Serial(port, baudrate=baudrate, bytesize=8, parity="N", stopbits=1, timeout=READ_TIMEOUT,
                         write_timeout=1.0, exclusive=True)


def enable_hint(port: str) -> str:
    return (
        f"{port} does not exist: enable the UART with `sudo raspi-config nonint do_serial_hw 0` "
        f"(or enable_uart=1 in /boot/firmware/config.txt) and reboot; {PORT_ADVICE}"
    )


def console_on(port: str, cmdline: str | None = None) -> str | None:
    """The ``console=`` device of the kernel command line that is *port*, or None.

    A login console on the sensor's port answers its bytes with prompts and
    swallows what the sensor sends.
    """
    try:
        with open(cmdline or CMDLINE, encoding="utf-8", errors="replace") as f:
            words = f.read().split()
    except OSError:
        return None
    target = os.path.realpath(port)
    for word in words:
        if word.startswith("console="):
            name = word[len("console="):].split(",")[0]
            device = name if name.startswith("/") else f"/dev/{name}"
            if os.path.realpath(device) == target:
                return name
    return None


def describe_port(port: str) -> str:
    """*port*, and where it points when it is a link such as /dev/serial0."""
    real = os.path.realpath(port)
    if real == port:
        return port
    note = ", the Pi 5 debug header" if real == PI5_DEBUG_UART else ""
    return f"{port} (-> {real}{note})"


def port_options(baud: int) -> dict[str, Option]:
    """The ``port`` and ``baud`` options of a device that talks at *baud* by default."""
    return {
        "port": Option(str, DEFAULT_PORT, "serial port: /dev/serial0 (Pi 1-4), /dev/ttyAMA0 (Pi 5 GPIO14/15), /dev/ttyUSB0"),
        "baud": Option(int, baud, f"bits per second (this device: {baud})"),
    }


class SerialDriver(Driver):
    """Base of drivers for devices on a serial port.

    A subclass sets :attr:`device_name` and implements :meth:`setup`
    (configure the device, check it answers) and :meth:`measure`.  Opening
    checks that the port exists, may be opened, is not in use and carries no
    login console.  An ``OSError`` while talking (a USB adapter pulled
    out) becomes a :class:`DeviceNotFound` naming the port, so the bridge
    closes the driver and opens the port again on the next read.
    """

    #: The device's name as sold, e.g. ``"PMS5003"``.
    device_name: ClassVar[str] = ""

    retries = 1

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        if not self.config["port"].startswith("/"):
            raise OptionError(
                "port", f"sensor {sensor!r}: port must be a device path such as /dev/serial0, not {self.config['port']!r}"
            )
        if self.config["baud"] not in BAUD_RATES:
            raise OptionError("baud", f"sensor {sensor!r}: baud must be one of {', '.join(map(str, BAUD_RATES))}")
        self._serial: Any = None

    @property
    def port(self) -> str:
        return self.config["port"]

    def where(self) -> str:
        return f"sensor {self.sensor!r} ({self.device_name} on {self.port})"

    def resources(self) -> list[str]:
        return [f"serial:{os.path.realpath(self.port)}"]

    def bus(self) -> str:
        return f"serial:{os.path.realpath(self.port)}"

    def open(self) -> None:
        self.close()
        console = console_on(self.port)
        if console is not None:
            raise DeviceNotFound(
                f"{self.where()}: the kernel's serial console (console={console} in {CMDLINE}) is on this port: "
                "turn it off with `sudo raspi-config nonint do_serial_cons 1` and reboot"
            )
        self._serial = self._open_port()
        try:
            self.setup()
        except OSError as exc:
            self.close()
            raise DeviceNotFound(f"{self.where()}: {exc.strerror or exc}") from None
        except BaseException:
            self.close()
            raise

    def _open_port(self) -> Any:
        port = self.port
        try:
            return open_serial(port, self.config["baud"])
        except ImportError:
            raise DeviceNotFound(
                f"{self.where()}: the pyserial package is missing: install pibridge with its dependencies "
                "(pip install pyserial)"
            ) from None
        except OSError as exc:  # serial.SerialException is an OSError carrying the errno
            code = exc.errno
            if code == errno.ENOENT:
                raise DeviceNotFound(f"{self.where()}: {enable_hint(port)}") from None
            if code == errno.EACCES:
                raise DeviceNotFound(
                    f"{self.where()}: no permission to open {port}: add the user running pibridge to the 'dialout' "
                    "group (sudo usermod -aG dialout USER) or install udev/60-pibridge.rules (install.sh does)"
                ) from None
            if code in (errno.EBUSY, errno.EAGAIN):
                raise DeviceNotFound(
                    f"{self.where()}: {port} is in use by another program (a getty, ModemManager, another "
                    f"pibridge sensor?): `sudo fuser -v {os.path.realpath(port)}` shows which"
                ) from None
            raise DeviceNotFound(f"{self.where()}: cannot open {port}: {exc}") from None

    def read(self):
        if self._serial is None:
            raise DriverError(f"{self.where()}: read before open() or after close()")
        try:
            return self.measure()
        except OSError as exc:
            raise DeviceNotFound(self.port_failed(exc)) from None

    def close(self) -> None:
        self.teardown()
        port, self._serial = self._serial, None
        if port is not None:
            try:
                port.close()
            except OSError:
                pass

    def port_failed(self, exc: OSError) -> str:
        """The message for a port that stopped working (a USB adapter pulled out): the bridge
        closes the driver on DeviceNotFound and opens the port again on the next read."""
        return f"{self.where()}: the serial port failed ({exc}); it is opened again on the next read"

    def silence_advice(self) -> str:
        """What to check when nothing comes from the device."""
        return (
            f"check the wiring (the sensor's TX to RXD GPIO15 pin 10, its RX to TXD GPIO14 pin 8, GND) and its "
            f"power; {describe_port(self.port)} is the port read: {PORT_ADVICE}"
        )

    def setup(self) -> None:
        """Configure the device; OSErrors are turned into DeviceNotFound."""

    def teardown(self) -> None:
        """Undo :meth:`setup` (stop threads); called by close(), also after a failed open."""

    def measure(self) -> dict:
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        self._serial.write(data)
        self._serial.flush()
