"""TE HTU21D, Sensirion SHT20/SHT21/SHT25 and Silicon Labs Si7021: one command set, temperature and humidity."""

from __future__ import annotations

import time

from pibridge.readings import Quantity

from .. import DeviceNotFound, ReadFailed, ValueRejected, register
from .._crc import htu21d_crc8
from ._bus import I2CDriver, bus_options

# Commands, HTU21D datasheet (TE, HPC199_6), "Commands"; the same in the SHT21 datasheet
# (section 5.3, Table 6) and the Si7021 datasheet (section 5, Table 11).
MEASURE_T_NO_HOLD = 0xF3
MEASURE_RH_NO_HOLD = 0xF5
WRITE_USER = 0xE6
READ_USER = 0xE7
SOFT_RESET = 0xFE

#: User register: bits 7 and 0 choose the resolution (00: RH 12 bit, T 14 bit), bit 6 is
#: "end of battery" (supply below 2.25 V), bit 2 the on-chip heater; the rest are reserved.
RESOLUTION_BITS, END_OF_BATTERY, HEATER = 0x81, 0x40, 0x04

#: Longest conversion times at RH 12 bit / T 14 bit across the three datasheets (SHT21: 85 ms, 29 ms).
T_SECONDS, RH_SECONDS = 0.085, 0.029
RESET_SECONDS = 0.015
#: Bit 1 of the second byte says what was measured (SHT21 datasheet section 6.1).
KIND_BIT = 0x02


def celsius(word: int) -> float:
    """T = -46.85 + 175.72 * S_T / 2^16, status bits cleared (HTU21D datasheet, "Temperature conversion")."""
    return -46.85 + 175.72 * (word & 0xFFFC) / 65536.0


def relative_humidity(word: int) -> float:
    """RH = -6 + 125 * S_RH / 2^16, status bits cleared (HTU21D datasheet, "Relative humidity conversion")."""
    return -6.0 + 125.0 * (word & 0xFFFC) / 65536.0


@register
class HTU21D(I2CDriver):
    """An HTU21D, SHT20/SHT21/SHT25 or Si7021 board: temperature (°C) and humidity (%RH).

    Wire VIN to 3.3 V (pin 1), GND to ground, SDA to GPIO2 (pin 3), SCL to
    GPIO3 (pin 5).  The address is always 0x40 (so two of these need two
    buses, and the INA219's default address clashes).  Measurements use
    the "no hold master" commands: the chip does not stretch the clock, it
    just does not answer until the result is ready, which the Pi handles
    well.  Every result is CRC-checked.  The driver selects 12-bit
    humidity and 14-bit temperature and turns the on-chip heater off, so
    readings are not warmed by the chip itself.
    """

    name = "htu21d"
    summary = "HTU21D / SHT20 / SHT21 / SHT25 / Si7021 temperature and humidity (I2C)"
    chip = "HTU21D"
    addresses = (0x40,)
    options = {**bus_options((0x40,))}
    provides = (
        Quantity("temperature", "°C", "air temperature"),
        Quantity("humidity", "%RH", "relative humidity"),
    )

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    def setup(self) -> None:
        self.send(SOFT_RESET)
        time.sleep(RESET_SECONDS)
        user = self.read_byte(READ_USER)
        wanted = user & ~(RESOLUTION_BITS | HEATER)
        if wanted != user:
            self.write_byte(WRITE_USER, wanted)
            if self.read_byte(READ_USER) != wanted:
                raise DeviceNotFound(
                    f"{self.where()}: wrote {wanted:#04x} to the user register but it reads back "
                    f"{self.read_byte(READ_USER):#04x}: the chip at 0x40 is not an HTU21D, SHT2x or Si7021 "
                    "(an INA219 also sits at 0x40 by default)"
                )

    def measure(self) -> dict[str, float]:
        if self.read_byte(READ_USER) & END_OF_BATTERY:
            raise ValueRejected(
                f"{self.where()}: the chip flags its supply below 2.25 V (end of battery): its readings are "
                "not reliable; power it from 3.3 V (pin 1)"
            )
        t_word = self._convert(MEASURE_T_NO_HOLD, T_SECONDS, "temperature", 0)
        rh_word = self._convert(MEASURE_RH_NO_HOLD, RH_SECONDS, "humidity", KIND_BIT)
        temperature = celsius(t_word)
        if not -40.0 <= temperature <= 125.0:
            raise ValueRejected(
                f"{self.where()}: temperature {temperature:.2f} °C is outside the chip's range (-40 to 125 °C)"
            )
        # The formula spans -6 to 119 %RH; the datasheets say to crop it to 0..100.
        humidity = min(max(relative_humidity(rh_word), 0.0), 100.0)
        return {"temperature": round(temperature, 2), "humidity": round(humidity, 2)}

    def _convert(self, command: int, seconds: float, what: str, kind: int) -> int:
        self.send(command)
        time.sleep(seconds)
        data = self._result(seconds)
        expected = htu21d_crc8(data[:2])
        if data[2] != expected:
            raise ReadFailed(
                f"{self.where()}: CRC mismatch in the {what} (got {data[2]:#04x}, expected {expected:#04x} for "
                f"{data[:2].hex()}): noise on the bus; keep I2C wires short and check the pull-ups"
            )
        if data[1] & KIND_BIT != kind:
            raise ReadFailed(f"{self.where()}: asked for the {what} but the status bits say otherwise; it is retried")
        return data[0] << 8 | data[1]

    def _result(self, seconds: float) -> bytes:
        """The three result bytes; the chip does not acknowledge its address until they are ready."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                return self.receive(3)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.002)
