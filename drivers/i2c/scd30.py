"""Sensirion SCD30: CO2 (dual-channel NDIR), temperature and humidity over I2C."""

from __future__ import annotations

import math
import struct
import time

from pibridge.readings import Quantity

from .. import DeviceNotFound, Option, OptionError, ReadFailed, ValueRejected, register
from .._ambient import PRESSURE, Ambient, Compensates, compensate_from_option
from ._bus import bus_options
from ._sensirion import SensirionDriver, check_co2_compensation

# Commands, SCD30 Interface Description (version 1.0, May 2020), section 1.4.
TRIGGER_CONTINUOUS = 0x0010  # argument: ambient pressure in mbar (= hPa), 0 = no compensation
STOP_CONTINUOUS = 0x0104
MEASUREMENT_INTERVAL = 0x4600
GET_DATA_READY = 0x0202
READ_MEASUREMENT = 0x0300
AUTOMATIC_SELF_CALIBRATION = 0x5306
TEMPERATURE_OFFSET = 0x5403  # in ticks of 0.01 K
ALTITUDE = 0x5102
FIRMWARE_VERSION = 0xD100

#: Section 1.1: wait at least 3 ms between a command and reading its answer.
ANSWER_SECONDS = 0.003

CO2_MAX = 40000.0  # measurement range, SCD30 datasheet section 1.1
OPERATING_T = (-40.0, 70.0)  # operating conditions, datasheet section 1.3

CLOCK_STRETCH_HINT = (
    "on a Raspberry Pi this is usually the SCD30 stretching the I2C clock, which the Pi's I2C "
    "controller does not handle: set dtparam=i2c_arm_baudrate=10000 in /boot/firmware/config.txt "
    "or use the i2c-gpio overlay (docs/troubleshooting.md, \"SCD30\")"
)


