"""HC-SR04 ultrasonic distance sensor on two GPIO pins."""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

from pibridge.readings import Quantity

from .. import DeviceNotFound, Driver, DriverError, Option, OptionError, ReadFailed, ValueRejected, register
from ._pins import check_pin, gpio_errors, pin_option

#: Two HC-SR04s pinging at once hear each other; one ping at a time across all of them.
_PING_LOCK = threading.Lock()
#: The module's data sheet asks for at least 60 ms between measurements.
PING_GAP = 0.06
ECHO_TIMEOUT = 0.1


@register
class HCSR04(Driver):
    """An HC-SR04 ultrasonic distance sensor: distance to the nearest object, in cm.

    Wire VCC to 5 V (pin 2), GND to ground, TRIG to the ``trigger`` GPIO and
    ECHO to the ``echo`` GPIO **through a voltage divider** (ECHO is 5 V;
    e.g. 1 kΩ from ECHO to the pin and 2 kΩ from the pin to GND), or use the
    3.3 V HC-SR04P variant directly.

    Each read takes ``samples`` pings 60 ms apart and reports their median,
    corrected for the speed of sound at ``air_temperature``.  Nothing within
    ``max_distance`` (the module reaches about 4 m) and a missing echo are
    reported as errors rather than as a distance.
    """

    name = "hcsr04"
    summary = "HC-SR04 ultrasonic distance in cm (GPIO trigger + echo)"
    options = {
        "trigger": pin_option("BCM GPIO wired to TRIG"),
        "echo": pin_option("BCM GPIO wired to ECHO (through a 5 V -> 3.3 V divider)"),
        "max_distance": Option(float, 4.0, "farthest distance to report, in metres"),
        "samples": Option(int, 3, "pings per read; the median is reported"),
        "air_temperature": Option(float, 20.0, "air temperature in °C, for the speed of sound"),
    }
    provides = (Quantity("distance", "cm", "distance to the nearest object"),)

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        check_pin(sensor, "trigger", self.config["trigger"])
        check_pin(sensor, "echo", self.config["echo"])
        if self.config["trigger"] == self.config["echo"]:
            raise OptionError("echo", f"sensor {sensor!r}: trigger and echo must be different pins")
        if not 0.02 < self.config["max_distance"] <= 10:
            raise OptionError("max_distance", f"sensor {sensor!r}: max_distance is in metres, 0.02 to 10")
        if not 1 <= self.config["samples"] <= 15:
            raise OptionError("samples", f"sensor {sensor!r}: samples must be 1 to 15")
        self.speed_of_sound = 331.3 + 0.606 * self.config["air_temperature"]
        self._trigger: Any = None
        self._echo: Any = None
        self._edge = threading.Event()
        self._rise: float | None = None
        self._fall: float | None = None

    def where(self) -> str:
        return f"sensor {self.sensor!r} (HC-SR04, trigger GPIO{self.config['trigger']}, echo GPIO{self.config['echo']})"

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    def min_interval(self) -> float:
        return PING_GAP * self.config["samples"]

    def resources(self) -> list[str]:
        return [f"gpio:{self.config['trigger']}", f"gpio:{self.config['echo']}"]

    def open(self) -> None:
        self.close()
        pins = f"GPIO{self.config['trigger']}/GPIO{self.config['echo']}"
        try:
            with gpio_errors(self.where(), pins):
                from gpiozero import DigitalOutputDevice, InputDevice

                self._trigger = DigitalOutputDevice(self.config["trigger"], initial_value=False)
                self._echo = InputDevice(self.config["echo"], pull_up=False)
                self._echo.pin.edges = "both"
                self._echo.pin.when_changed = self._changed
        except DeviceNotFound:
            self.close()
            raise

    def _changed(self, ticks: float, state: bool) -> None:
        # Runs in the pin library's thread with the edge's own timestamp.
        if state:
            self._rise = ticks
        elif self._rise is not None:
            self._fall = ticks
            self._edge.set()

    def _ping(self) -> float:
        self._rise = self._fall = None
        self._edge.clear()
        self._trigger.on()
        time.sleep(0.00001)
        self._trigger.off()
        if not self._edge.wait(ECHO_TIMEOUT):
            raise ReadFailed(
                f"{self.where()}: no echo within {ECHO_TIMEOUT * 1000:.0f} ms: check that TRIG and ECHO are "
                "not swapped, the module has 5 V, and the ECHO divider is connected"
            )
        seconds = self._echo.pin_factory.ticks_diff(self._fall, self._rise)
        return seconds * self.speed_of_sound / 2.0

    def read(self) -> dict[str, float]:
        if self._trigger is None:
            raise DriverError(f"{self.where()}: read before open() or after close()")
        distances = []
        with _PING_LOCK:
            for n in range(self.config["samples"]):
                if n:
                    time.sleep(PING_GAP)
                distances.append(self._ping())
        metres = statistics.median(distances)
        if metres > self.config["max_distance"]:
            raise ValueRejected(
                f"{self.where()}: nothing within max_distance = {self.config['max_distance']} m "
                f"(echo says {metres:.2f} m); the sensor may be pointing at open space or a soft surface"
            )
        if metres < 0.02:
            raise ValueRejected(f"{self.where()}: {metres * 100:.1f} cm is closer than the sensor can measure (2 cm)")
        return {"distance": round(metres * 100.0, 1)}

    def close(self) -> None:
        for attr in ("_echo", "_trigger"):
            device = getattr(self, attr)
            setattr(self, attr, None)
            if device is not None:
                device.close()
