"""Sensirion SCD40/SCD41: CO2 (photoacoustic NDIR), temperature and humidity over I2C."""

from __future__ import annotations

import time

from pibridge.readings import Quantity

from .. import DeviceNotFound, Option, OptionError, ReadFailed, ValueRejected, register
from .._ambient import PRESSURE, Ambient, Compensates, compensate_from_option
from ._bus import bus_options
from ._sensirion import SensirionDriver, celsius, check_co2_compensation

# Commands and their execution times, SCD4x datasheet section 3.4, Table 9.
START_PERIODIC = 0x21B1
START_LOW_POWER = 0x21AC
READ_MEASUREMENT = 0xEC05
STOP_PERIODIC = 0x3F86
SET_TEMPERATURE_OFFSET = 0x241D
SET_SENSOR_ALTITUDE = 0x2427
SET_AMBIENT_PRESSURE = 0xE000
SET_ASC_ENABLED = 0x2416
GET_DATA_READY = 0xE4B8
GET_SERIAL_NUMBER = 0x3682
GET_SENSOR_VARIANT = 0x202F
MEASURE_SINGLE_SHOT = 0x219D

STOP_SECONDS = 0.5
COMMAND_SECONDS = 0.001
SINGLE_SHOT_SECONDS = 5.0

#: mode -> (start command or None, seconds between two measurements)
MODES = {"periodic": (START_PERIODIC, 5.0), "low_power": (START_LOW_POWER, 30.0), "single_shot": (None, 5.0)}

#: get_sensor_variant, bits 15:12 (in datasheet revisions after 1.3); older firmware does not know the command.
VARIANTS = {0b0000: "SCD40", 0b0001: "SCD41", 0b0101: "SCD43"}

CO2_MAX = 40000  # output range, datasheet section 1.1
OPERATING_T = (-10.0, 60.0)  # operating conditions, datasheet section 1.1