@register
class SCD30(Compensates, SensirionDriver):
    """An SCD30 module: CO2 (ppm), temperature (°C) and humidity (%RH).

    Wire VIN to 3.3 V (pin 1) or 5 V, GND to ground, SDA to GPIO2 (pin 3),
    SCL to GPIO3 (pin 5); leave SEL unconnected (it selects Modbus when
    high).  The address is always 0x61.

    The SCD30 stretches the I2C clock for up to 30 ms, which the Pi's I2C
    controller mishandles: without a workaround you get CRC errors and
    remote I/O errors.  docs/troubleshooting.md gives two (a slow bus with
    ``dtparam=i2c_arm_baudrate=10000``, or a bit-banged ``i2c-gpio`` bus).

    The module measures on its own every ``measurement_interval`` seconds
    (2 by default); each read waits for the next result.  Each value comes
    as an IEEE-754 float in two CRC-checked words.  Altitude, temperature
    offset and self-calibration are kept in the module's flash, so the
    driver writes them only when they differ from what the module holds.
    For pressure compensation give ``pressure`` (hPa) or
    ``compensate_from`` naming a sensor that measures pressure.
    """

    name = "scd30"
    summary = "Sensirion SCD30 CO2, temperature and humidity (I2C)"
    chip = "SCD30"
    addresses = (0x61,)
    options = {
        **bus_options((0x61,)),
        "measurement_interval": Option(int, 2, "seconds between the module's measurements (2 to 1800)"),
        "altitude": Option(int, 0, "metres above sea level, for pressure compensation (0 to 3000)"),
        "pressure": Option(float, 0.0, "fixed air pressure in hPa for compensation (700 to 1400); 0: use altitude"),
        "compensate_from": compensate_from_option("air pressure"),
        "automatic_self_calibration": Option(bool, False, "let the module recalibrate itself (needs daily fresh air)"),
        "temperature_offset": Option(float, 0.0, "°C the module's own heat adds to its temperature reading (0 to 20)"),
    }
    provides = (
        Quantity("co2", "ppm", "CO2 concentration"),
        Quantity("temperature", "°C", "air temperature at the module"),
        Quantity("humidity", "%RH", "relative humidity at the module"),
    )

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        c = self.config
        if not 2 <= c["measurement_interval"] <= 1800:
            raise OptionError("measurement_interval", f"sensor {sensor!r}: measurement_interval must be 2 to 1800 s")
        check_co2_compensation(sensor, c, max_pressure=1400.0)
        self.ambient = Ambient(sensor, c["compensate_from"], {"pressure": PRESSURE})
        self.firmware: tuple[int, int] | None = None
        self._pressure_sent: int | None = None

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    def min_interval(self) -> float:
        return float(self.config["measurement_interval"])

    def _words(self, count: int, what: str) -> list[int]:
        try:
            return self.read_words(count, what)
        except ReadFailed as exc:
            raise ReadFailed(f"{exc}; {CLOCK_STRETCH_HINT}") from None

    def _get(self, code: int, what: str) -> int:
        self.command(code)
        time.sleep(ANSWER_SECONDS)
        (word,) = self._words(1, what)
        return word

    def _keep(self, code: int, wanted: int, what: str) -> None:
        """Write a setting the module keeps in flash only when it holds another value."""
        if self._get(code, what) != wanted:
            self.command(code, wanted)
            time.sleep(ANSWER_SECONDS)

    def setup(self) -> None:
        try:
            version = self._get(FIRMWARE_VERSION, "firmware version")
        except ReadFailed as exc:
            raise DeviceNotFound(f"{exc}; if this persists, the chip at this address is not an SCD30") from None
        self.firmware = (version >> 8, version & 0xFF)
        c = self.config
        self._keep(MEASUREMENT_INTERVAL, c["measurement_interval"], "measurement interval")
        self._keep(ALTITUDE, c["altitude"], "altitude")
        self._keep(TEMPERATURE_OFFSET, round(c["temperature_offset"] * 100), "temperature offset")
        self._keep(AUTOMATIC_SELF_CALIBRATION, 1 if c["automatic_self_calibration"] else 0, "self-calibration")
        self._pressure_sent = None
        self._start(round(c["pressure"]))

    def _start(self, hpa: int) -> None:
        self.command(TRIGGER_CONTINUOUS, hpa)
        time.sleep(ANSWER_SECONDS)
        self._pressure_sent = hpa

    def measure(self) -> dict[str, float]:
        if self.config["compensate_from"]:
            hpa = round(self.ambient.values()["pressure"])
            if hpa != self._pressure_sent:
                # The documented way to change the pressure: trigger continuous measurement again.
                self._start(hpa)
        # A restarted measurement may skip one interval before its first result.
        self._wait_for_data(2 * self.config["measurement_interval"] + 1.0)
        self.command(READ_MEASUREMENT)
        time.sleep(ANSWER_SECONDS)
        words = self._words(6, "measurement")
        co2, temperature, humidity = (_float(words[i], words[i + 1]) for i in (0, 2, 4))
        return self._check(co2, temperature, humidity)

    def _wait_for_data(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._get(GET_DATA_READY, "data-ready status") != 1:
            if time.monotonic() > deadline:
                # A module that lost power comes back measuring (the mode is kept in flash), so
                # a silence this long means it is wedged: DeviceNotFound makes the bridge reopen it.
                raise DeviceNotFound(f"{self.where()}: no new measurement within {timeout:g} s; it is set up again")
            time.sleep(0.1)

    def _check(self, co2: float, temperature: float, humidity: float) -> dict[str, float]:
        if not all(math.isfinite(v) for v in (co2, temperature, humidity)):
            raise ReadFailed(f"{self.where()}: the module sent a value that is not a number; {CLOCK_STRETCH_HINT}")
        if not 0.0 <= co2 <= CO2_MAX:
            raise ValueRejected(f"{self.where()}: CO2 {co2:.1f} ppm is outside the module's range (0 to 40000 ppm)")
        low, high = OPERATING_T
        if not low <= temperature <= high:
            raise ValueRejected(
                f"{self.where()}: temperature {temperature:.2f} °C is outside the module's range ({low:g} to {high:g} °C)"
            )
        if not 0.0 <= humidity <= 100.0:
            raise ValueRejected(f"{self.where()}: humidity {humidity:.2f} %RH is outside 0 to 100 %RH")
        return {"co2": round(co2, 1), "temperature": round(temperature, 2), "humidity": round(humidity, 2)}


def _float(high: int, low: int) -> float:
    """Two words, most significant first, are one big-endian IEEE-754 float (Interface Description 1.5)."""
    return struct.unpack(">f", struct.pack(">HH", high, low))[0]
