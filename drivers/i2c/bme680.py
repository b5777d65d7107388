"""Bosch BME680/BME688: temperature, pressure, humidity and the resistance of a heated gas sensor."""

from __future__ import annotations

import time

from pibridge.readings import Quantity

from .. import DeviceNotFound, Option, OptionError, ReadFailed, ValueRejected, register
from ._bme68x import Calibration68x, gas_wait, gas_wait_ms
from ._bosch import OVERSAMPLING, check_operating_range
from ._bus import I2CDriver, bus_options

# Registers, BME680 datasheet section 5.2, Table 20 (the BME688's are the same in forced mode).
REG_FIELD0 = 0x1D  # meas_status_0, then press, temp, hum, gas (17 bytes to 0x2D)
REG_RES_HEAT_0 = 0x5A
REG_GAS_WAIT_0 = 0x64
REG_CTRL_GAS_0 = 0x70
REG_CTRL_GAS_1 = 0x71
REG_CTRL_HUM = 0x72
REG_CTRL_MEAS = 0x74
REG_CONFIG = 0x75
REG_CALIB1 = 0x8A  # 23 bytes
REG_CHIP_ID = 0xD0
REG_RESET = 0xE0
REG_CALIB2 = 0xE1  # 14 bytes
REG_VARIANT_ID = 0xF0
REG_CALIB3 = 0x00  # 5 bytes: res_heat_val, -, res_heat_range, -, range_switching_error

CHIP_ID = 0x61
VARIANT_BME680, VARIANT_BME688 = 0x00, 0x01
RESET_WORD = 0xB6
NEW_DATA = 0x80
GAS_VALID, HEAT_STAB = 0x20, 0x10
HEAT_OFF = 0x08
#: ctrl_gas_1 bits 5:4, run_gas: the BME680 measures with its "low" gas circuit, the BME688 with "high".
RUN_GAS = {VARIANT_BME680: 0x10, VARIANT_BME688: 0x20}


