"""DHT11, DHT22 and AM2302 temperature/humidity sensors on one GPIO pin."""

from __future__ import annotations

import functools
import threading
from typing import Any, ClassVar

from pibridge.readings import Quantity

from .. import DeviceNotFound, Driver, DriverError, Option, OptionError, ReadFailed, ValueRejected, register
from ._pins import check_pin, pin_option, require_raspberry_pi

NOT_FOUND = "DHT sensor not found"


def make_device(model: str, pin: int, use_pulseio: bool, who: str) -> Any:
    """Build the adafruit-circuitpython-dht device for BCM *pin*; *who* names the sensor in errors.

    The one place the sensor library is touched; replace it to run without a sensor.
    """
    require_raspberry_pi(who)
    import adafruit_dht
    import board

    board_pin = getattr(board, f"D{pin}")
    device_class = signed_dht11_class() if model == "DHT11" else adafruit_dht.DHT22
    return device_class(board_pin, use_pulseio=use_pulseio)


def dht11_celsius(integral: int, decimal: int) -> float:
    """A DHT11 frame's temperature from its third and fourth bytes.

    Aosong's DHT11 datasheet (the -20..60 °C parts sold today): the third byte is the whole
    degrees, the low four bits of the fourth the tenths, and bit 7 of the fourth is set below
    0 °C, so 0x05 0x83 is -5.3 °C.  Older parts send 0 in the fourth byte and never go below 0 °C.
    """
    celsius = integral + (decimal & 0x0F) / 10
    return -celsius if decimal & 0x80 else celsius


@functools.cache
def signed_dht11_class() -> type:
    """adafruit_dht's DHT11 with the sign of the temperature kept.

    The library (4.0.x) decodes a DHT11 frame as ``byte2 + (byte3 & 0x0F) / 10`` and drops the
    sign bit, so -5.3 °C comes back as 5.3 °C, and the frame is gone by the time the driver sees
    the number.  This subclass keeps the pulse train the library measured and, once the library
    has accepted the frame (checksum, length), takes the temperature from it with
    :func:`dht11_celsius`; all timing and error handling stay the library's.
    """
    import adafruit_dht

    class SignedDHT11(adafruit_dht.DHT11):
        _pulses: Any = None
        _celsius: float | None = None

        def _get_pulses_pulseio(self):
            self._pulses = super()._get_pulses_pulseio()
            return self._pulses

        def _get_pulses_bitbang(self):
            self._pulses = super()._get_pulses_bitbang()
            return self._pulses

        def measure(self) -> None:
            # The names used here are the library's internals (4.0.x); if a later version changes
            # them, the subclass steps aside and the library's own value is reported.
            attempt = getattr(self, "_last_called", None)
            super().measure()
            decode = getattr(self, "_pulses_to_binary", None)
            fresh = attempt is not None and getattr(self, "_last_called", None) != attempt
            if fresh and decode is not None and self._pulses is not None:
                # A new frame passed the library's checks; bytes 2 and 3 are bits 16-31.
                self._celsius = dht11_celsius(decode(self._pulses, 32, 48), decode(self._pulses, 48, 64))

        @property
        def temperature(self):
            self.measure()
            return self._temperature if self._celsius is None else self._celsius

    return SignedDHT11


