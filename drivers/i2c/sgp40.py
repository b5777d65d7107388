"""Sensirion SGP40: a metal-oxide VOC sensor, as its raw signal and Sensirion's VOC index."""

from __future__ import annotations

import logging
import time

from pibridge.readings import Quantity

from .. import DeviceNotFound, DriverError, Option, OptionError, ReadFailed, ValueRejected, register
from .._ambient import HUMIDITY, TEMPERATURE, Ambient, Compensates, compensate_from_option
from ._bus import bus_options
from ._sensirion import SensirionDriver

log = logging.getLogger("pibridge.drivers")

# Commands, SGP40 datasheet (version 1.0, July 2020), Tables 9 to 15.
MEASURE_RAW = 0x260F
SELF_TEST = 0x280E
HEATER_OFF = 0x3615
GET_SERIAL_NUMBER = 0x3682
MEASURE_SECONDS = 0.030
SELF_TEST_SECONDS = 0.320
SELF_TEST_PASSED = 0xD400

#: The VOC index is 0 while the algorithm learns its baseline (its first 45 samples).
INDEX_NOT_READY = 0


def humidity_ticks(percent: float) -> int:
    """The measure command's humidity argument: RH * 65535 / 100 (datasheet Table 10)."""
    return round(min(max(percent, 0.0), 100.0) * 65535 / 100)


def temperature_ticks(celsius: float) -> int:
    """The measure command's temperature argument: (T + 45) * 65535 / 175 (same table)."""
    return round((min(max(celsius, -45.0), 130.0) + 45.0) * 65535 / 175)


@register
class SGP40(Compensates, SensirionDriver):
    """An SGP40 board: its raw VOC signal (ticks) and the VOC index (1 to 500, 100 = the usual air).

    Wire VIN to 3.3 V (pin 1), GND to ground, SDA to GPIO2 (pin 3), SCL to
    GPIO3 (pin 5).  The address is always 0x59.

    The VOC index comes from Sensirion's own algorithm (the Python package
    ``sensirion-gas-index-algorithm``, installed with pibridge): it learns
    the room's usual air over hours and reports how the air now compares
    (below 100: better than usual, above: worse).  It needs one sample every
    ``sampling_interval`` seconds, so set the sensor's ``interval`` to the
    same value (1 s by default).  For its first 45 samples the index is not
    reported; the raw signal is.  The chip's reading depends on humidity
    and temperature: name a sensor measuring both in ``compensate_from``
    (an SHT4x or BME280 next to it), otherwise it assumes 25 °C and 50 %RH.
    """

    name = "sgp40"
    summary = "Sensirion SGP40 VOC raw signal and VOC index (I2C)"
    chip = "SGP40"
    addresses = (0x59,)
    options = {
        **bus_options((0x59,)),
        "voc_index": Option(bool, True, "compute Sensirion's VOC index (false: the raw signal only)"),
        "sampling_interval": Option(float, 1.0, "seconds between samples the VOC index expects (1 to 10); match interval"),
        "compensate_from": compensate_from_option("temperature and humidity"),
    }
    provides = (
        Quantity("voc_raw", "count", "raw signal of the VOC sensor (ticks; lower: more VOCs)"),
        Quantity("voc_index", "index", "Sensirion VOC index, 1 to 500 (100: the room's usual air)"),
    )

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        if not 1.0 <= self.config["sampling_interval"] <= 10.0:
            raise OptionError("sampling_interval", f"sensor {sensor!r}: sampling_interval must be 1 to 10 s")
        self.ambient = Ambient(sensor, self.config["compensate_from"], {"temperature": TEMPERATURE, "humidity": HUMIDITY})
        self.serial_number: int | None = None
        self._algorithm = None
        self._samples = 0
        self._last_sample: float | None = None
        self._pace_warned = False

    def quantities(self) -> list[Quantity]:
        return list(self.provides if self.config["voc_index"] else self.provides[:1])

    def min_interval(self) -> float:
        return self.config["sampling_interval"] if self.config["voc_index"] else 0.0

    def setup(self) -> None:
        self.command(GET_SERIAL_NUMBER)
        time.sleep(0.001)
        try:
            words = self.read_words(3, "serial number")
        except ReadFailed as exc:
            raise DeviceNotFound(f"{exc}; if this persists, the chip at this address is not an SGP40") from None
        self.serial_number = words[0] << 32 | words[1] << 16 | words[2]
        self.command(SELF_TEST)
        time.sleep(SELF_TEST_SECONDS)
        (result,) = self.read_words(1, "self-test result")
        if result != SELF_TEST_PASSED:
            raise DeviceNotFound(
                f"{self.where()}: the chip's self-test failed (result {result:#06x}, expected {SELF_TEST_PASSED:#06x}): "
                "its hot plate is damaged; replace the sensor"
            )
        if self.config["voc_index"] and self._algorithm is None:
            self._algorithm = self._new_algorithm()

    def _new_algorithm(self):
        try:
            from sensirion_gas_index_algorithm.voc_algorithm import VocAlgorithm
        except ImportError:
            raise DriverError(
                f"{self.where()}: the VOC index needs Sensirion's algorithm package: "
                "pip install sensirion-gas-index-algorithm (or set voc_index = false)"
            ) from None
        self._samples = 0
        return VocAlgorithm(sampling_interval=self.config["sampling_interval"])

    def close(self) -> None:
        if self._bus is not None:
            try:
                self.command(HEATER_OFF)  # the hot plate idles instead of staying at 300 °C
            except OSError:
                pass
        super().close()

    def measure(self) -> dict[str, int]:
        air = self.ambient.values()
        self.command(MEASURE_RAW, humidity_ticks(air["humidity"]), temperature_ticks(air["temperature"]))
        time.sleep(MEASURE_SECONDS)
        (raw,) = self.read_words(1, "raw signal")
        if raw in (0x0000, 0xFFFF):
            raise ValueRejected(
                f"{self.where()}: the raw signal is {raw:#06x}, the end of its range: the hot plate is "
                "not heating (check the 3.3 V supply) or the sensor is damaged"
            )
        values = {"voc_raw": raw}
        if self._algorithm is not None:
            self._check_pace()
            index = int(self._algorithm.process(raw))
            self._samples += 1
            if index != INDEX_NOT_READY:
                values["voc_index"] = index
            elif self._samples == 1:
                log.info("sensor %r: the VOC index is learning the air; it is reported after about 45 samples",
                         self.sensor)
        return values

    def _check_pace(self) -> None:
        """Warn once when reads come much slower than the algorithm's sampling interval: its
        time constants count samples, so the index would react too slowly."""
        now = time.monotonic()
        last, self._last_sample = self._last_sample, now
        expected = self.config["sampling_interval"]
        if last is None or self._pace_warned or now - last <= 1.5 * expected:
            return
        self._pace_warned = True
        log.warning(
            "sensor %r: reads come %.1f s apart but sampling_interval is %g s; the VOC index assumes one "
            "sample per sampling_interval: set interval = %g on this sensor", self.sensor, now - last, expected, expected,
        )
