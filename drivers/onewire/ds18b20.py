"""DS18B20 (and other Maxim 1-Wire thermometers) through the kernel's w1 sysfs interface."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, ClassVar

from pibridge.readings import Quantity

from .. import DeviceNotFound, Driver, DriverError, Option, OptionError, ReadFailed, ValueRejected, register
from .._crc import maxim_crc8
from ._scratchpad import FAMILIES, NoMeasurement, Thermometer, thermometer

DEFAULT_ROOT = "/sys/bus/w1/devices"
#: 1-Wire family codes of thermometers the kernel's w1_therm module reads
THERMOMETER_FAMILIES = tuple(FAMILIES)
ENABLE_HINT = (
    "enable 1-Wire: add dtoverlay=w1-gpio (data on GPIO4, pin 7; gpiopin=N for another) to "
    "/boot/firmware/config.txt and reboot, with a 4.7 kΩ pull-up between DATA and 3.3 V"
)


@register
class DS18B20(Driver):
    """A DS18B20 waterproof probe or TO-92 chip: temperature in °C.

    Wire red to 3.3 V (pin 1), black to GND, yellow (DATA) to GPIO4 (pin 7)
    and put a 4.7 kΩ resistor between DATA and 3.3 V.  Enable the bus with
    ``dtoverlay=w1-gpio`` in /boot/firmware/config.txt.  Several probes can
    share the three wires; give each sensor its ``device_id`` (the
    ``28-...`` names in /sys/bus/w1/devices).  With one probe on the bus
    ``device_id`` can be left out.

    The temperature comes from the scratchpad bytes at the chip's full
    resolution (1/16 °C on a DS18B20).  Readings whose CRC fails, the
    85 °C power-on value (recognised by the scratchpad's byte 6, so a real
    85 °C is reported) and an all-zero scratchpad (a probe losing power)
    are refused instead of reported.  DS18S20, DS1822, DS1825, DS28EA00 and
    MAX31850 thermocouple interfaces work too, each with its own range; a
    MAX31850's open or shorted thermocouple is reported as such.
    """

    name = "ds18b20"
    summary = "DS18B20 1-Wire temperature probe (kernel w1 driver)"
    options = {
        "device_id": Option(str, "", "the probe's id, e.g. 28-0316a2790d2e (may be left out with one probe)"),
        "sysfs_root": Option(str, DEFAULT_ROOT, "where the kernel lists 1-Wire devices"),
    }
    provides = (Quantity("temperature", "°C", "temperature at the probe"),)
    retries = 2
    #: 1-Wire family codes this driver reads (the ``xx-`` of the device ids).
    families: ClassVar[tuple[str, ...]] = THERMOMETER_FAMILIES
    example_id: ClassVar[str] = "28-0316a2790d2e"
    device_kind: ClassVar[str] = "1-Wire thermometer"

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        device_id = self.config["device_id"]
        if device_id and not device_id.lower().startswith(tuple(f + "-" for f in self.families)):
            raise OptionError(
                "device_id",
                f"sensor {sensor!r}: {device_id!r} is not a {self.device_kind} id; they look like {self.example_id}",
            )
        self._device_id = device_id
        self._file: Path | None = None

    @property
    def root(self) -> Path:
        return Path(self.config["sysfs_root"])

    def where(self) -> str:
        return f"sensor {self.sensor!r} (1-Wire {self._device_id or 'thermometer'})"

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    def min_interval(self) -> float:
        return 0.75  # one 12-bit conversion

    def resources(self) -> list[str]:
        return [f"w1:{self.config['device_id'] or 'auto'}"]

    def bus(self) -> str:
        # The kernel runs one conversion (750 ms) on the 1-Wire bus at a time anyway: several probes
        # read by one thread wait there instead of holding up the threads of the other sensors.
        return "w1"

    def present_ids(self) -> list[str]:
        """Thermometer ids the kernel lists, from every bus master's w1_master_slaves (or the folder)."""
        ids: list[str] = []
        for listing in sorted(self.root.glob("w1_bus_master*/w1_master_slaves")):
            try:
                ids += listing.read_text(encoding="ascii").split()
            except OSError:
                continue
        if not ids:
            ids = [p.name for p in self.root.iterdir() if "-" in p.name]
        return sorted({i for i in ids if i.lower().startswith(tuple(f + "-" for f in self.families))})

    def open(self) -> None:
        if not self.root.is_dir():
            raise DeviceNotFound(f"{self.where()}: {self.root} does not exist: {ENABLE_HINT}")
        found = self.present_ids()
        if not self.config["device_id"]:
            if len(found) != 1:
                problem = "no thermometer is listed" if not found else f"several probes are listed: {', '.join(found)}"
                raise DeviceNotFound(
                    f"{self.where()}: {problem} on the 1-Wire bus; "
                    + ("set device_id to the one this sensor is" if found else f"check the wiring; {ENABLE_HINT}")
                )
            self._device_id = found[0]
        path = self.root / self._device_id / "w1_slave"
        if not path.exists():
            listed = ", ".join(found) or "none"
            raise DeviceNotFound(
                f"{self.where()}: not on the 1-Wire bus (listed: {listed}); check the probe's wiring and the "
                "4.7 kΩ pull-up, and the id in the config"
            )
        self._file = path

    def read(self) -> dict[str, float]:
        if self._file is None:
            raise DriverError(f"{self.where()}: read before open() or after close()")
        try:
            text = self._file.read_text(encoding="ascii")
        except FileNotFoundError:
            raise DeviceNotFound(f"{self.where()}: the probe has left the 1-Wire bus; check its wiring") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ReadFailed(f"{self.where()}: reading {self._file} failed: {exc}") from None
        return self.values(self.scratchpad(text))

    def values(self, pad: bytes) -> dict[str, float]:
        """The reading from a checked scratchpad."""
        kind = thermometer(self._device_id[:2].lower(), pad)
        return {"temperature": self.checked(kind, kind.celsius, pad)}

    def checked(self, kind: Thermometer, decode: Callable[[bytes], float], pad: bytes) -> float:
        """*decode* (pad) in °C, refused when the chip says it is no measurement or it is outside *kind*'s range."""
        try:
            celsius = decode(pad)
        except NoMeasurement as exc:
            error = ReadFailed if exc.retry else ValueRejected
            raise error(f"{self.where()}: {exc}") from None
        if not kind.low <= celsius <= kind.high:
            raise ValueRejected(
                f"{self.where()}: {celsius} °C is outside the {kind.name}'s range ({kind.low:g} to {kind.high:g} °C)"
            )
        return celsius

    def scratchpad(self, text: str) -> bytes:
        """The nine scratchpad bytes from the first line of ``w1_slave``, the bytes just read::

            91 01 4b 46 7f ff 0f 10 25 : crc=25 YES
            91 01 4b 46 7f ff 0f 10 25 t=25062

        The second line repeats the last good bytes with the kernel's own figure, truncated to
        whole millidegrees (25.0625 °C above); the bytes themselves carry the full resolution.
        """
        if not text.strip():
            raise ReadFailed(
                f"{self.where()}: the kernel returned no reading: the conversion failed its own check "
                "(85 °C power-on value with the conversion check enabled) or the bus was busy"
            )
        lines = text.strip().splitlines()
        if len(lines) != 2 or "crc=" not in lines[0]:
            raise ReadFailed(f"{self.where()}: unexpected w1_slave contents {text[:80]!r}")
        head, _, verdict = lines[0].partition(" : ")
        if not verdict.strip().endswith("YES"):
            raise ReadFailed(
                f"{self.where()}: CRC mismatch ({verdict.strip()}): noise on the 1-Wire line; check the "
                "4.7 kΩ pull-up, shorten or twist the cable, avoid parasite power on long runs"
            )
        try:
            pad = bytes.fromhex(head)
        except ValueError:
            raise ReadFailed(f"{self.where()}: unexpected w1_slave contents {text[:80]!r}") from None
        if len(pad) != 9 or maxim_crc8(pad[:8]) != pad[8]:
            raise ReadFailed(f"{self.where()}: the scratchpad {head.strip()} fails its CRC")
        if not any(pad):
            raise ReadFailed(
                f"{self.where()}: the probe answered with all zeros: it lost power during the read; "
                "check the 3.3 V wire"
            )
        return pad

    def close(self) -> None:
        self._file = None
