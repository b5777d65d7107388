"""Bosch BMP388/BMP390: temperature and high-resolution air pressure over I2C."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pibridge.readings import Quantity

from .. import DeviceNotFound, Option, OptionError, ReadFailed, ValueRejected, register
from .._bits import signed
from ._bus import I2CDriver, bus_options

# Registers, BMP388 datasheet (BST-BMP388-DS001), section 4.2, "Register map".
REG_CHIP_ID = 0x00
REG_ERR = 0x02
REG_STATUS = 0x03
REG_DATA = 0x04  # pressure (3 bytes), then temperature (3 bytes), least significant byte first
REG_PWR_CTRL = 0x1B
REG_OSR = 0x1C
REG_CONFIG = 0x1F
REG_CALIBRATION = 0x31  # NVM_PAR_T1 .. NVM_PAR_P11, 21 bytes
REG_CMD = 0x7E

CHIP_IDS = {0x50: "BMP388", 0x60: "BMP390"}
SOFT_RESET = 0xB6
DRDY_PRESS, DRDY_TEMP = 0x20, 0x40
FATAL_ERR, CMD_ERR, CONF_ERR = 0x01, 0x02, 0x04
PRESS_EN, TEMP_EN, FORCED = 0x01, 0x02, 0x01 << 4

#: oversampling -> its code in the OSR register (osr_p bits 2:0, osr_t bits 5:3)
OVERSAMPLING = {1: 0, 2: 1, 4: 2, 8: 3, 16: 4, 32: 5}


@dataclass(frozen=True)
class Calibration3:
    """The trimming coefficients, already scaled to floating point (datasheet section 9.1)."""

    t1: float
    t2: float
    t3: float
    p1: float
    p2: float
    p3: float
    p4: float
    p5: float
    p6: float
    p7: float
    p8: float
    p9: float
    p10: float
    p11: float

    @classmethod
    def parse(cls, b: list[int]) -> "Calibration3":
        """*b*: the 21 bytes from 0x31 (NVM_PAR_T1 .. NVM_PAR_P11, section 3.11.1)."""

        def u16(i: int) -> int:
            return b[i + 1] << 8 | b[i]

        return cls(
            t1=u16(0) / 2.0**-8, t2=u16(2) / 2.0**30, t3=signed(b[4], 8) / 2.0**48,
            p1=(signed(u16(5), 16) - 2**14) / 2.0**20, p2=(signed(u16(7), 16) - 2**14) / 2.0**29,
            p3=signed(b[9], 8) / 2.0**32, p4=signed(b[10], 8) / 2.0**37,
            p5=u16(11) / 2.0**-3, p6=u16(13) / 2.0**6,
            p7=signed(b[15], 8) / 2.0**8, p8=signed(b[16], 8) / 2.0**15,
            p9=signed(u16(17), 16) / 2.0**48, p10=signed(b[19], 8) / 2.0**48, p11=signed(b[20], 8) / 2.0**65,
        )

    def t_lin(self, adc_t: int) -> float:
        """°C, section 9.2."""
        d1 = adc_t - self.t1
        return d1 * self.t2 + d1 * d1 * self.t3

    def pressure(self, adc_p: int, t_lin: float) -> float:
        """Pa, section 9.3."""
        out1 = self.p5 + self.p6 * t_lin + self.p7 * t_lin**2 + self.p8 * t_lin**3
        out2 = adc_p * (self.p1 + self.p2 * t_lin + self.p3 * t_lin**2 + self.p4 * t_lin**3)
        out3 = adc_p * adc_p * (self.p9 + self.p10 * t_lin) + adc_p**3 * self.p11
        return out1 + out2 + out3


@register
class BMP3xx(I2CDriver):
    """A BMP388 or BMP390 board: temperature (°C) and pressure (hPa, about 0.03 hPa resolution).

    Wire VIN to 3.3 V (pin 1), GND to ground, SDA to GPIO2 (pin 3), SCL to
    GPIO3 (pin 5).  The address is 0x77, or 0x76 when SDO is tied to ground.
    Each read is one forced measurement, so the chip sleeps between reads.
    Near sea level a metre of height is about 0.12 hPa, so with
    ``pressure_oversampling`` 16 or 32 a change of floor shows.
    """

    name = "bmp3xx"
    summary = "Bosch BMP388/BMP390 temperature and pressure (I2C)"
    chip = "BMP388/BMP390"
    addresses = (0x77, 0x76)
    options = {
        **bus_options((0x77, 0x76)),
        "pressure_oversampling": Option(int, 8, "pressure oversampling: 1, 2, 4, 8, 16 or 32 (more = less noise, slower)"),
        "temperature_oversampling": Option(int, 1, "temperature oversampling: 1, 2, 4, 8, 16 or 32"),
    }
    provides = (
        Quantity("temperature", "°C", "air temperature"),
        Quantity("pressure", "hPa", "air pressure at the sensor (not sea-level corrected)"),
    )

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        for key in ("pressure_oversampling", "temperature_oversampling"):
            if self.config[key] not in OVERSAMPLING:
                raise OptionError(key, f"sensor {sensor!r}: {key} must be 1, 2, 4, 8, 16 or 32, not {self.config[key]}")
        self.calibration: Calibration3 | None = None
        self.model: str | None = None

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    @classmethod
    def identify(cls, bus, address: int) -> bool | None:
        try:
            return bus.read_byte_data(address, REG_CHIP_ID) in CHIP_IDS
        except OSError:
            return None

    def setup(self) -> None:
        chip_id = self.read_byte(REG_CHIP_ID)
        if chip_id not in CHIP_IDS:
            raise DeviceNotFound(
                f"{self.where()}: the chip id register (0x00) reads {chip_id:#04x}, not 0x50 (BMP388) or 0x60 "
                "(BMP390): another chip uses this address (a BMP280, BME280 or BME680 keeps its id at 0xD0: "
                'try driver = "bmp280", "bme280" or "bme680")'
            )
        self.model = CHIP_IDS[chip_id]
        self.write_byte(REG_CMD, SOFT_RESET)
        time.sleep(0.010)
        raw = self.read_block(REG_CALIBRATION, 21)
        if len(set(raw)) == 1:
            raise DeviceNotFound(
                f"{self.where()}: the calibration block reads as {raw[0]:#04x} throughout; "
                "the chip is damaged or the bus is corrupting data (check wiring)"
            )
        self.calibration = Calibration3.parse(raw)
        self.write_byte(REG_CONFIG, 0x00)  # no IIR filter: each forced read stands alone

    def measurement_seconds(self) -> float:
        """Conversion time, datasheet section 3.9.2: 234 µs + (392 + 2^osr_p * 2020) + (163 + 2^osr_t * 2020) µs."""
        p, t = self.config["pressure_oversampling"], self.config["temperature_oversampling"]
        return (234 + 392 + p * 2020 + 163 + t * 2020) / 1e6

    def measure(self) -> dict[str, float]:
        osr_p = OVERSAMPLING[self.config["pressure_oversampling"]]
        osr_t = OVERSAMPLING[self.config["temperature_oversampling"]]
        self.write_byte(REG_OSR, osr_t << 3 | osr_p)
        self.write_byte(REG_PWR_CTRL, PRESS_EN | TEMP_EN | FORCED)
        time.sleep(self.measurement_seconds())
        error = self.read_byte(REG_ERR)
        if error & (CONF_ERR | FATAL_ERR):
            raise ReadFailed(
                f"{self.where()}: the chip flags an error (ERR_REG {error:#04x}); "
                "the measurement is repeated with the configuration written again"
            )
        self.poll(lambda: self.read_byte(REG_STATUS) & (DRDY_PRESS | DRDY_TEMP) == DRDY_PRESS | DRDY_TEMP,
                  0.1, "the measurement")
        d = self.read_block(REG_DATA, 6)
        adc_p = d[2] << 16 | d[1] << 8 | d[0]
        adc_t = d[5] << 16 | d[4] << 8 | d[3]
        cal = self.calibration
        temperature = cal.t_lin(adc_t)
        pressure = cal.pressure(adc_p, temperature) / 100.0
        if not -40.0 <= temperature <= 85.0 or not 300.0 <= pressure <= 1250.0:
            raise ValueRejected(
                f"{self.where()}: {temperature:.2f} °C, {pressure:.2f} hPa is outside the chip's range "
                "(-40 to 85 °C, 300 to 1250 hPa); the chip or its calibration data is faulty"
            )
        return {"temperature": round(temperature, 3), "pressure": round(pressure, 4)}
