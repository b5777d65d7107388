"""Bosch BME280/BMP280: register map, calibration and the datasheet's compensation.

The compensation follows the integer formulas of the BME280 datasheet,
section 4.2.3 (temperature and humidity in 32 bit, pressure in 64 bit);
the BMP280 datasheet, section 3.11.3, gives the same ones for temperature
and pressure.  Python integers do not overflow, and the C code's ``>>`` on
negative numbers is an arithmetic shift, as in Python; only C's truncating
division needs care (:func:`_div`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

from pibridge.readings import Quantity

from .. import DeviceNotFound, Option, OptionError, ReadFailed, ValueRejected
from .._bits import signed
from ._bus import I2CDriver, bus_options

REG_CALIB_TP = 0x88  # dig_T1 .. dig_P9, then a reserved byte, then dig_H1 at 0xA1
REG_CHIP_ID = 0xD0
REG_RESET = 0xE0
REG_CALIB_H = 0xE1  # dig_H2 .. dig_H6, 7 bytes
REG_CTRL_HUM = 0xF2
REG_STATUS = 0xF3
REG_CTRL_MEAS = 0xF4
REG_CONFIG = 0xF5
REG_DATA = 0xF7  # press[3], temp[3], hum[2]

RESET_WORD = 0xB6
FORCED_MODE = 0b01
STATUS_MEASURING = 0x08
STATUS_IM_UPDATE = 0x01
SKIPPED_20BIT = 0x80000  # what a data register holds when that measurement was skipped
SKIPPED_16BIT = 0x8000

BME280_ID = 0x60
BMP280_IDS = (0x56, 0x57, 0x58)

OVERSAMPLING = {1: 0b001, 2: 0b010, 4: 0b011, 8: 0b100, 16: 0b101}


def _s16(lsb: int, msb: int) -> int:
    return signed(msb << 8 | lsb, 16)


def _u16(lsb: int, msb: int) -> int:
    return msb << 8 | lsb


def check_operating_range(where: str, values: dict[str, float]) -> None:
    """Refuse a temperature or pressure outside the operating range the BMx280 and BME680 share.

    A value beyond -40..85 °C or 300..1100 hPa is not weather but a corrupted transfer or
    faulty calibration data.
    """
    limits = {"temperature": (-40.0, 85.0, "°C"), "pressure": (300.0, 1100.0, "hPa")}
    for name, (low, high, unit) in limits.items():
        if not low <= values[name] <= high:
            raise ValueRejected(
                f"{where}: {name} {values[name]} {unit} is outside the chip's range "
                f"({low:g} to {high:g} {unit}); the chip or its calibration data is faulty"
            )


def _div(a: int, b: int) -> int:
    """C's integer division: truncates toward zero, where Python's // floors."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


@dataclass(frozen=True)
class Calibration:
    """The trimming parameters (dig_T1 .. dig_H6) burnt into each chip."""

    T1: int
    T2: int
    T3: int
    P1: int
    P2: int
    P3: int
    P4: int
    P5: int
    P6: int
    P7: int
    P8: int
    P9: int
    H1: int = 0
    H2: int = 0
    H3: int = 0
    H4: int = 0
    H5: int = 0
    H6: int = 0

    @classmethod
    def parse(cls, tp: list[int], h1: int | None = None, h: list[int] | None = None) -> "Calibration":
        """*tp*: the 24 bytes from 0x88; *h1*: the byte at 0xA1; *h*: the 7 bytes from 0xE1."""
        words = [tp[i : i + 2] for i in range(0, 24, 2)]
        fields = {"T1": _u16(*words[0]), "T2": _s16(*words[1]), "T3": _s16(*words[2]), "P1": _u16(*words[3])}
        for n in range(2, 10):
            fields[f"P{n}"] = _s16(*words[n + 2])
        if h1 is not None and h is not None:
            fields.update(
                H1=h1,
                H2=_s16(h[0], h[1]),
                H3=h[2],
                H4=signed(h[3], 8) << 4 | (h[4] & 0x0F),
                H5=signed(h[5], 8) << 4 | (h[4] >> 4),
                H6=signed(h[6], 8),
            )
        return cls(**fields)

    def t_fine(self, adc_t: int) -> int:
        var1 = (((adc_t >> 3) - (self.T1 << 1)) * self.T2) >> 11
        var2 = (((((adc_t >> 4) - self.T1) * ((adc_t >> 4) - self.T1)) >> 12) * self.T3) >> 14
        return var1 + var2

    @staticmethod
    def temperature(t_fine: int) -> float:
        """°C, resolution 0.01."""
        return ((t_fine * 5 + 128) >> 8) / 100.0

    def pressure(self, adc_p: int, t_fine: int) -> float:
        """Pa, from the 64-bit formula (Q24.8 result, resolution 1/256 Pa)."""
        var1 = t_fine - 128000
        var2 = var1 * var1 * self.P6
        var2 += (var1 * self.P5) << 17
        var2 += self.P4 << 35
        var1 = ((var1 * var1 * self.P3) >> 8) + ((var1 * self.P2) << 12)
        var1 = (((1 << 47) + var1) * self.P1) >> 33
        if var1 == 0:
            return 0.0
        p = 1048576 - adc_p
        p = _div(((p << 31) - var2) * 3125, var1)
        var1 = (self.P9 * (p >> 13) * (p >> 13)) >> 25
        var2 = (self.P8 * p) >> 19
        p = ((p + var1 + var2) >> 8) + (self.P7 << 4)
        return p / 256.0

    def humidity(self, adc_h: int, t_fine: int) -> float:
        """%RH, from the 32-bit formula (Q22.10 result)."""
        v = t_fine - 76800
        v = (((adc_h << 14) - (self.H4 << 20) - (self.H5 * v)) + 16384) >> 15
        v *= (
            ((((((t_fine - 76800) * self.H6) >> 10) * ((((t_fine - 76800) * self.H3) >> 11) + 32768)) >> 10) + 2097152)
            * self.H2
            + 8192
        ) >> 14
        v -= ((((v >> 15) * (v >> 15)) >> 7) * self.H1) >> 4
        v = min(max(v, 0), 419430400)
        return (v >> 12) / 1024.0