@register
class BME680(I2CDriver):
    """A BME680 or BME688 board: temperature (°C), pressure (hPa), humidity (%RH) and gas resistance (Ω).

    Wire VIN to 3.3 V (pin 1), GND to ground, SDA to GPIO2 (pin 3), SCL to
    GPIO3 (pin 5).  The address is 0x76, or 0x77 when SDO is tied high
    (Adafruit's board ships at 0x77: try both).

    Each read is one forced measurement: temperature, pressure and humidity,
    then the metal-oxide gas sensor is heated to ``heater_temperature`` °C
    for ``heater_duration`` ms and its resistance measured.  Clean air gives
    a high resistance, volatile organic compounds lower it; the number is
    relative (it drifts between chips and over the first days), so watch
    its trend rather than its value.  A fresh chip needs about 30 minutes of
    regular reads before the gas value settles; and the heater warms the
    chip a little, so read no more often than every few seconds.  With
    ``gas = false`` the heater stays off.  The driver tells a BME680 from a
    BME688 by its variant register and uses each one's gas formula.
    """

    name = "bme680"
    summary = "Bosch BME680/BME688 temperature, pressure, humidity and gas resistance (I2C)"
    chip = "BME680"
    addresses = (0x76, 0x77)
    options = {
        **bus_options((0x76, 0x77)),
        "oversampling": Option(int, 2, "oversampling of temperature, pressure and humidity: 1, 2, 4, 8 or 16"),
        "gas": Option(bool, True, "measure the gas resistance (false: the heater stays off)"),
        "heater_temperature": Option(int, 320, "°C the gas sensor's heater is held at (200 to 400)"),
        "heater_duration": Option(int, 150, "ms the heater is held at that temperature before measuring (1 to 4032)"),
    }
    provides = (
        Quantity("temperature", "°C", "air temperature"),
        Quantity("pressure", "hPa", "air pressure at the sensor (not sea-level corrected)"),
        Quantity("humidity", "%RH", "relative humidity"),
        Quantity("gas_resistance", "Ω", "resistance of the heated gas sensor (lower: more VOCs)"),
    )

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        c = self.config
        if c["oversampling"] not in OVERSAMPLING:
            raise OptionError("oversampling", f"sensor {sensor!r}: oversampling must be 1, 2, 4, 8 or 16")
        if not 200 <= c["heater_temperature"] <= 400:
            raise OptionError("heater_temperature", f"sensor {sensor!r}: heater_temperature must be 200 to 400 °C")
        if not 1 <= c["heater_duration"] <= 4032:
            raise OptionError("heater_duration", f"sensor {sensor!r}: heater_duration must be 1 to 4032 ms")
        self.calibration: Calibration68x | None = None
        self.variant: int | None = None
        self._ambient = 25.0  # °C for the heater set-point until the first measurement

    def quantities(self) -> list[Quantity]:
        return list(self.provides if self.config["gas"] else self.provides[:3])

    @classmethod
    def identify(cls, bus, address: int) -> bool | None:
        try:
            return bus.read_byte_data(address, REG_CHIP_ID) == CHIP_ID
        except OSError:
            return None

    def setup(self) -> None:
        chip_id = self.read_byte(REG_CHIP_ID)
        if chip_id != CHIP_ID:
            raise DeviceNotFound(f"{self.where()}: {self._wrong_chip(chip_id)}")
        self.write_byte(REG_RESET, RESET_WORD)
        time.sleep(0.005)  # start-up time after a soft reset, datasheet section 1.1 (2 ms)
        self.variant = self.read_byte(REG_VARIANT_ID)
        if self.variant not in RUN_GAS:
            raise DeviceNotFound(
                f"{self.where()}: variant register 0xF0 reads {self.variant:#04x}, neither BME680 (0x00) nor "
                "BME688 (0x01): the chip is unknown or the bus corrupts data"
            )
        block1 = self.read_block(REG_CALIB1, 23)
        calibration = Calibration68x.parse(block1, self.read_block(REG_CALIB2, 14), self.read_block(REG_CALIB3, 5))
        if calibration.t1 == 0 or calibration.p1 == 0 or len(set(block1)) == 1:
            raise DeviceNotFound(
                f"{self.where()}: the calibration block reads as {block1[0]:#04x} throughout; "
                "the chip is damaged or the bus is corrupting data (check wiring)"
            )
        self.calibration = calibration
        self.write_byte(REG_CONFIG, 0x00)  # no IIR filter: each forced read stands alone

    def _wrong_chip(self, chip_id: int) -> str:
        if chip_id == 0x60:
            other = 'a BME280 (no gas sensor): use driver = "bme280"'
        elif chip_id in (0x56, 0x57, 0x58):
            other = 'a BMP280: use driver = "bmp280"'
        else:
            other = "not a BME680/BME688; another chip uses this address"
        return f"the chip id register (0xD0) reads {chip_id:#04x}: {other}"

    @property
    def variant_name(self) -> str:
        return "BME688" if self.variant == VARIANT_BME688 else "BME680"

    def measurement_seconds(self) -> float:
        """Temperature, pressure and humidity conversions plus the heating: 1.963 ms per oversampling
        cycle, the switching and wake-up times of the BME68x Sensor API, then gas_wait."""
        cycles = 3 * self.config["oversampling"]
        ms = cycles * 1.963 + 4 * 0.477 + 5 * 0.477 + 1.0
        if self.config["gas"]:
            ms += gas_wait_ms(gas_wait(self.config["heater_duration"]))
        return ms / 1000.0

    def measure(self) -> dict[str, float]:
        cal = self.calibration
        osrs = OVERSAMPLING[self.config["oversampling"]]
        gas = self.config["gas"]
        if gas:
            self.write_byte(REG_RES_HEAT_0, cal.res_heat(self.config["heater_temperature"], self._ambient))
            self.write_byte(REG_GAS_WAIT_0, gas_wait(self.config["heater_duration"]))
            self.write_byte(REG_CTRL_GAS_0, 0x00)
            self.write_byte(REG_CTRL_GAS_1, RUN_GAS[self.variant])  # heater set-point 0
        else:
            self.write_byte(REG_CTRL_GAS_0, HEAT_OFF)
            self.write_byte(REG_CTRL_GAS_1, 0x00)
        self.write_byte(REG_CTRL_HUM, osrs)  # takes effect with the ctrl_meas write below
        self.write_byte(REG_CTRL_MEAS, osrs << 5 | osrs << 2 | 0b01)
        time.sleep(self.measurement_seconds())
        self.poll(lambda: self.read_byte(REG_FIELD0) & NEW_DATA, 0.1, "the measurement")
        data = self.read_block(REG_FIELD0, 17)
        adc_p = data[2] << 12 | data[3] << 4 | data[4] >> 4
        adc_t = data[5] << 12 | data[6] << 4 | data[7] >> 4
        adc_h = data[8] << 8 | data[9]
        if adc_t == 0x80000 or adc_p == 0x80000:
            raise ReadFailed(
                f"{self.where()}: the chip returned its 'measurement skipped' value; "
                "it probably reset (brown-out): check the 3.3 V supply"
            )
        t_fine = cal.t_fine(adc_t)
        temperature = cal.temperature(t_fine)
        values = {
            "temperature": round(temperature, 2),
            "pressure": round(cal.pressure(adc_p, t_fine) / 100.0, 4),
            "humidity": round(cal.humidity(adc_h, temperature), 3),
        }
        check_operating_range(self.where(), values)
        self._ambient = temperature
        if gas:
            values["gas_resistance"] = self._gas(data)
        return values

    def _gas(self, data: list[int]) -> float:
        # The BME680 reports its gas result at 0x2A/0x2B, the BME688 at 0x2C/0x2D.
        msb, lsb = (data[15], data[16]) if self.variant == VARIANT_BME688 else (data[13], data[14])
        adc, gas_range = msb << 2 | lsb >> 6, lsb & 0x0F
        if not lsb & GAS_VALID:
            raise ReadFailed(f"{self.where()}: the gas measurement is flagged invalid (gas_valid = 0); it is retried")
        if not lsb & HEAT_STAB:
            raise ValueRejected(
                f"{self.where()}: the heater did not reach {self.config['heater_temperature']} °C within "
                f"{self.config['heater_duration']} ms (heat_stab = 0): raise heater_duration or lower "
                "heater_temperature"
            )
        cal = self.calibration
        ohms = cal.gas_high(adc, gas_range) if self.variant == VARIANT_BME688 else cal.gas_low(adc, gas_range)
        return round(ohms, 1)
