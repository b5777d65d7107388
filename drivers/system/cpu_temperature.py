"""The Raspberry Pi's own processor temperature."""

from __future__ import annotations

from pibridge.readings import Quantity

from .. import DeviceNotFound, Driver, Option, ReadFailed, ValueRejected, register

DEFAULT_PATH = "/sys/class/thermal/thermal_zone0/temp"


@register
class CPUTemperature(Driver):
    """The temperature of the Pi's processor, in °C.  Nothing to wire.

    Read from the kernel's thermal zone (the same file gpiozero's
    ``CPUTemperature`` reads), in thousandths of a degree.  Above about
    80 °C the Pi slows itself down: a heatsink or fan helps.
    """

    name = "cpu_temperature"
    summary = "the Pi's processor temperature (no wiring)"
    options = {"path": Option(str, DEFAULT_PATH, "file with the temperature in millidegrees Celsius")}
    provides = (Quantity("temperature", "°C", "processor temperature"),)

    def where(self) -> str:
        return f"sensor {self.sensor!r} (CPU temperature, {self.config['path']})"

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    def open(self) -> None:
        self._read_text(DeviceNotFound)

    def _read_text(self, error: type) -> str:
        try:
            with open(self.config["path"], encoding="ascii") as f:
                return f.read()
        except FileNotFoundError:
            raise error(
                f"{self.where()}: the file does not exist; this machine exposes no thermal zone there "
                "(on a Pi it is /sys/class/thermal/thermal_zone0/temp)"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise error(f"{self.where()}: cannot read it: {exc}") from None

    def read(self) -> dict[str, float]:
        text = self._read_text(ReadFailed).strip()
        try:
            millidegrees = int(text)
        except ValueError:
            raise ReadFailed(f"{self.where()}: expected a number of millidegrees, got {text[:40]!r}") from None
        celsius = millidegrees / 1000.0
        if not -40.0 <= celsius <= 125.0:
            raise ValueRejected(f"{self.where()}: {celsius} °C is not a possible processor temperature")
        return {"temperature": round(celsius, 2)}
