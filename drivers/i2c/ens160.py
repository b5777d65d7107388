"""ScioSense ENS160: a four-element metal-oxide gas sensor giving an air quality index, TVOC and eCO2."""

from __future__ import annotations

import logging
import time

from pibridge.readings import Quantity

from .. import DeviceNotFound, ReadFailed, ValueRejected, register
from .._ambient import HUMIDITY, TEMPERATURE, Ambient, Compensates, compensate_from_option
from ._bus import I2CDriver, bus_options

log = logging.getLogger("pibridge.drivers")

# Registers, ENS160 datasheet (v0.95, December 2020), section 16.1, Table 16.
REG_PART_ID = 0x00  # 2 bytes, LSB first
REG_OPMODE = 0x10
REG_TEMP_IN = 0x13  # 2 bytes, LSB first: kelvin * 64
REG_RH_IN = 0x15  # 2 bytes, LSB first: %RH * 512
REG_DEVICE_STATUS = 0x20
REG_DATA_AQI = 0x21  # then DATA_TVOC (2 bytes) and DATA_ECO2 (2 bytes)

PART_ID = 0x0160
OPMODE_IDLE, OPMODE_STANDARD, OPMODE_RESET = 0x01, 0x02, 0xF0

STATUS_RUNNING = 0x80  # STATAS: an operating mode is running
STATUS_ERROR = 0x40  # STATER
STATUS_NEW_DATA = 0x02  # NEWDAT
#: DEVICE_STATUS bits 3:2
NORMAL, WARM_UP, INITIAL_START_UP, INVALID = 0, 1, 2, 3

ECO2_RANGE = (400, 65000)  # ppm, the datasheet's output ranges
TVOC_MAX = 65000  # ppb


def temperature_word(celsius: float) -> int:
    """TEMP_IN: (T + 273.15) * 64, in kelvin with 1/64 K steps (datasheet section 16.2.5)."""
    return round((celsius + 273.15) * 64)


def humidity_word(percent: float) -> int:
    """RH_IN: RH * 512, with 1/512 %RH steps (datasheet section 16.2.6)."""
    return round(percent * 512)


@register
class ENS160(Compensates, I2CDriver):
    """An ENS160 board: air quality index (1 to 5), TVOC (ppb) and equivalent CO2 (ppm).

    Wire VIN to 3.3 V (pin 1), GND to ground, SDA to GPIO2 (pin 3), SCL to
    GPIO3 (pin 5).  The address is 0x53, or 0x52 when ADDR is tied to
    ground.  Many boards carry an AHT21 too: configure it as its own sensor
    (``driver = "aht20"``) and name it in ``compensate_from``.

    The chip measures once a second on its own.  After power-on it warms up
    for about 3 minutes, during which nothing is reported; in its first hour
    of operation ever (the "initial start-up") values are reported but less
    accurate.  eCO2 is estimated from VOCs, not measured: use an SCD4x or
    SCD30 for real CO2.  The gas reading depends on the air's temperature
    and humidity: ``compensate_from`` names a sensor of this config whose
    latest values are written to the chip before each read; without one,
    the chip assumes 25 °C and 50 %RH.
    """

    name = "ens160"
    summary = "ScioSense ENS160 air quality index, TVOC and eCO2 (I2C)"
    chip = "ENS160"
    addresses = (0x53, 0x52)
    options = {
        **bus_options((0x53, 0x52)),
        "compensate_from": compensate_from_option("temperature and humidity"),
    }
    provides = (
        Quantity("aqi", "index", "air quality index after the German UBA, 1 (excellent) to 5 (unhealthy)"),
        Quantity("tvoc", "ppb", "total volatile organic compounds"),
        Quantity("eco2", "ppm", "CO2 equivalent estimated from VOCs"),
    )

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        self.ambient = Ambient(sensor, self.config["compensate_from"], {"temperature": TEMPERATURE, "humidity": HUMIDITY})
        self._validity: int | None = None

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    def min_interval(self) -> float:
        return 1.0

    @classmethod
    def identify(cls, bus, address: int) -> bool | None:
        try:
            low, high = bus.read_i2c_block_data(address, REG_PART_ID, 2)
        except OSError:
            return None
        return (high << 8 | low) == PART_ID

    def setup(self) -> None:
        low, high = self.read_block(REG_PART_ID, 2)
        part = high << 8 | low
        if part != PART_ID:
            raise DeviceNotFound(
                f"{self.where()}: the part id register (0x00) reads {part:#06x}, not {PART_ID:#06x}: "
                "this is not an ENS160; another chip uses this address"
            )
        status = self.read_byte(REG_DEVICE_STATUS)
        if self.read_byte(REG_OPMODE) == OPMODE_STANDARD and not status & STATUS_ERROR:
            return  # still measuring since an earlier start: keep its warm-up
        self.write_byte(REG_OPMODE, OPMODE_RESET)
        time.sleep(0.010)
        self.write_byte(REG_OPMODE, OPMODE_IDLE)
        time.sleep(0.010)
        self.write_byte(REG_OPMODE, OPMODE_STANDARD)
        time.sleep(0.010)

    def measure(self) -> dict[str, int]:
        air = self.ambient.values()
        t, rh = temperature_word(air["temperature"]), humidity_word(air["humidity"])
        self.write_block(REG_TEMP_IN, [t & 0xFF, t >> 8, rh & 0xFF, rh >> 8])
        self.poll(lambda: self.read_byte(REG_DEVICE_STATUS) & STATUS_NEW_DATA, 1.5, "the next measurement")
        status = self.read_byte(REG_DEVICE_STATUS)
        data = self.read_block(REG_DATA_AQI, 5)
        if status & STATUS_ERROR or not status & STATUS_RUNNING:
            raise DeviceNotFound(
                f"{self.where()}: the chip reports an error (DEVICE_STATUS {status:#04x}); it is reset at the next read"
            )
        validity = (status >> 2) & 0x03
        self._report(validity)
        if validity == INVALID:
            raise ReadFailed(f"{self.where()}: the chip flags its output invalid (validity flag 3); it is retried")
        if validity == WARM_UP:
            return {}
        aqi, tvoc, eco2 = data[0] & 0x07, data[2] << 8 | data[1], data[4] << 8 | data[3]
        if not 1 <= aqi <= 5:
            raise ValueRejected(f"{self.where()}: air quality index {aqi} is outside 1 to 5")
        if tvoc > TVOC_MAX or not ECO2_RANGE[0] <= eco2 <= ECO2_RANGE[1]:
            raise ValueRejected(
                f"{self.where()}: TVOC {tvoc} ppb or eCO2 {eco2} ppm is outside the chip's output range "
                f"(0 to {TVOC_MAX} ppb, {ECO2_RANGE[0]} to {ECO2_RANGE[1]} ppm)"
            )
        return {"aqi": aqi, "tvoc": tvoc, "eco2": eco2}

    def _report(self, validity: int) -> None:
        if validity == self._validity:
            return
        self._validity = validity
        if validity == WARM_UP:
            log.info("sensor %r: the ENS160 is warming up (about 3 minutes); its values follow", self.sensor)
        elif validity == INITIAL_START_UP:
            log.info("sensor %r: the ENS160 is in its initial start-up (its first hour ever); values are less "
                     "accurate until it ends", self.sensor)
        elif validity == NORMAL:
            log.info("sensor %r: the ENS160 is in normal operation", self.sensor)
