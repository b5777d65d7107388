"""What TI's INA226-family power monitors (INA260, INA3221) share.

Their 16-bit registers are sent most significant byte first; a manufacturer id register at
FEh reads 5449h ("TI") and a die id register at FFh tells the chips apart.  Their
configuration registers hold the same averaging (bits 11-9) and conversion-time fields
(bits 8-6 bus, 5-3 shunt), with the same tables, and bit 15 resets the chip.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .. import DeviceNotFound, Option, OptionError
from ._bus import NO_ACK, I2CDriver

REG_CONFIG = 0x00
REG_MANUFACTURER_ID = 0xFE
REG_DIE_ID = 0xFF
TI = 0x5449
RESET = 0x8000
#: Die ids of the chips pibridge has a driver for, to name the right one when the wrong one is configured.
DIE_IDS = {0x2270: ("INA260", "ina260"), 0x3220: ("INA3221", "ina3221")}

#: averages -> AVG bits 11-9 (both datasheets' "AVG Bit Settings" table)
AVERAGES = {1: 0b000, 4: 0b001, 16: 0b010, 64: 0b011, 128: 0b100, 256: 0b101, 512: 0b110, 1024: 0b111}
#: conversion time in µs -> CT bits, for the bus-voltage (8-6) and shunt/current (5-3) fields
CONVERSION_TIMES = {140: 0b000, 204: 0b001, 332: 0b010, 588: 0b011, 1100: 0b100, 2116: 0b101, 4156: 0b110, 8244: 0b111}
MODE_CONTINUOUS = 0b111


def averaging_options(default_averages: int) -> dict[str, Option]:
    return {
        "averages": Option(int, default_averages, "samples averaged per reading: 1, 4, 16, 64, 128, 256, 512 or 1024"),
        "conversion_time": Option(
            int, 1100, "µs per conversion of each input: 140, 204, 332, 588, 1100, 2116, 4156 or 8244"
        ),
    }


class INAMonitor(I2CDriver):
    """Base of the INA260 and INA3221 drivers: id check, configuration with read-back, brown-out recovery.

    A subclass sets :attr:`die_id` and implements :meth:`conversions` (how many inputs one
    cycle converts), :meth:`conversion_ready` (its conversion-ready flag) and, where the chip
    has more configuration bits than averaging, timing and mode, :meth:`fixed_bits`.
    """

    die_id: ClassVar[int] = 0

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        averages, conversion_time = self.config["averages"], self.config["conversion_time"]
        if averages not in AVERAGES:
            raise OptionError("averages", f"sensor {sensor!r}: averages must be one of {', '.join(map(str, AVERAGES))}")
        if conversion_time not in CONVERSION_TIMES:
            raise OptionError(
                "conversion_time",
                f"sensor {sensor!r}: conversion_time must be one of {', '.join(map(str, CONVERSION_TIMES))} (µs)",
            )

    def conversions(self) -> int:
        """How many inputs (bus and shunt voltages) one cycle converts."""
        raise NotImplementedError

    def fixed_bits(self) -> int:
        return 0

    @property
    def config_word(self) -> int:
        ct = CONVERSION_TIMES[self.config["conversion_time"]]
        return (
            self.fixed_bits() | AVERAGES[self.config["averages"]] << 9 | ct << 6 | ct << 3 | MODE_CONTINUOUS
        )

    def cycle_seconds(self) -> float:
        """How long one averaged set of conversions takes: averages x inputs x conversion time."""
        return self.config["averages"] * self.conversions() * self.config["conversion_time"] / 1e6

    def min_interval(self) -> float:
        return self.cycle_seconds()

    @classmethod
    def plausible_config(cls, word: int) -> bool:
        """Whether *word*, read from register 00h, can be this chip's configuration."""
        return True

    @classmethod
    def identify(cls, bus: Any, address: int) -> bool | None:
        # Register 00h first: a command-driven chip that shares these addresses (HTU21D, Si7021 at
        # 0x40) refuses it, and must never see FEh, which is its soft-reset command.
        try:
            if not cls.plausible_config(_word(bus.read_i2c_block_data(address, REG_CONFIG, 2))):
                return False
            manufacturer = _word(bus.read_i2c_block_data(address, REG_MANUFACTURER_ID, 2))
            die = _word(bus.read_i2c_block_data(address, REG_DIE_ID, 2))
        except OSError:
            return False  # an INA answers these registers; a chip that refuses them is something else
        return manufacturer == TI and die == cls.die_id

    def check_identity(self) -> None:
        manufacturer, die = self.read_word_be(REG_MANUFACTURER_ID), self.read_word_be(REG_DIE_ID)
        if manufacturer == TI and die == self.die_id:
            return
        if manufacturer == TI and die in DIE_IDS:
            chip, driver = DIE_IDS[die]
            raise DeviceNotFound(f"{self.where()}: the chip at this address is a TI {chip}: use driver = \"{driver}\"")
        raise DeviceNotFound(
            f"{self.where()}: manufacturer id {manufacturer:#06x} and die id {die:#06x} (registers FEh, FFh), "
            f"not TI's {TI:#06x} and {self.die_id:#06x}: the chip at this address is not an {self.chip}"
        )

    def program(self) -> None:
        self.write_word_be(REG_CONFIG, self.config_word)

    def setup(self) -> None:
        self.read_word_be(REG_CONFIG)  # every chip with a pointer register answers this; a bus error is a bus error
        try:
            self.check_identity()
        except OSError as exc:
            if exc.errno not in NO_ACK:
                raise
            raise DeviceNotFound(
                f"{self.where()}: the chip at this address does not answer the id registers FEh and FFh: "
                f"it is not an {self.chip}"
            ) from None
        self.write_word_be(REG_CONFIG, RESET)
        self.program()
        got = self.read_word_be(REG_CONFIG)
        if got != self.config_word:
            raise DeviceNotFound(
                f"{self.where()}: wrote configuration {self.config_word:#06x} but read back {got:#06x}; "
                "power-cycle the board"
            )
        self.wait_for_conversion()

    def conversion_ready(self) -> bool:
        raise NotImplementedError

    def wait_for_conversion(self) -> None:
        self.poll(self.conversion_ready, 2 * self.cycle_seconds() + 0.05, "the first conversion")

    def ensure_configured(self) -> None:
        """Program the chip again if a brown-out reset it (its configuration is back at the reset value)."""
        if self.read_word_be(REG_CONFIG) != self.config_word:
            self.program()
            self.wait_for_conversion()


def _word(data: list[int]) -> int:
    return data[0] << 8 | data[1]