class DHT(Driver):
    """Shared part of the DHT11 and DHT22/AM2302 drivers.

    The sensor needs a pause between measurements, and its single-wire
    protocol is timing-critical, so one read can fail with a checksum error
    or a short buffer; the driver then waits and tries again, up to
    ``attempts`` times, and refuses values the sensor cannot produce.
    """

    model: ClassVar[str] = ""
    interval: ClassVar[float] = 2.0
    temperature_range: ClassVar[tuple[float, float]] = (-40.0, 80.0)
    #: Seconds between two attempts.  The library hands back its previous reading, without
    #: measuring, when asked again within 2 s, so a retry must wait longer than that.
    retry_delay: ClassVar[float] = 2.1

    options = {
        "pin": pin_option("BCM GPIO wired to the sensor's DATA pin"),
        "attempts": Option(int, 3, "tries per read before giving up (checksum and timing errors are common)"),
        "use_pulseio": Option(bool, True, "time the signal with the libgpiod helper; false = bit-bang in Python (try it on a Pi 5)"),
    }
    provides = (
        Quantity("temperature", "°C", "air temperature"),
        Quantity("humidity", "%RH", "relative humidity"),
    )

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        check_pin(sensor, "pin", self.config["pin"])
        if not 1 <= self.config["attempts"] <= 10:
            raise OptionError("attempts", f"sensor {sensor!r}: attempts must be 1 to 10")
        self._device: Any = None
        self._closing = threading.Event()

    def where(self) -> str:
        return f"sensor {self.sensor!r} ({self.model} on GPIO{self.config['pin']})"

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    def min_interval(self) -> float:
        return self.interval

    def resources(self) -> list[str]:
        return [f"gpio:{self.config['pin']}"]

    def open(self) -> None:
        self.close()
        self._closing.clear()
        try:
            self._device = make_device(self.model, self.config["pin"], self.config["use_pulseio"],
                                       self.where())
        except DeviceNotFound:
            raise
        except Exception as exc:  # the library and Blinka raise anything from ImportError to RuntimeError
            raise DeviceNotFound(
                f"{self.where()}: cannot set up the pin ({type(exc).__name__}: {exc}); on a Pi check that "
                "adafruit-circuitpython-dht and libgpiod are installed, elsewhere use driver = \"mock\""
            ) from None

    def read(self) -> dict[str, float]:
        device = self._device
        if device is None:
            raise DriverError(f"{self.where()}: read before open() or after close()")
        problems: list[tuple[str, str]] = []  # (kind, what happened); kind: absent, io or value
        for attempt in range(self.config["attempts"]):
            if attempt and self._closing.wait(self.retry_delay):
                raise ReadFailed(f"{self.where()}: closed while retrying")
            try:
                temperature, humidity = device.temperature, device.humidity
            except RuntimeError as exc:
                problems.append(("absent" if str(exc).startswith(NOT_FOUND) else "io", str(exc)))
                continue
            except OSError as exc:
                problems.append(("io", str(exc.strerror or exc)))
                continue
            problem = self._implausible(temperature, humidity)
            if problem:
                problems.append(("value", problem))
                continue
            return {"temperature": round(float(temperature), 1), "humidity": round(float(humidity), 1)}
        raise self._give_up(problems)

    def _implausible(self, temperature: Any, humidity: Any) -> str | None:
        if temperature is None or humidity is None:
            return "no reading returned"
        low, high = self.temperature_range
        if temperature == 0 and humidity == 0:
            return "an all-zero frame (0 °C, 0 %RH), which passes the checksum but is not a measurement"
        if not low <= temperature <= high:
            return f"temperature {temperature} °C is outside the {self.model}'s range ({low:g} to {high:g} °C)"
        if not 0 <= humidity <= 100:
            return f"humidity {humidity} %RH is impossible"
        return None

    def _give_up(self, problems: list[tuple[str, str]]) -> DriverError:
        tries = f"{len(problems)} attempt{'s' if len(problems) != 1 else ''}"
        kinds = {kind for kind, _ in problems}
        if kinds == {"absent"}:
            return DeviceNotFound(
                f"{self.where()}: no answer in {tries}: check that DATA goes to GPIO{self.config['pin']}, "
                "VCC to 3.3 V, GND to ground, and that a 4.7-10 kΩ pull-up sits between DATA and VCC "
                "(boards with three pins have it)"
            )
        kind, last = problems[-1]
        if kind == "value":
            return ValueRejected(f"{self.where()}: {last} (after {tries})")
        what = "; ".join(dict.fromkeys(text for _, text in problems))
        return ReadFailed(
            f"{self.where()}: failed {tries} ({what}): keep the cable short (under 1 m for DHT11, "
            "20 m for DHT22 with a 4.7 kΩ pull-up), do not read more often than "
            f"every {self.interval:g} s, and on a Pi 5 try use_pulseio = false"
        )

    def close(self) -> None:
        self._closing.set()
        device, self._device = self._device, None
        if device is not None:
            # exit() stops the pulse-timing helper process and frees the pin.
            device.exit()


@register
class DHT11(DHT):
    """A DHT11 (blue): temperature (°C, -20-60 on current parts, 0.1 °C steps) and humidity (%RH, 20-90).

    Wire VCC to 3.3 V (pin 1), GND to ground and DATA to a GPIO (GPIO4,
    pin 7, is usual), with a 4.7-10 kΩ pull-up from DATA to 3.3 V (three-pin
    boards have it built in).  At most one reading per second.
    """

    name = "dht11"
    summary = "DHT11 temperature and humidity (one GPIO pin)"
    model = "DHT11"
    interval = 1.0
    temperature_range = (-20.0, 60.0)


@register
class DHT22(DHT):
    """A DHT22 (white) or AM2302 (the same sensor with wires): temperature (°C) and humidity (%RH).

    Wire VCC to 3.3 V (pin 1), GND to ground and DATA to a GPIO (GPIO4,
    pin 7, is usual), with a 4.7-10 kΩ pull-up from DATA to 3.3 V (the
    AM2302 and three-pin boards have it built in).  At most one reading
    every 2 seconds; 0.1 °C and 0.1 %RH steps.
    """

    name = "dht22"
    summary = "DHT22 temperature and humidity (one GPIO pin)"
    model = "DHT22"
    interval = 2.0
    temperature_range = (-40.0, 80.0)


@register
class AM2302(DHT22):
    """The AM2302: a DHT22 in a case with wires and the pull-up built in (red VCC, yellow DATA, black GND)."""

    name = "am2302"
    summary = "AM2302 (wired DHT22) temperature and humidity (one GPIO pin)"
