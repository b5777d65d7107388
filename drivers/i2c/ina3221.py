"""TI INA3221: three channels of bus voltage and shunt current, over I2C."""

from __future__ import annotations

from typing import Any

from pibridge.readings import Quantity

from .. import Option, OptionError, ValueRejected, register
from .._bits import signed
from ._bus import bus_options
from ._ina import INAMonitor, averaging_options

#: channel -> (shunt-voltage register, bus-voltage register), datasheet 8.6 register map
CHANNEL_REGISTERS = {1: (0x01, 0x02), 2: (0x03, 0x04), 3: (0x05, 0x06)}
#: channel -> its enable bit in the configuration register (CH1en bit 14, CH2en 13, CH3en 12)
CHANNEL_ENABLE = {1: 0x4000, 2: 0x2000, 3: 0x1000}
REG_MASK_ENABLE = 0x0F
CONVERSION_READY = 0x0001
#: Steps of the result registers, whose 13-bit values sit in bits 15-3 (datasheet 8.6.2).
SHUNT_LSB, BUS_LSB = 40e-6, 8e-3
#: The 13-bit results at their ends: 163.8 mV / -163.84 mV across the shunt.
SHUNT_FULL_SCALE = (4095, -4096)
#: The bus inputs stand at most 26 V (recommended operating conditions).
MAX_BUS_VOLTS = 26.0
ADDRESSES = (0x40, 0x41, 0x42, 0x43)


@register
class INA3221(INAMonitor):
    """An INA3221 board: three supplies at once, each its voltage, current and power.

    Wire VS to 3.3 V (pin 1), GND to ground, SDA to GPIO2 (pin 3), SCL to
    GPIO3 (pin 5).  Each channel's IN+ and IN- go in the positive line of
    one load, with the board's shunt resistor between them (0.1 Ω, "R100",
    on most boards); the bus voltage is measured at IN-.  All three loads
    share the Pi's ground.  The A0 pin picks the address: GND 0x40, VS
    0x41, SDA 0x42, SCL 0x43.  Keep every supply below 26 V.

    ``channels`` lists the channels to read (1, 2, 3) or names them, e.g.
    ``channels = { battery = 1, solar = 2 }`` reports ``battery_voltage``,
    ``battery_current``...; the others are switched off, which makes each
    reading faster.  ``shunt_ohms`` is one value for all channels or a list
    of three.  The current is the shunt voltage over the shunt resistance
    (40 µV steps, ±163.8 mV at most: 1.638 A with 0.1 Ω); the power is
    voltage times current.
    """

    name = "ina3221"
    summary = "TI INA3221 three-channel bus voltage, current and power (I2C)"
    chip = "INA3221"
    addresses = ADDRESSES
    die_id = 0x3220
    options = {
        **bus_options(ADDRESSES),
        "channels": Option((list, dict), [1, 2, 3], "channels to read, 1 to 3, or a table naming them: { battery = 1 }"),
        "shunt_ohms": Option((float, list), 0.1, "shunt resistor in ohms, one for all channels or a list of three"),
        **averaging_options(16),
    }
    provides = tuple(
        quantity
        for n in (1, 2, 3)
        for quantity in (
            Quantity(f"ch{n}_voltage", "V", f"bus voltage of channel {n} (at IN-)"),
            Quantity(f"ch{n}_current", "A", f"current through the shunt of channel {n}"),
            Quantity(f"ch{n}_power", "W", f"power delivered by channel {n}"),
            Quantity(f"ch{n}_shunt_voltage", "mV", f"voltage across the shunt of channel {n}"),
        )
    )

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        self.channels = _channels(sensor, self.config["channels"])
        self.shunts = _shunts(sensor, self.config["shunt_ohms"])

    def quantities(self) -> list[Quantity]:
        out = []
        for label, n in self.channels.items():
            out += [
                Quantity(f"{label}_voltage", "V", f"bus voltage of channel {n} (at IN-)"),
                Quantity(f"{label}_current", "A", f"current through the shunt of channel {n}"),
                Quantity(f"{label}_power", "W", f"power delivered by channel {n}"),
                Quantity(f"{label}_shunt_voltage", "mV", f"voltage across the shunt of channel {n}"),
            ]
        return out

    def conversions(self) -> int:
        return 2 * len(self.channels)

    def fixed_bits(self) -> int:
        bits = 0
        for n in self.channels.values():
            bits |= CHANNEL_ENABLE[n]
        return bits

    def conversion_ready(self) -> bool:
        return bool(self.read_word_be(REG_MASK_ENABLE) & CONVERSION_READY)

    def measure(self) -> dict[str, float]:
        self.ensure_configured()
        values: dict[str, float] = {}
        for label, n in self.channels.items():
            shunt_register, bus_register = CHANNEL_REGISTERS[n]
            shunt_raw = signed(self.read_word_be(shunt_register), 16) >> 3
            bus_raw = signed(self.read_word_be(bus_register), 16) >> 3
            ohms = self.shunts[n - 1]
            if shunt_raw in SHUNT_FULL_SCALE:
                raise ValueRejected(
                    f"{self.where()}: channel {n} ({label}) reads its shunt at the end of the range "
                    f"({shunt_raw * SHUNT_LSB * 1000:+.2f} mV): the current is beyond "
                    f"{4095 * SHUNT_LSB / ohms:.3f} A for a {ohms:g} Ω shunt; use a smaller shunt resistor"
                )
            volts = bus_raw * BUS_LSB
            if volts > MAX_BUS_VOLTS:
                raise ValueRejected(
                    f"{self.where()}: channel {n} ({label}) reads {volts:.3f} V, above the {MAX_BUS_VOLTS:g} V "
                    "the INA3221 tolerates: check what IN- is wired to"
                )
            shunt_volts = shunt_raw * SHUNT_LSB
            amperes = shunt_volts / ohms
            values[f"{label}_voltage"] = round(volts, 3)
            values[f"{label}_current"] = round(amperes, 6)
            values[f"{label}_power"] = round(volts * amperes, 6)
            values[f"{label}_shunt_voltage"] = round(shunt_volts * 1000, 2)
        return values


def _channels(sensor: str, given: Any) -> dict[str, int]:
    """``channels`` as label -> channel number."""
    pairs = list(given.items()) if isinstance(given, dict) else [(f"ch{n}", n) for n in given]
    if not pairs:
        raise OptionError("channels", f"sensor {sensor!r}: channels must name at least one of 1, 2, 3")
    seen: set[int] = set()
    for label, n in pairs:
        if isinstance(n, bool) or n not in CHANNEL_REGISTERS:
            raise OptionError("channels", f"sensor {sensor!r}: channel {n!r} does not exist; the INA3221 has 1, 2 and 3")
        if n in seen:
            raise OptionError("channels", f"sensor {sensor!r}: channel {n} is listed twice")
        if not isinstance(label, str) or not label:
            raise OptionError("channels", f"sensor {sensor!r}: channel names must be non-empty text")
        seen.add(n)
    return dict(pairs)


def _shunts(sensor: str, given: float | list) -> list[float]:
    values = [given] * 3 if isinstance(given, float) else list(given)
    if len(values) != 3 or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values
    ):
        raise OptionError(
            "shunt_ohms",
            f"sensor {sensor!r}: shunt_ohms must be one positive number or a list of three (ohms), not {given!r}",
        )
    return [float(v) for v in values]