class BoschDriver(I2CDriver):
    """Shared part of the BME280 and BMP280 drivers (forced mode: one measurement per read)."""

    addresses = (0x76, 0x77)
    chip_ids: ClassVar[tuple[int, ...]] = ()
    has_humidity: ClassVar[bool] = False
    options = {
        **bus_options((0x76, 0x77)),
        "oversampling": Option(int, 1, "oversampling of every measurement: 1, 2, 4, 8 or 16 (more = less noise, slower)"),
    }

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        if self.config["oversampling"] not in OVERSAMPLING:
            raise OptionError(
                "oversampling", f"sensor {sensor!r}: oversampling must be 1, 2, 4, 8 or 16, not {self.config['oversampling']}"
            )
        self._calibration: Calibration | None = None

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    @classmethod
    def identify(cls, bus, address: int) -> bool | None:
        try:
            return bus.read_byte_data(address, REG_CHIP_ID) in cls.chip_ids
        except OSError:
            return None

    def measurement_seconds(self) -> float:
        """Longest time one forced measurement takes (datasheet appendix B, t_measure,max)."""
        n = self.config["oversampling"]
        ms = 1.25 + 2.3 * n + (2.3 * n + 0.575)
        if self.has_humidity:
            ms += 2.3 * n + 0.575
        return ms / 1000.0

    def setup(self) -> None:
        chip_id = self.read_byte(REG_CHIP_ID)
        if chip_id not in self.chip_ids:
            raise DeviceNotFound(f"{self.where()}: {self._wrong_chip(chip_id)}")
        self.write_byte(REG_RESET, RESET_WORD)
        time.sleep(0.002)
        self.poll(lambda: not self.read_byte(REG_STATUS) & STATUS_IM_UPDATE, 0.05, "copying the calibration after reset")
        tp = self.read_block(REG_CALIB_TP, 24)
        if self.has_humidity:
            self._calibration = Calibration.parse(tp, self.read_byte(0xA1), self.read_block(REG_CALIB_H, 7))
        else:
            self._calibration = Calibration.parse(tp)
        if self._calibration.T1 == 0 or self._calibration.P1 == 0 or len(set(tp)) == 1:
            raise DeviceNotFound(
                f"{self.where()}: the calibration block reads as {tp[0]:#04x} throughout; "
                "the chip is damaged or the bus is corrupting data (check wiring)"
            )
        self.write_byte(REG_CONFIG, 0x00)

    def _wrong_chip(self, chip_id: int) -> str:
        if chip_id == BME280_ID:
            other = "a BME280: use driver = \"bme280\""
        elif chip_id in BMP280_IDS:
            other = "a BMP280 (no humidity sensor): use driver = \"bmp280\""
        elif chip_id == 0x61:
            other = "a BME680, which this driver does not support"
        else:
            other = "not a Bosch pressure sensor; another chip uses this address"
        return f"the chip id register (0xD0) reads {chip_id:#04x}: {other}"

    def measure(self) -> dict[str, float]:
        osrs = OVERSAMPLING[self.config["oversampling"]]
        if self.has_humidity:
            # ctrl_hum only takes effect with the next ctrl_meas write, and a brown-out
            # clears it, so it is written before every measurement.
            self.write_byte(REG_CTRL_HUM, osrs)
        self.write_byte(REG_CTRL_MEAS, osrs << 5 | osrs << 2 | FORCED_MODE)
        time.sleep(self.measurement_seconds())
        self.poll(lambda: not self.read_byte(REG_STATUS) & STATUS_MEASURING, 0.1, "the measurement")
        data = self.read_block(REG_DATA, 8 if self.has_humidity else 6)
        adc_p = data[0] << 12 | data[1] << 4 | data[2] >> 4
        adc_t = data[3] << 12 | data[4] << 4 | data[5] >> 4
        if adc_t == SKIPPED_20BIT or adc_p == SKIPPED_20BIT:
            raise ReadFailed(
                f"{self.where()}: the chip returned its 'measurement skipped' value; "
                "it probably reset (brown-out): check the 3.3 V supply"
            )
        cal = self._calibration
        t_fine = cal.t_fine(adc_t)
        values = {
            "temperature": round(cal.temperature(t_fine), 2),
            "pressure": round(cal.pressure(adc_p, t_fine) / 100.0, 4),
        }
        if self.has_humidity:
            adc_h = data[6] << 8 | data[7]
            if adc_h == SKIPPED_16BIT:
                raise ReadFailed(f"{self.where()}: the humidity measurement was skipped; it will be retried")
            values["humidity"] = round(cal.humidity(adc_h, t_fine), 3)
        check_operating_range(self.where(), values)
        return values