@register
class SCD4x(Compensates, SensirionDriver):
    """An SCD40 or SCD41 board: CO2 (ppm), temperature (°C) and humidity (%RH).

    Wire VDD to 3.3 V (pin 1), GND to ground, SDA to GPIO2 (pin 3), SCL to
    GPIO3 (pin 5).  The address is always 0x62.  The chip draws up to
    205 mA peaks while measuring: power it from the Pi's 3.3 V rail, not
    through a long thin cable.

    ``mode = "periodic"`` (default) measures every 5 s, ``"low_power"``
    every 30 s, and ``"single_shot"`` (SCD41 only) measures once per read
    and idles between reads.  CO2 readings depend on air pressure: give
    ``altitude`` (metres above sea level), a fixed ``pressure`` (hPa), or
    ``compensate_from`` naming a sensor that measures pressure (a BME280 in
    the same box), whose latest pressure is sent before each read.
    ``automatic_self_calibration`` (on by default) assumes the sensor sees
    fresh air (about 400 ppm) at least once a week; turn it off in a room
    that never airs out.  Settings are written to the chip's RAM at every
    start, never to its EEPROM.
    """

    name = "scd4x"
    summary = "Sensirion SCD40/SCD41 CO2, temperature and humidity (I2C)"
    chip = "SCD4x"
    addresses = (0x62,)
    options = {
        **bus_options((0x62,)),
        "mode": Option(str, "periodic", "periodic (every 5 s), low_power (every 30 s) or single_shot (SCD41 only)"),
        "altitude": Option(int, 0, "metres above sea level, for pressure compensation (0 to 3000)"),
        "pressure": Option(float, 0.0, "fixed air pressure in hPa for compensation (700 to 1200); 0: use altitude"),
        "compensate_from": compensate_from_option("air pressure"),
        "automatic_self_calibration": Option(bool, True, "let the chip recalibrate itself assuming weekly fresh air"),
        "temperature_offset": Option(float, 4.0, "°C the chip's own heat adds to its temperature reading (0 to 20)"),
    }
    provides = (
        Quantity("co2", "ppm", "CO2 concentration"),
        Quantity("temperature", "°C", "air temperature at the sensor"),
        Quantity("humidity", "%RH", "relative humidity at the sensor"),
    )

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        c = self.config
        if c["mode"] not in MODES:
            raise OptionError("mode", f"sensor {sensor!r}: mode must be periodic, low_power or single_shot")
        check_co2_compensation(sensor, c, max_pressure=1200.0)
        self.ambient = Ambient(sensor, c["compensate_from"], {"pressure": PRESSURE})
        self.serial_number: int | None = None
        self.variant: str | None = None

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    def min_interval(self) -> float:
        return MODES[self.config["mode"]][1]

    def setup(self) -> None:
        # After a restart of pibridge the chip may still be measuring; it takes
        # no configuration until stopped.  Right after an earlier stop it answers
        # nothing for 500 ms, so one refusal is worth a second try.
        try:
            self.command(STOP_PERIODIC)
        except OSError:
            time.sleep(STOP_SECONDS)
            self.command(STOP_PERIODIC)
        time.sleep(STOP_SECONDS)
        self.command(GET_SERIAL_NUMBER)
        time.sleep(COMMAND_SECONDS)
        try:
            words = self.read_words(3, "serial number")
        except ReadFailed as exc:
            raise DeviceNotFound(f"{exc}; if this persists, the chip at this address is not an SCD4x") from None
        self.serial_number = words[0] << 32 | words[1] << 16 | words[2]
        self.variant = self._read_variant()
        if self.config["mode"] == "single_shot" and self.variant == "SCD40":
            raise DeviceNotFound(
                f"{self.where()}: this is an SCD40, which has no single-shot measurement: "
                'use mode = "periodic" or "low_power"'
            )
        c = self.config
        self.command(SET_TEMPERATURE_OFFSET, round(c["temperature_offset"] * 65535 / 175))
        time.sleep(COMMAND_SECONDS)
        self.command(SET_SENSOR_ALTITUDE, c["altitude"])
        time.sleep(COMMAND_SECONDS)
        self.command(SET_ASC_ENABLED, 1 if c["automatic_self_calibration"] else 0)
        time.sleep(COMMAND_SECONDS)
        start, _ = MODES[c["mode"]]
        if start is not None:
            self.command(start)

    def _read_variant(self) -> str | None:
        """The model, from get_sensor_variant; None when the firmware predates that command."""
        try:
            self.command(GET_SENSOR_VARIANT)
            time.sleep(COMMAND_SECONDS)
            (word,) = self.read_words(1, "sensor variant")
        except (OSError, ReadFailed):
            return None
        return VARIANTS.get(word >> 12)

    def close(self) -> None:
        if self._bus is not None and MODES[self.config["mode"]][0] is not None:
            try:
                self.command(STOP_PERIODIC)
            except OSError:
                pass
        super().close()

    def measure(self) -> dict[str, float]:
        self._send_pressure()
        mode = self.config["mode"]
        if mode == "single_shot":
            self.command(MEASURE_SINGLE_SHOT)
            time.sleep(SINGLE_SHOT_SECONDS)
        else:
            self._wait_for_data(MODES[mode][1] + 1.0)
        self.command(READ_MEASUREMENT)
        time.sleep(COMMAND_SECONDS)
        co2, t_raw, rh_raw = self.read_words(3, "measurement")
        return self._convert(co2, t_raw, rh_raw)

    def _send_pressure(self) -> None:
        if self.config["pressure"]:
            hpa = self.config["pressure"]
        elif self.config["compensate_from"]:
            hpa = self.ambient.values()["pressure"]
        else:
            return
        # The argument is the pressure in Pa divided by 100 (datasheet section 3.6.5), so hPa.
        self.command(SET_AMBIENT_PRESSURE, round(hpa))
        time.sleep(COMMAND_SECONDS)

    def _wait_for_data(self, timeout: float) -> None:
        # Checked every 100 ms, not every millisecond as poll() does: a new measurement
        # comes only every 5 s, and each check is a bus transfer.
        deadline = time.monotonic() + timeout
        while not self._data_ready():
            if time.monotonic() > deadline:
                # A brown-out leaves the chip idle; DeviceNotFound makes the bridge set it up again.
                raise DeviceNotFound(
                    f"{self.where()}: no new measurement within {timeout:g} s: the chip has probably reset "
                    "(check the 3.3 V supply) and is set up again at the next read"
                )
            time.sleep(0.1)

    def _data_ready(self) -> bool:
        self.command(GET_DATA_READY)
        time.sleep(COMMAND_SECONDS)
        (word,) = self.read_words(1, "data-ready status")
        return word & 0x07FF != 0  # datasheet section 3.8.2: the 11 low bits are 0 when not ready

    def _convert(self, co2: int, t_raw: int, rh_raw: int) -> dict[str, float]:
        # Datasheet section 3.5.2: CO2 in ppm as is, T = -45 + 175 * word / (2^16 - 1),
        # RH = 100 * word / (2^16 - 1).
        temperature = celsius(t_raw)
        humidity = 100.0 * rh_raw / 65535.0
        if co2 > CO2_MAX:
            raise ValueRejected(
                f"{self.where()}: CO2 {co2} ppm is beyond the chip's output range (0 to {CO2_MAX} ppm)"
            )
        low, high = OPERATING_T
        if not low <= temperature <= high:
            raise ValueRejected(
                f"{self.where()}: temperature {temperature:.2f} °C is outside the range the chip works in "
                f"({low:g} to {high:g} °C); its CO2 reading cannot be trusted there"
            )
        return {"co2": co2, "temperature": round(temperature, 2), "humidity": round(humidity, 2)}
