"""What the GPIO drivers share: the ``pin`` options and gpiozero's errors turned into advice.

Pins are BCM GPIO numbers (``pin = 17`` is GPIO17 on physical pin 11), as
gpiozero numbers them.  gpiozero picks its pin library itself (lgpio on
current Raspberry Pi OS); tests set ``gpiozero.Device.pin_factory`` to a
``MockFactory``.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .. import DeviceNotFound, Option, OptionError

PULL_HELP = 'true = internal pull-up (switch to GND), false = pull-down (switch to 3.3 V), "off" = none (the device drives the line)'


#: Where the kernel tells which board this is; a Raspberry Pi's says "Raspberry Pi ...".
MODEL_FILES = (Path("/proc/device-tree/model"), Path("/sys/firmware/devicetree/base/model"))


def board_model() -> str | None:
    """The device tree's model string ("Raspberry Pi 4 Model B Rev 1.4"), or None without one."""
    for path in MODEL_FILES:
        try:
            return path.read_bytes().rstrip(b"\x00\n").decode("ascii", "replace")
        except OSError:
            continue
    return None


def require_raspberry_pi(who: str) -> None:
    """Raise :class:`DeviceNotFound` on a machine without a Pi's GPIO header.

    Blinka (under the DHT library) prints "GENERIC_X86 is not fully supported" on a laptop and
    then fails with an AttributeError; asking the device tree first gives the reason instead.
    """
    model = board_model()
    if model is None or "raspberry pi" not in model.lower():
        seen = f" (this is {model!r})" if model else " (this is not a Raspberry Pi)"
        raise DeviceNotFound(
            f"{who}: no GPIO header here{seen}; to try pibridge on this machine use driver = \"mock\""
        )


class OnePin:
    """Mixed into a driver on the single GPIO its ``pin`` option names: how it is named and claimed."""

    config: dict
    sensor: str

    @property
    def pin(self) -> int:
        return self.config["pin"]

    def where(self) -> str:
        return f"sensor {self.sensor!r} (GPIO{self.pin})"

    def resources(self) -> list[str]:
        return [f"gpio:{self.pin}"]


def pin_option(help_: str = "BCM GPIO number (GPIO17 = physical pin 11)") -> Option:
    return Option(int, help=help_)


def check_pin(sensor: str, key: str, pin: int) -> None:
    if not 0 <= pin <= 27:
        raise OptionError(
            key, f"sensor {sensor!r}: {key} = {pin} is not a GPIO of the 40-pin header; use a BCM number 0..27"
        )


def pull_up_argument(sensor: str, value: bool | str) -> bool | None:
    """gpiozero's ``pull_up`` for the config's ``pull_up`` (true, false or "off")."""
    if isinstance(value, bool):
        return value
    if value.lower() in ("off", "none", "floating"):
        return None
    raise OptionError("pull_up", f'sensor {sensor!r}: pull_up must be true, false or "off", not {value!r}')


def check_bounce(sensor: str, value: float | None) -> None:
    if value is not None and not 0 < value <= 10:
        raise OptionError("bounce_time", f"sensor {sensor!r}: bounce_time is in seconds, between 0 and 10 (e.g. 0.05)")


@contextmanager
def gpio_errors(who: str, pins: str) -> Iterator[None]:
    """Turn gpiozero's failures while claiming *pins* into :class:`DeviceNotFound` with advice."""
    from gpiozero.exc import BadPinFactory, GPIOPinInUse, GPIOZeroError

    try:
        yield
    except BadPinFactory:
        raise DeviceNotFound(
            f"{who}: no GPIO access on this machine (no pin library such as lgpio found); "
            "on a Raspberry Pi install python3-lgpio, elsewhere use driver = \"mock\""
        ) from None
    except GPIOPinInUse:
        raise DeviceNotFound(f"{who}: {pins} is already in use by another sensor or program") from None
    except PermissionError:
        raise DeviceNotFound(
            f"{who}: no permission to use {pins}: add the user running pibridge to the 'gpio' group "
            "(sudo usermod -aG gpio USER) or install udev/60-pibridge.rules (install.sh does)"
        ) from None
    except (GPIOZeroError, OSError, ValueError) as exc:
        raise DeviceNotFound(f"{who}: cannot use {pins}: {exc}") from None


def open_input(who: str, pin: int, pull_up: bool | None, bounce_time: float | None, active_high: bool = True) -> Any:
    """A gpiozero ``DigitalInputDevice`` on GPIO *pin*, its failures turned into advice.

    With a pull (``pull_up`` true or false) gpiozero takes the level opposite
    the pull as active and refuses an ``active_state``; a floating input
    (``pull_up`` None) has no such default, so *active_high* says which level
    is active there.
    """
    with gpio_errors(who, f"GPIO{pin}"):
        from gpiozero import DigitalInputDevice

        return DigitalInputDevice(
            pin, pull_up=pull_up, active_state=None if pull_up is not None else active_high, bounce_time=bounce_time
        )
