"""The nine scratchpad bytes of the 1-Wire thermometers, decoded as their datasheets describe.

The kernel's ``w1_slave`` file prints these bytes before its own ``t=`` figure; that figure is
truncated to whole millidegrees, ignores the bits a lower resolution leaves undefined, and reads a
MAX31850's fault bit as part of the temperature.  Decoding the bytes gives the chip's full
resolution and lets each family have its own range and failure rules.

A decoder returns °C or raises :class:`NoMeasurement` with what went wrong; the driver adds
which probe it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .._bits import signed

#: The DS18B20's temperature before its first conversion, +85 °C (datasheet, Table 1 note and memory map).
POWER_ON_RAW = 0x0550
#: The DS18S20's power-on value, also +85 °C, in its 0.5 °C format.
DS18S20_POWER_ON_RAW = 0x00AA
#: Byte 6 of the scratchpad at power-on.  A completed conversion changes it on genuine parts, so
#: 85 °C with this byte is the power-on value (the kernel's w1_therm applies the same rule).
POWER_ON_BYTE6 = 0x0C


class NoMeasurement(Exception):
    """The scratchpad holds no valid temperature.

    ``retry`` is true when a fresh read may succeed (a power glitch), false when the value itself
    is refused (a fault the chip reports, a conversion that did not run).
    """

    def __init__(self, message: str, retry: bool = False):
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True)
class Thermometer:
    """One kind of 1-Wire thermometer: its name, its range and how its scratchpad reads."""

    name: str
    low: float
    high: float
    celsius: Callable[[bytes], float]


def _signed(low: int, high: int) -> int:
    return signed(high << 8 | low, 16)


def _power_on_check(pad: bytes, power_on_raw: int, name: str) -> None:
    if (pad[1] << 8 | pad[0]) == power_on_raw and pad[6] == POWER_ON_BYTE6:
        raise NoMeasurement(
            f"85 °C is the {name}'s power-on value (and byte 6 still reads 0x0C): the conversion did not run "
            "(power dropped, or parasite power without a strong pull-up); wire VDD to 3.3 V"
        )


def ds18b20_celsius(pad: bytes) -> float:
    """DS18B20, DS1822, DS1825, DS28EA00: a signed count of 1/16 °C in bytes 0-1.

    At 9, 10 or 11 bits (configuration byte 4, bits 6-5) the lowest 3, 2 or 1 bits are undefined
    (DS18B20 datasheet, "Operation - measuring temperature"), so they are cleared.
    """
    _power_on_check(pad, POWER_ON_RAW, "DS18B20")
    resolution_bits = 9 + (pad[4] >> 5 & 0x03)
    undefined = (1 << (12 - resolution_bits)) - 1
    return (_signed(pad[0], pad[1]) & ~undefined) / 16


def ds18s20_celsius(pad: bytes) -> float:
    """DS18S20/DS1820: 0.5 °C steps in bytes 0-1, refined by COUNT_REMAIN (byte 6) and COUNT_PER_C (byte 7).

    DS18S20 datasheet, "Operation - measuring temperature":
    T = TEMP_READ - 0.25 + (COUNT_PER_C - COUNT_REMAIN) / COUNT_PER_C, TEMP_READ being the
    reading with its 0.5 °C bit truncated.
    """
    count_per_c, count_remain = pad[7], pad[6]
    if count_per_c == 0:
        raise NoMeasurement("the scratchpad's COUNT_PER_C byte is 0, which a DS18S20 never sends", retry=True)
    _power_on_check(pad, DS18S20_POWER_ON_RAW, "DS18S20")
    temp_read = _signed(pad[0], pad[1]) >> 1
    return temp_read - 0.25 + (count_per_c - count_remain) / count_per_c


#: MAX31850 input faults, byte 2 bits 0-2 (datasheet, "Cold-junction temperature register").
MAX31850_FAULTS = (
    (0x01, "the thermocouple is open (not connected, or a broken wire)"),
    (0x02, "the thermocouple is shorted to GND"),
    (0x04, "the thermocouple is shorted to VDD"),
)


def max31850_celsius(pad: bytes) -> float:
    """MAX31850/MAX31851: the thermocouple temperature, 14 bits of 0.25 °C in bytes 0-1 (bits 15-2).

    Bit 0 of byte 0 is the fault flag; bits 0-2 of byte 2 say which fault.  A reading with a
    fault is not a temperature.
    """
    if pad[0] & 0x01 or pad[2] & 0x07:
        causes = [text for bit, text in MAX31850_FAULTS if pad[2] & bit] or ["a fault without a cause bit"]
        raise NoMeasurement(f"the MAX31850 reports a fault: {'; '.join(causes)}; check the thermocouple's two wires")
    return (_signed(pad[0], pad[1]) >> 2) * 0.25


def max31850_cold_junction(pad: bytes) -> float:
    """MAX31850/MAX31851: the chip's own (cold-junction) temperature, 12 bits of 0.0625 °C in bytes 2-3 (bits 15-4)."""
    return (_signed(pad[2], pad[3]) >> 4) * 0.0625


DS18B20 = Thermometer("DS18B20", -55.0, 125.0, ds18b20_celsius)
DS1822 = Thermometer("DS1822", -55.0, 125.0, ds18b20_celsius)
DS1825 = Thermometer("DS1825", -55.0, 125.0, ds18b20_celsius)
DS28EA00 = Thermometer("DS28EA00", -40.0, 85.0, ds18b20_celsius)
DS18S20 = Thermometer("DS18S20", -55.0, 125.0, ds18s20_celsius)
#: The converter itself spans the widest thermocouple types (-270 °C for K/J/N/T/E, 1768 °C for
#: R/S); which type is on the board is not visible on the bus.
MAX31850 = Thermometer("MAX31850", -270.0, 1768.0, max31850_celsius)
#: The chip itself works from -55 to 125 °C, and so does its cold-junction sensor.
MAX31850_COLD_JUNCTION = Thermometer("MAX31850's cold junction", -55.0, 125.0, max31850_cold_junction)

#: 1-Wire family code (first byte of the ROM id, the ``xx-`` of the sysfs name) -> thermometer.
FAMILIES = {"10": DS18S20, "22": DS1822, "28": DS18B20, "3b": DS1825, "42": DS28EA00}


def thermometer(family: str, pad: bytes) -> Thermometer:
    """Which thermometer sent *pad*.  Family 3B is shared by the DS1825 and the MAX31850; the
    MAX31850's configuration byte (byte 4) has its upper four bits set, the DS1825's bit 7 clear."""
    if family == "3b" and pad[4] & 0x80:
        return MAX31850
    return FAMILIES[family]
